package main

import (
	"context"
	"fmt"
	"io"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
)

func runClaim(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("claim", stderr, defaultTimeout)
	force := c.flags.Bool("force", false, "take the EIP even from a healthy holder (takeover: always)")
	dryRun := c.flags.Bool("dry-run", false, "say what would be done, change nothing")
	waitDNS := c.flags.Bool("wait-dns", false, "wait until the Route 53 change is INSYNC (within --timeout)")
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{instance: true, userData: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	spec, err := s.spec()
	if err != nil {
		return err
	}
	policy := spec.EffectiveTakeover()
	if *force {
		policy = "always (--force)"
	}
	s.log.Info("claiming", "role", s.role, "instance_id", s.instanceID, "region", s.region,
		"eip", describeSelector(spec), "takeover", policy, "interface", spec.Interface, "private_ip", spec.PrivateIP,
		"dns", dnsNames(spec), "dry_run", *dryRun)
	res, err := s.engine().Claim(ctx, claim.Request{Role: s.role, Spec: spec, Force: *force, DryRun: *dryRun})
	if err != nil {
		return fmt.Errorf("claim role %s: %w", s.role, err)
	}
	fmt.Fprintln(stdout, describe(res))
	if *dryRun {
		for _, name := range dnsNames(spec) {
			fmt.Fprintf(stdout, "%s: would publish %s -> %s\n", s.role, name, s.publicDNSName(res))
		}
		return nil
	}
	done, err := s.publishDNS(ctx, spec, res, *waitDNS)
	for _, d := range done {
		fmt.Fprintf(stdout, "%s: %s\n", s.role, d)
	}
	return err
}

// describe says in one line what a claim did and why.
func describe(r *claim.Result) string {
	line := fmt.Sprintf("%s: %s %s (%s) on %s %s %s", r.Role, r.Action, r.PublicIP, r.AllocationID, r.InstanceID, r.ENI, r.PrivateIP)
	if r.PreviousHolder != "" {
		line += ", from " + r.PreviousHolder
	}
	if r.Why != "" {
		line += ": " + r.Why
	}
	return line
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
