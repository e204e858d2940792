package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// checkLine is one result of `eipclaim check`.
type checkLine struct {
	Role   string `json:"role,omitempty"`
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	denied bool
}

func runCheck(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("check", stderr, defaultStatusTimeout)
	asJSON := c.flags.Bool("json", false, "print JSON for machines")
	ctx, s, err := c.start(ctx, args, getenv, stderr, openOptions{instance: true, userData: true})
	if s == nil {
		return err
	}
	defer s.finish(&err)
	roles := slices.Sorted(maps.Keys(s.cfg.Roles))
	if c.explicitRole(getenv) {
		if _, err := s.spec(); err != nil {
			return err
		}
		roles = []string{s.role}
	}
	lines := []checkLine{{What: "configuration", OK: true, Detail: fmt.Sprintf("%d roles", len(s.cfg.Roles))}}
	eng := s.engine()
	for _, name := range roles {
		spec := s.cfg.Roles[name]
		perms, err := eng.Permissions(ctx, spec)
		if err != nil {
			lines = append(lines, checkLine{Role: name, What: "EIP and interface", Detail: err.Error(), denied: exitcode.Of(err) == exitcode.Denied})
			continue
		}
		for _, p := range perms {
			l := checkLine{Role: name, What: p.Action, OK: p.Allowed}
			if !p.Allowed {
				l.Detail, l.denied = p.Detail, p.Denied
			}
			lines = append(lines, l)
		}
		lines = append(lines, s.checkDNS(ctx, name, spec)...)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(lines); err != nil {
			return err
		}
	} else {
		for _, l := range lines {
			status := "ok    "
			if !l.OK {
				status = "FAILED"
				if l.denied {
					status = "DENIED"
				}
			}
			role := l.Role
			if role == "" {
				role = "-"
			}
			fmt.Fprintf(stdout, "%s  %-10s %s", status, role, l.What)
			if l.Detail != "" {
				fmt.Fprintf(stdout, ": %s", l.Detail)
			}
			fmt.Fprintln(stdout)
		}
	}
	failed, denied := 0, 0
	for _, l := range lines {
		if !l.OK {
			failed++
			if l.denied {
				denied++
			}
		}
	}
	switch {
	case denied > 0:
		return exitcode.With(exitcode.Denied, fmt.Errorf("check: %d of %d checks failed, %d not permitted: grant the actions named (see docs/iam-policy.json)", failed, len(lines), denied))
	case failed > 0:
		return fmt.Errorf("check: %d of %d checks failed", failed, len(lines))
	}
	return nil
}

// checkDNS runs each publisher's preflight: the Route 53 zone exists and
// holds the name, the RFC 2136 server answers for the zone with the TSIG
// key. It changes nothing.
func (s *session) checkDNS(ctx context.Context, role string, spec *config.Role) []checkLine {
	var lines []checkLine
	for _, p := range s.publishersFor(role, spec, false) {
		l := checkLine{Role: role, What: p.Kind() + " " + p.Name()}
		detail, err := p.Check(ctx)
		if err != nil {
			l.Detail, l.denied = err.Error(), exitcode.Of(err) == exitcode.Denied
		} else {
			l.OK, l.Detail = true, detail
		}
		lines = append(lines, l)
	}
	return lines
}
