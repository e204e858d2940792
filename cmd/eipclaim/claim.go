package main

import (
	"context"
	"fmt"
	"io"

	"github.com/eipclaim/eipclaim/internal/claim"
)

func runClaim(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	var c common
	fs := newFlagSet("claim", stderr)
	c.register(fs, defaultTimeout)
	force := fs.Bool("force", false, "take the EIP even from a healthy holder (takeover: always)")
	dryRun := fs.Bool("dry-run", false, "say what would be done, change nothing")
	waitDNS := fs.Bool("wait-dns", false, "wait until the Route 53 change is INSYNC (within --timeout)")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := open(ctx, &c, getenv, stderr, openOptions{instance: true, userData: true})
	if err != nil {
		return err
	}
	defer s.finish(&err)
	spec, err := s.spec()
	if err != nil {
		return err
	}
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
