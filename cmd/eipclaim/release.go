package main

import (
	"context"
	"fmt"
	"io"
)

func runRelease(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	var c common
	fs := newFlagSet("release", stderr)
	c.register(fs, defaultTimeout)
	dryRun := fs.Bool("dry-run", false, "say what would be done, change nothing")
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
	what, err := s.engine().Release(ctx, s.role, spec, *dryRun)
	if err != nil {
		return fmt.Errorf("release role %s: %w", s.role, err)
	}
	fmt.Fprintf(stdout, "%s: %s\n", s.role, what)
	return nil
}
