package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/table"
)

// runRegister records (or with --remove takes out) a role's entry in the
// role table: a service that runs outside the cloud, which no claim
// publishes. No IMDS, no EC2: the configuration comes from --config or
// EIPCLAIM_CONFIG, and only the table's S3 object is read and written.
func runRegister(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("register", stderr, defaultStatusTimeout)
	address := c.flags.String("address", "", "the service's address, written in the table's private column (what clients inside the cloud use)")
	publicAddress := c.flags.String("public-address", "", "the address for clients outside (hosts --public); default: --address")
	remove := c.flags.Bool("remove", false, "take the role's entry out of the table")
	var addr, pub netip.Addr
	c.checks = append(c.checks, func() error {
		role := c.role
		if role == "" {
			role = getenv("EIPCLAIM_ROLE")
		}
		if role == "" {
			return usageError("register needs --role (or EIPCLAIM_ROLE): the role whose entry to write")
		}
		if err := config.CheckRoleName(role); err != nil {
			return usageError("--role %q: %v", role, err)
		}
		if c.config == "" && getenv("EIPCLAIM_CONFIG") == "" {
			return usageError("register needs --config or EIPCLAIM_CONFIG: the configuration whose repository: names the role table (register reads no user-data)")
		}
		if *remove {
			if *address != "" || *publicAddress != "" {
				return usageError("--remove takes no --address or --public-address")
			}
			return nil
		}
		var err error
		if *address == "" {
			return usageError("register needs --address IP (or --remove)")
		}
		if addr, err = config.ParseHostAddress(*address); err != nil {
			return usageError("--address %v", err)
		}
		pub = addr
		if *publicAddress != "" {
			if pub, err = config.ParseHostAddress(*publicAddress); err != nil {
				return usageError("--public-address %v", err)
			}
		}
		return nil
	})
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{tableOnly: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	role := c.role
	if role == "" {
		role = getenv("EIPCLAIM_ROLE")
	}
	st := s.tableStore()
	if st == nil {
		return usageError("register: the configuration has no repository: set repository: s3://BUCKET/KEY, the role table")
	}
	if *remove {
		wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Remove(role), nil })
		if err != nil {
			return fmt.Errorf("register --remove: %w", err)
		}
		what := "had no entry"
		if wrote {
			what = "entry removed"
		}
		s.log.Info("role table: "+what, "role", role, "table", st.URL())
		fmt.Fprintf(stdout, "%s: role %s %s\n", st.URL(), role, what)
		return nil
	}
	holder := "register"
	if h, err := os.Hostname(); err == nil && h != "" {
		holder += "@" + h
	}
	// Role names are the same whatever their case: the configuration's
	// spelling is the role's.
	for name := range s.cfg.Roles {
		if name != role && strings.EqualFold(name, role) {
			return usageError("--role %s: the configuration's role is %s (role names are host names, the same whatever their case): use --role %s", role, name, name)
		}
	}
	names := s.cfg.Roles[role].HostNames(role)
	var written table.Entry
	wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) {
		e := table.Entry{Name: role, PrivateIP: addr.String(), PublicIP: pub.String(), Names: names, Holder: holder, UpdatedAt: time.Now().UTC()}
		old, ok := d.Roles[role]
		if ok && old.PrivateIP == e.PrivateIP && old.PublicIP == e.PublicIP && old.Holder == e.Holder && old.PublicDNSName == "" && slices.Equal(old.Names, e.Names) {
			written = old
			return false, nil
		}
		// A registration moves the role: the epoch goes up, so that it
		// replaces whatever was there.
		var err error
		if e.Epoch, err = epoch.Next(old.Epoch); err != nil {
			s.log.Warn("role table: "+err.Error(), "role", role, "table", st.URL())
		}
		written = e
		return d.Set(e)
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	what := "unchanged"
	if wrote {
		what = "registered"
	}
	s.log.Info("role table: "+what, "role", role, "table", st.URL(), "address", addr.String(), "epoch", written.Epoch)
	fmt.Fprintf(stdout, "%s: role %s %s (%s)\n", st.URL(), role, what, written.Describe())
	return nil
}
