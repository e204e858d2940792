package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
)

func runClaim(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("claim", stderr, defaultTimeout)
	force := c.flags.Bool("force", false, "take the EIP even from a healthy holder (takeover: always)")
	dryRun := c.flags.Bool("dry-run", false, "say what would be done, change nothing")
	waitDNS := c.flags.Bool("wait-dns", false, "wait until the Route 53 change is INSYNC (within --timeout)")
	asJSON := c.flags.Bool("json", false, "print the outcome as JSON for scripts")
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{instance: true, userData: true, prefetchSelf: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	spec, err := s.spec()
	if err != nil {
		return err
	}
	pubs := s.publishers(spec, *waitDNS)
	// A secret file that is missing is known now: exit 2 before any change.
	if err := publish.CheckLocal(pubs); err != nil {
		return fmt.Errorf("role %s: %w", s.role, err)
	}
	policy := string(spec.EffectiveTakeover())
	if *force {
		policy = "always (--force)"
	}
	names := make([]string, len(pubs))
	for i, p := range pubs {
		names[i] = p.Kind() + " " + p.Name()
	}
	s.log.Info("claiming", "role", s.role, "instance_id", s.instanceID, "region", s.region,
		"eip", describeSelector(spec), "private_address", spec.PrivateAddress, "takeover", policy, "interface", spec.Interface, "private_ip", spec.PrivateIP,
		"dns", names, "dry_run", *dryRun)
	// The claim enters (or confirms) the holder state: on_holder runs, as
	// a watcher runs it at start.
	settings := spec.WatchSettings()
	hooks := &failover.Hooks{Role: s.role, OnHolder: settings.OnHolder, Timeout: settings.HookTimeout, Log: s.log}
	o, err := s.step().Run(ctx, failover.Request{Role: s.role, Spec: spec, Publishers: pubs, Hooks: hooks, Force: *force, DryRun: *dryRun})
	if o == nil {
		return fmt.Errorf("claim role %s: %w", s.role, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(o); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintln(stdout, describe(o))
	for _, p := range o.EpochProblems {
		fmt.Fprintf(stdout, "%s: WARNING: %s (the epoch is now %d: if a service fences writes by epoch, make sure it counts above every epoch that service has accepted)\n", o.Role, p, o.Epoch)
	}
	if o.LocalInterface != nil {
		fmt.Fprintf(stdout, "%s: %s\n", o.Role, o.LocalInterface)
	}
	if o.Hook != nil {
		fmt.Fprintf(stdout, "%s: on_holder %s: %s (%s)\n", o.Role, o.Hook.Command, o.Hook.Result, o.Hook.Took)
	}
	for _, p := range o.Published {
		prefix := ""
		if o.DryRun {
			prefix = "would publish "
		}
		fmt.Fprintf(stdout, "%s: %s%s\n", o.Role, prefix, p)
	}
	return err
}

// describe says in one line what a claim did and why.
func describe(o *failover.Outcome) string {
	var line string
	switch {
	case o.AllocationID == "" && o.OverlayAddress != "":
		line = fmt.Sprintf("%s: %s overlay address %s routed to %s %s in %s, epoch %d", o.Role, o.Action, o.OverlayAddress, o.InstanceID, o.ENI, routeTables(o), o.Epoch)
	case o.OverlayAddress != "":
		line = fmt.Sprintf("%s: %s %s (%s) on %s %s %s, overlay address %s %s in %s, epoch %d", o.Role, o.Action, o.PublicIP, o.AllocationID, o.InstanceID, o.ENI, o.PrivateIP,
			o.OverlayAddress, o.OverlayAction, routeTables(o), o.Epoch)
	case o.AllocationID == "" && o.PrivateAddress != "":
		// a role without an EIP: its private address
		line = fmt.Sprintf("%s: %s private address %s on %s %s, epoch %d", o.Role, o.Action, o.PrivateAddress, o.InstanceID, o.PrivateAddressENI, o.Epoch)
	case o.PrivateAddress != "":
		line = fmt.Sprintf("%s: %s %s (%s) on %s %s %s, private address %s %s on %s, epoch %d", o.Role, o.Action, o.PublicIP, o.AllocationID, o.InstanceID, o.ENI, o.PrivateIP,
			o.PrivateAddress, o.PrivateAddressAction, o.PrivateAddressENI, o.Epoch)
	default:
		line = fmt.Sprintf("%s: %s %s (%s) on %s %s %s, epoch %d", o.Role, o.Action, o.PublicIP, o.AllocationID, o.InstanceID, o.ENI, o.PrivateIP, o.Epoch)
	}
	if len(o.OverlayRepaired) > 0 {
		line += ", routes repaired in " + strings.Join(o.OverlayRepaired, ", ")
	}
	if o.PreviousHolder != "" {
		line += ", from " + o.PreviousHolder
	}
	if o.Reason != "" {
		line += ": " + o.Reason
	}
	if o.Fence != nil {
		line += "; " + o.Fence.String()
	}
	return line
}

// routeTables lists the overlay's route tables, each marked when it does
// not point here.
func routeTables(o *failover.Outcome) string {
	var out []string
	for _, r := range o.OverlayRouteTables {
		if r.Here || o.DryRun {
			out = append(out, r.RouteTable)
		} else {
			out = append(out, r.RouteTable+" (NOT here: "+dash(r.ENI)+")")
		}
	}
	return strings.Join(out, ", ")
}

// describeSelector says which EIP a role names.
func describeSelector(r *config.Role) string {
	switch {
	case r.AllocationID != "":
		return r.AllocationID
	case r.PublicIP != "":
		return r.PublicIP
	case r.Pool != nil:
		return fmt.Sprintf("pool %v", r.Pool.Tags)
	}
	return ""
}
