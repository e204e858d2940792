package watch

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/table"
)

// ovAddr is the overlay address of the tests' roles that have one, routed
// in two tables.
const ovAddr = "192.168.100.10"

var ovTables = []string{"rtb-0000000000000000a", "rtb-0000000000000000b"}

func overlayRole() *config.Role {
	return &config.Role{Overlay: &config.Overlay{Address: ovAddr, RouteTables: ovTables}, HealthCheck: hc5432}
}

// Overlay answers a read of the role's overlay address from the same
// world: the role table's entry names the holder with the epoch tag's
// value, and both tables route the address to eni-<holder> (or to
// routesTo's interface: drift).
func (w *world) Overlay(ctx context.Context, role string, spec *config.Role, tbl claim.RoleTable, withHealth bool) (*claim.OverlayStatus, error) {
	w.looks++
	w.calls = append(w.calls, "overlay")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if withHealth || spec.Overlay == nil || spec.Overlay.Address != ovAddr || spec.HasEIP() || role != "db" {
		w.t.Errorf("Overlay(%s, %+v, withHealth %v): want the role's overlay of a role without EIP, without health", role, spec, withHealth)
	}
	if w.apiDown > 0 {
		w.apiDown--
		return nil, errors.New("api error SlowDown: Please reduce your request rate")
	}
	h := w.holder
	if len(w.stale) > 0 {
		h, w.stale = w.stale[0], w.stale[1:]
	}
	n, _ := strconv.ParseInt(w.tags[claim.TagEpoch], 10, 64)
	st := &claim.OverlayStatus{Address: ovAddr, Holder: h, Epoch: n}
	if h != "" {
		st.UpdatedAt, _ = time.Parse(time.RFC3339, w.tags[claim.TagClaimedAt])
	}
	to := h
	if w.routesTo != "" {
		to = w.routesTo
	}
	for _, rt := range ovTables {
		r := claim.TableRoute{RouteTable: rt}
		if to != "" {
			r.ENI, r.Instance, r.State = "eni-"+to, to, "active"
		}
		st.Tables = append(st.Tables, r)
	}
	return st, nil
}

// ReadIfChanged answers the overlay holder's conditional read of the role
// table from the same world: its ETag is the holder and the epoch; "table
// 304" when it is the one given, else "table read".
func (w *world) ReadIfChanged(ctx context.Context, etag string) (*table.Snapshot, bool, error) {
	if w.tableHang {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	if w.tableDown > 0 {
		w.tableDown--
		w.calls = append(w.calls, "table down")
		return nil, false, errors.New("read the role table s3://b/roles.json: api error SlowDown: Please reduce your request rate")
	}
	now := w.holder + "@" + w.tags[claim.TagEpoch]
	if etag == now {
		w.calls = append(w.calls, "table 304")
		return nil, false, nil
	}
	w.calls = append(w.calls, "table read")
	n, _ := strconv.ParseInt(w.tags[claim.TagEpoch], 10, 64)
	d := table.New()
	if w.holder != "" {
		d.Roles["db"] = table.Entry{Name: "db", PrivateIP: ovAddr, Holder: w.holder, Epoch: n}
	}
	return &table.Snapshot{Doc: d, ETag: now}, true, nil
}

// TestUnitOverlayTakeover: a role with only an overlay address is watched
// as an EIP is: the standby reads the table's entry and the routes
// (never DescribeAddresses), learns the holder's primary private IP once
// (from the instance: routes do not say it), probes it between truth
// checks, and on the fall-th failed probe reads afresh and runs the step;
// as holder, its looks ask IMDS only whether it answers (no IMDS lists an
// overlay address), and read nothing else until the truth check. Both
// hooks get EIPCLAIM_OVERLAY_ADDRESS.
func TestUnitOverlayTakeover(t *testing.T) {
	wd := newWorld(t, holderB, 9)
	wd.at[4] = func(w *world) { w.down[holderB] = true }
	r := newRig(t, wd, overlayRole(), config.WatchSettings{Fall: 2})
	r.w.standbyEvery = 0
	r.run(t)
	r.wantSteps(t, 5)
	req := r.step.calls[0].req
	want := "holder " + holderB + " fails its health check: tcp:5432 on 10.0.1." + strconv.Itoa(len(holderB)) + " failed: connection refused: failed 2 looks of fall 2"
	if req.Reason != want || req.Spec.Overlay == nil {
		t.Errorf("step request reason %q, overlay %+v; want %q and the overlay", req.Reason, req.Spec.Overlay, want)
	}
	if n, m, s := wd.count("overlay"), wd.count("addresses"), wd.count("secondary"); n != 2 || m != 0 || s != 0 {
		t.Errorf("%d reads of the overlay, %d of an EIP, %d of a private address; want 2, 0, 0 (start, fall): %v", n, m, s, wd.calls)
	}
	if n := wd.count("health " + holderB); n != 1 {
		t.Errorf("%d reads of the holder instance, want 1 (its private IP, learnt once): %v", n, wd.calls)
	}
	if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 5 {
		t.Errorf("%d probes of the holder's primary private IP, want 5 (looks 1 to 5): %v", n, wd.calls)
	}
	if r.w.seen.ENI != "eni-"+self || r.w.assoc != "eni-"+self {
		t.Errorf("after the move the watcher sees %+v (assoc %q), want the routes to eni-%s", r.w.seen, r.w.assoc, self)
	}
	// Looks 6 to 9 as holder: one IMDS read each (instance-id); the
	// standby read it once, checking its own reach before the takeover.
	if wd.imdsCalls != 5 {
		t.Errorf("%d IMDS reads, want 5 (its reach at look 5, looks 6-9 as holder)", wd.imdsCalls)
	}
	if len(r.hooks.envs) != 2 || r.hooks.envs[0].Event != failover.EventStandby || r.hooks.envs[1].Event != failover.EventHolder {
		t.Fatalf("hooks %+v: want on_standby at start, then on_holder", r.hooks.envs)
	}
	for _, env := range r.hooks.envs {
		if env.OverlayAddress != ovAddr || env.PublicIP != "" || env.PrivateAddress != "" {
			t.Errorf("%s hook env %+v: want EIPCLAIM_OVERLAY_ADDRESS %s alone", env.Event, env, ovAddr)
		}
	}
	if got := r.hooks.envs[1].PreviousHolder; got != holderB {
		t.Errorf("on_holder's previous holder %q, want %s", got, holderB)
	}
	r.wantState(t, StateHolder)
}

// TestUnitOverlayDeposed: a holder of an overlay address reads, between
// truth checks, the role table conditionally (304 while unchanged) and
// its IMDS; the look after another instance wrote the table at a higher
// epoch reads the entry and the routes once (no confirming read: the
// table is the arbiter), enters standby at that look, takes the address
// off its local interface (local_interface), then runs on_standby with
// EIPCLAIM_OVERLAY_ADDRESS. No truth check is due (RepairEvery 1000).
func TestUnitOverlayDeposed(t *testing.T) {
	wd := newWorld(t, self, 5)
	wd.at[4] = func(w *world) { w.moveTo(holderB) }
	addr := netip.MustParseAddr(ovAddr)
	local := &memLocal{addrs: map[string]map[netip.Addr]bool{"eth0": {addr: true}}}
	spec := overlayRole()
	spec.LocalInterface = "eth0"
	r := newRig(t, wd, spec, config.WatchSettings{})
	r.hooks.onRun = func(env failover.HookEnv) {
		if env.Event == failover.EventStandby && local.addrs["eth0"][addr] {
			t.Errorf("on_standby ran while eth0 still had %s", addr)
		}
	}
	r.w.Local = &failover.Local{Addr: local}
	r.run(t)
	// Look 1 reads (start); look 2 reads the table (new tenure), look 3
	// gets 304; look 4 reads the changed table, then the entry and the
	// routes once; look 5 is a standby's.
	if n := wd.count("overlay"); n != 3 {
		t.Errorf("%d reads of the overlay, want 3 (look 1, look 4 once, look 5): %v", n, wd.calls)
	}
	if n, m := wd.count("table read"), wd.count("table 304"); n != 2 || m != 1 {
		t.Errorf("%d full reads of the table and %d answered 304, want 2 and 1: %v", n, m, wd.calls)
	}
	if len(r.hooks.envs) != 2 || r.hooks.at[1] != 4 {
		t.Fatalf("hooks %+v at %v: want on_holder, then on_standby at look 4 (the look after the move)", r.hooks.envs, r.hooks.at)
	}
	want := failover.HookEnv{Event: failover.EventStandby, Epoch: 5, PreviousHolder: self, Holder: holderB,
		Reason: "the EIP was moved to " + holderB, OverlayAddress: ovAddr}
	if got := r.hooks.envs[1]; got != want {
		t.Errorf("on_standby env\n got %+v\nwant %+v", got, want)
	}
	if local.addrs["eth0"][addr] || len(local.ops) != 1 || local.ops[0] != "remove eth0 "+ovAddr {
		t.Errorf("local interface ops %v, want one remove of %s from eth0", local.ops, ovAddr)
	}
	if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 1 {
		t.Errorf("%d probes of the new holder, want 1 (look 5): %v", n, wd.calls)
	}
	r.wantState(t, StateStandby)
}

// TestUnitOverlayTableUnreadable: a role table that a holder's look
// cannot read counts for nothing (said once): the holder stays, reads no
// EC2, and stands down at the first look that reads the table again. A
// read that hangs holds a look up for tableTimeout at most.
func TestUnitOverlayTableUnreadable(t *testing.T) {
	wd := newWorld(t, self, 5)
	wd.at[2] = func(w *world) { w.tableDown = 2; w.moveTo(holderB) }
	wd.at[4] = func(w *world) { w.tableHang = true }
	wd.at[5] = func(w *world) { w.tableHang = false }
	r := newRig(t, wd, overlayRole(), config.WatchSettings{})
	began := time.Now()
	r.run(t)
	if d := time.Since(began); d > 3*tableTimeout {
		t.Errorf("5 looks took %s with one table read hanging, want about %s", d, tableTimeout)
	}
	if n := r.logCount("could not read the role table at a look"); n != 1 {
		t.Errorf("said %d times that the table could not be read, want once\n%s", n, r.logs)
	}
	if len(r.hooks.envs) != 2 || r.hooks.at[1] != 5 {
		t.Fatalf("hooks %+v at %v: want on_standby at look 5, the first that reads the table", r.hooks.envs, r.hooks.at)
	}
	if n := wd.count("overlay"); n != 2 {
		t.Errorf("%d reads of the overlay, want 2 (look 1, look 5): %v", n, wd.calls)
	}
	r.wantState(t, StateStandby)
}

// TestUnitOverlayRoutesDrift: the table names this instance and the
// routes point elsewhere; a holder's look that reads them (its IMDS
// silent) runs the step at once, which repairs them, not at the next
// truth check. A look whose IMDS answers reads nothing.
func TestUnitOverlayRoutesDrift(t *testing.T) {
	wd := newWorld(t, self, 4)
	wd.at[3] = func(w *world) { w.routesTo, w.imdsDown = holderB, 1 }
	r := newRig(t, wd, overlayRole(), config.WatchSettings{})
	r.run(t)
	r.wantSteps(t, 1, 3)
	if wd.routesTo != "" {
		t.Errorf("the routes still point at %s", wd.routesTo)
	}
	if n := wd.count("overlay"); n != 2 {
		t.Errorf("%d reads of the overlay, want 2 (look 1, look 3 with IMDS silent): %v", n, wd.calls)
	}
	if r.step.calls[1].req.Hooks != nil {
		t.Errorf("the repair ran with hooks: a repair is no new tenure")
	}
	r.wantState(t, StateHolder)
}
