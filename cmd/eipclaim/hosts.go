package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/eipclaim/eipclaim/internal/fetch"
	"github.com/eipclaim/eipclaim/internal/hosts"
	"github.com/eipclaim/eipclaim/internal/table"
)

func runHosts(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("hosts", stderr, defaultStatusTimeout)
	out := c.flags.String("out", hosts.DefaultPath(), "the hosts file to update")
	public := c.flags.Bool("public", false, "write the EIPs' public addresses, for clients outside the VPC (default: the holders' private IPs)")
	dryRun := c.flags.Bool("dry-run", false, "print the file that would be written, change nothing")
	from := c.flags.String("from", "", "build the block from the role table alone: s3://BUCKET/KEY (s3:GetObject only), https://… or a file; no EC2, no instance metadata, no configuration")
	c.checks = append(c.checks, func() error {
		if *out == "" {
			return usageError("--out must name the hosts file to update (default %s)", hosts.DefaultPath())
		}
		if *from != "" && c.config != "" {
			return usageError("--from and --config: hosts --from reads the role table alone, no configuration; give one of them")
		}
		return nil
	})
	// A client with its own --config need not be an EC2 instance; a client
	// with --from needs neither EC2 nor a configuration.
	c.options = func(o *openOptions) {
		if *from != "" {
			// Only an s3:// table needs the AWS configuration (a region).
			*o = openOptions{noConfig: true, aws: strings.HasPrefix(*from, "s3://")}
		}
	}
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
	var entries []hosts.Entry
	if *from != "" {
		entries, err = s.tableEntries(ctx, *from, *public)
	} else {
		entries, err = s.hostsEntries(ctx, *public)
	}
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
	var placed []hosts.Placed
	alloc := map[string]string{} // EC2's answer: a role may name its EIP by public_ip
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
		p := hosts.Placed{Role: name, Names: spec.HostNames()}
		alloc[name] = addrs[0].AllocationID
		if a := addrs[0]; !a.Free() {
			p.PrivateIP, p.PublicIP = a.PrivateIP, a.PublicIP
		}
		placed = append(placed, p)
	}
	entries, missing, err := hosts.Entries(placed, public, "EC2")
	if err != nil {
		return nil, err
	}
	for _, name := range missing {
		s.log.Warn("hosts: no instance holds the role's EIP; leaving the role out", "role", name, "allocation_id", alloc[name])
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

// tableEntries builds one entry per role of the role table at src: its
// private address (or its public one), the DNS names it lists, its name.
// A table that cannot be read whole, or is not a table, fails; so does one
// with no entry to write. An entry that is not valid (table.Parse) or
// that cannot be written beside the others (hosts.Usable) is left out with
// a warning naming it: one bad entry must not stop every client from
// getting the others.
func (s *session) tableEntries(ctx context.Context, src string, public bool) ([]hosts.Entry, error) {
	r := &table.Reader{HTTP: fetch.NewHTTPClient(s.log), Retry: s.retrier().Do}
	if strings.HasPrefix(src, "s3://") {
		r.S3 = s.s3()
	}
	d, err := r.Read(ctx, src)
	if err != nil {
		return nil, err
	}
	name := table.Redact(src)
	for _, err := range d.Skipped() {
		s.log.Warn("hosts: leaving out an entry of the role table that is not valid; write the role again (its next claim, or eipclaim register) or take it out (eipclaim register --remove)", "table", name, "error", err)
	}
	var placed []hosts.Placed
	for _, role := range slices.Sorted(maps.Keys(d.Roles)) {
		e := d.Roles[role]
		placed = append(placed, hosts.Placed{Role: role, Names: e.Names, PrivateIP: e.PrivateIP, PublicIP: e.PublicIP})
	}
	// table.Parse checked the addresses (config.CheckHostAddress).
	entries, missing, err := hosts.Entries(placed, public, name)
	if err != nil {
		return nil, err
	}
	for _, role := range missing {
		s.log.Warn("hosts: the role's entry has no address of this kind; leaving the role out", "role", role, "public", public)
	}
	entries, skipped := hosts.Usable(entries)
	for _, err := range skipped {
		s.log.Warn("hosts: leaving out an entry of the role table that cannot be written beside the others", "table", name, "error", err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("the role table %s has no role with an address to write (%d entries, %d left out as not valid)", name, len(d.Roles), len(d.Skipped()))
	}
	return entries, nil
}
