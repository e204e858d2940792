package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/eipclaim/eipclaim/internal/hosts"
)

func runHosts(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("hosts", stderr, defaultStatusTimeout)
	out := c.flags.String("out", hosts.DefaultPath(), "the hosts file to update")
	public := c.flags.Bool("public", false, "write the EIPs' public addresses, for clients outside the VPC (default: the holders' private IPs)")
	dryRun := c.flags.Bool("dry-run", false, "print the file that would be written, change nothing")
	c.checks = append(c.checks, func() error {
		if *out == "" {
			return usageError("--out must name the hosts file to update (default %s)", hosts.DefaultPath())
		}
		return nil
	})
	// A client with its own --config need not be an EC2 instance.
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{userData: true, tableOnly: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	// Before anything is looked up or opened: a named pipe at --out would
	// block the open until a writer came, past --timeout and SIGTERM.
	if err := checkOut(*out); err != nil {
		return err
	}
	entries, err := s.hostsEntries(ctx, *public)
	if err != nil {
		return fmt.Errorf("hosts: %w; %s left as it was", err, *out)
	}
	if *dryRun {
		old, err := hosts.ReadFile(*out)
		if err != nil {
			return outError(*out, err)
		}
		b, err := hosts.Render(old, entries)
		if err != nil {
			return fmt.Errorf("hosts: %w", err)
		}
		_, err = stdout.Write(b)
		return err
	}
	changed, err := hosts.Write(*out, entries)
	if err != nil {
		return outError(*out, err)
	}
	what, level := "unchanged", slog.LevelDebug // every minute from a timer: quiet when nothing changes
	if changed {
		what, level = "updated", slog.LevelInfo
	}
	s.log.Log(ctx, level, "hosts file "+what, "path", *out, "entries", len(entries))
	fmt.Fprintf(stdout, "%s %s: %d roles\n", *out, what, len(entries))
	return nil
}

// hostsEntries builds one entry per role that has a holder: its private
// IP (or the EIP with public), its DNS names and its name. Any failed
// lookup fails the whole table, and so does a table with no entry.
func (s *session) hostsEntries(ctx context.Context, public bool) ([]hosts.Entry, error) {
	eng := s.engine()
	var entries []hosts.Entry
	for _, name := range slices.Sorted(maps.Keys(s.cfg.Roles)) {
		spec := s.cfg.Roles[name]
		if spec.Pool != nil {
			s.log.Info("hosts: skipping a pool role, which has no single address", "role", name)
			continue
		}
		addrs, err := eng.Addresses(ctx, spec, false)
		if err != nil {
			return nil, fmt.Errorf("look up role %s: %w", name, err)
		}
		a := addrs[0]
		ip := a.PrivateIP
		if public {
			ip = a.PublicIP
		}
		if a.Free() || ip == "" {
			s.log.Warn("hosts: no instance holds the role's EIP; leaving the role out", "role", name, "allocation_id", a.AllocationID)
			continue
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("role %s: EC2 gave the address %q: %w", name, ip, err)
		}
		var names []string
		for _, n := range spec.DNSNames() {
			names = append(names, strings.TrimSuffix(n, "."))
		}
		entries = append(entries, hosts.Entry{IP: addr, Names: names, Role: name})
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no role has an address to write (%d roles in the configuration)", len(s.cfg.Roles))
	}
	return entries, nil
}

// checkOut returns a usage error if --out is empty or names something other
// than a regular file (see outError). Other problems, such as a directory
// that cannot be read, are left for hosts.Write to report in full.
func checkOut(out string) error {
	if out == "" {
		return usageError("--out is empty: name the hosts file")
	}
	var nr *hosts.NotRegularError
	if err := hosts.CheckRegular(out); errors.As(err, &nr) {
		return outError(out, err)
	}
	return nil
}

// outError is the error of reading or writing the hosts file at out: a
// usage error (exit 2) for a path that holds no regular file, naming where
// a link leads; else a failure (exit 1).
func outError(out string, err error) error {
	var nr *hosts.NotRegularError
	if !errors.As(err, &nr) {
		return fmt.Errorf("hosts: %w", err)
	}
	what := "--out " + out
	if info, err := os.Lstat(out); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		what += " (a link to " + nr.Path + ")"
	}
	return usageError("%s is a %s, not a regular file: point --out at the hosts file", what, nr.Kind())
}
