package main

import (
	"context"
	"fmt"
	"io"

	"github.com/eipclaim/eipclaim/internal/failover"
)

func runRelease(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("release", stderr, defaultTimeout)
	dryRun := c.flags.Bool("dry-run", false, "say what would be done, change nothing")
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{instance: true, userData: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	spec, err := s.spec()
	if err != nil {
		return err
	}
	if spec.HasEIP() {
		what, err := s.engine().Release(ctx, s.role, spec, *dryRun)
		if err != nil {
			return fmt.Errorf("release role %s: %w", s.role, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", s.role, what)
	}
	if spec.PrivateAddress != "" {
		what, err := s.engine().ReleaseSecondary(ctx, s.role, spec, *dryRun)
		if err != nil {
			return fmt.Errorf("release the private address of role %s: %w", s.role, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", s.role, what)
	}
	if spec.Overlay != nil {
		what, err := s.engine().ReleaseOverlay(ctx, s.role, spec, s.roleTable(), *dryRun)
		if err != nil {
			return fmt.Errorf("release the overlay address of role %s: %w", s.role, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", s.role, what)
	}
	if spec.LocalInterface != "" && !*dryRun {
		// Released (or another's): this instance no longer answers for it.
		if run := s.local().Remove(ctx, s.role, spec, failover.RoleAddress(spec)); run != nil {
			fmt.Fprintf(stdout, "%s: %s\n", s.role, run)
			if run.Error != "" {
				return fmt.Errorf("release role %s: %s", s.role, run)
			}
		}
	}
	return nil
}
