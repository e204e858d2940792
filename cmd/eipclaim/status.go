package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/table"
)

// roleStatus is one role's line of `eipclaim status`.
type roleStatus struct {
	Role      string          `json:"role"`
	Addresses []claim.Address `json:"addresses,omitempty"`
	// PrivateAddress is where the role's secondary private IP is, when it
	// has one (private_address).
	PrivateAddress *claim.SecondaryStatus `json:"private_address,omitempty"`
	// Overlay is the role table's entry (holder, epoch) of the role's
	// overlay address and where each listed route table points, when it
	// has one (overlay).
	Overlay *claim.OverlayStatus `json:"overlay,omitempty"`
	DNS     []string             `json:"dns,omitempty"`
	// Warnings say what is wrong with what names the holder
	// (claim.Address.Warnings).
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

func runStatus(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) (err error) {
	c := newCommand("status", stderr, defaultStatusTimeout)
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
	eng := s.engine()
	// Status is for people and scripts: an EIP that does not exist is
	// reported at once (after a look or two), and the other roles follow.
	eng.NotFoundWait = statusNotFoundWait
	// The role table, read once for every role: its entries are compared
	// with the EIPs.
	var recorded map[string]table.Entry
	if st := s.tableStore(); st != nil {
		if snap, err := st.ReadSnapshot(ctx); err == nil {
			recorded = snap.Doc.Roles
		}
	}
	var out []roleStatus
	var firstErr error
	for _, name := range roles {
		spec := s.cfg.Roles[name]
		st := roleStatus{Role: name, DNS: s.currentDNS(ctx, name, spec)}
		var addrs []claim.Address
		var err error
		if spec.HasEIP() {
			addrs, err = eng.Addresses(ctx, spec, true)
		}
		if err == nil && spec.PrivateAddress != "" {
			st.PrivateAddress, err = eng.Secondary(ctx, name, spec, true)
		}
		if err == nil && spec.Overlay != nil {
			st.Overlay, err = eng.Overlay(ctx, name, spec, s.roleTable(), true)
			if err == nil && st.Overlay.Holder != "" && !st.Overlay.Consistent() {
				st.Warnings = append(st.Warnings, "the overlay address's route tables do not all point at the holder the role table names ("+st.Overlay.Holder+"): run eipclaim on the holder to repair them")
			}
		}
		if err != nil {
			st.Error = err.Error()
			if firstErr == nil {
				firstErr = fmt.Errorf("status of role %s: %w", name, err)
			}
		}
		st.Addresses = addrs
		var rec *epoch.Recorded
		if e, ok := recorded[name]; ok {
			rec = &epoch.Recorded{Epoch: e.Epoch, Holder: e.Holder}
		}
		for _, a := range addrs {
			if len(addrs) == 1 {
				st.Warnings = append(st.Warnings, a.Warnings(rec)...)
			} else {
				st.Warnings = append(st.Warnings, a.Warnings(nil)...) // a pool's entry is one of its EIPs'
			}
		}
		out = append(out, st)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return firstErr
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tEIP\tALLOCATION\tHOLDER\tEPOCH\tINTERFACE\tPRIVATE IP\tHEALTH\tDNS")
	for _, st := range out {
		if st.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\terror: %s\t%s\n", st.Role, st.Error, join(st.DNS))
		}
		for _, a := range st.Addresses {
			holder, health := holderColumn(a.Free(), a.Holder), healthColumn(a.Health)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Role, a.PublicIP, a.AllocationID, holder, epochColumn(a.Tags[claim.TagEpoch]), dash(a.ENI), dash(a.PrivateIP), health, join(st.DNS))
		}
		if p := st.PrivateAddress; p != nil {
			// The role's secondary private IP: a line of its own, in
			// the EIP column (it has no allocation).
			holder, health := holderColumn(p.Free(), p.Holder), healthColumn(p.Health)
			fmt.Fprintf(tw, "%s\tprivate %s\t-\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Role, p.Address, holder, epochColumn(p.Epoch), dash(p.ENI), dash(p.HolderIP), health, join(st.DNS))
		}
		if ov := st.Overlay; ov != nil {
			// The role's overlay address: the role table's holder and
			// epoch, the route tables' targets in the INTERFACE column.
			holder, health := "free", healthColumn(ov.Health)
			if ov.Holder != "" {
				holder = ov.Holder
			}
			var routes []string
			for _, r := range ov.Tables {
				routes = append(routes, r.RouteTable+"->"+dash(r.ENI))
			}
			fmt.Fprintf(tw, "%s\toverlay %s\t-\t%s\t%d\t%s\t-\t%s\t%s\n", st.Role, ov.Address, holder, ov.Epoch, strings.Join(routes, ","), health, join(st.DNS))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range out {
		for _, w := range st.Warnings {
			fmt.Fprintf(stdout, "WARNING %s: %s\n", st.Role, w)
		}
	}
	return firstErr
}

// holderColumn is the HOLDER column: "free", the holder's instance, or
// "(no instance)" for an address held by an interface of no instance.
func holderColumn(free bool, holder string) string {
	switch {
	case free:
		return "free"
	case holder == "":
		return "(no instance)"
	}
	return holder
}

// healthColumn is the HEALTH column: why the holder was judged as it
// was, "DOWN: " first when down; "-" when it was not examined.
func healthColumn(h *claim.Health) string {
	switch {
	case h == nil:
		return "-"
	case h.Down:
		return "DOWN: " + h.Why
	}
	return h.Why
}

// statusNotFoundWait is how long status looks for an EIP that EC2 says
// does not exist.
const statusNotFoundWait = 2 * time.Second

// epochColumn is the EPOCH column: the tag's epoch, "-" without a tag,
// "invalid" when it is not an epoch (a WARNING line says what it is).
func epochColumn(tag string) string {
	if tag == "" {
		return "-"
	}
	if _, err := epoch.Parse(tag); err != nil {
		return "invalid"
	}
	return tag
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func join(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, "; ")
}

// currentDNS says what each of the role's names holds now at its
// publisher: "route53 master-db.example.internal: CNAME ... TTL 60". A
// lookup that fails says so in place of the value.
func (s *session) currentDNS(ctx context.Context, role string, spec *config.Role) []string {
	var out []string
	for _, p := range s.publishersFor(role, spec, false) {
		what := p.Kind() + " " + p.Name()
		v, err := p.Current(ctx)
		if err != nil {
			v = "lookup failed: " + err.Error()
		}
		out = append(out, what+": "+v)
	}
	return out
}
