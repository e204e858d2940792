package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
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
	host, _ := os.Hostname()
	reg, err := table.NewRegistration(s.cfg, role, addr, pub, host)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var written table.Entry
	wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) {
		e, same, err := reg.Entry(d.Roles[role], time.Now())
		written = e
		if same {
			return false, nil
		}
		if err != nil {
			s.log.Warn("role table: "+err.Error(), "role", role, "table", st.URL())
		}
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
