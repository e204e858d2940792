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

// TestUnitOverlayDeposed: a holder of an overlay address reads nothing
// between truth checks but its IMDS; the truth check reads the table
// naming another instance, confirms it, enters standby, takes the
// address off its local interface (local_interface), then runs
// on_standby with EIPCLAIM_OVERLAY_ADDRESS.
func TestUnitOverlayDeposed(t *testing.T) {
	wd := newWorld(t, self, 4)
	wd.at[3] = func(w *world) { w.moveTo(holderB) }
	addr := netip.MustParseAddr(ovAddr)
	local := &memLocal{addrs: map[string]map[netip.Addr]bool{"eth0": {addr: true}}}
	spec := overlayRole()
	spec.LocalInterface = "eth0"
	r := newRig(t, wd, spec, config.WatchSettings{})
	r.w.RepairEvery = 2
	r.w.lossConfirm = []time.Duration{time.Millisecond}
	r.w.Local = &failover.Local{Addr: local}
	r.hooks.onRun = func(env failover.HookEnv) {
		if env.Event == failover.EventStandby && local.addrs["eth0"][addr] {
			t.Errorf("on_standby ran while eth0 still had %s", addr)
		}
	}
	r.run(t)
	// Look 1 reads (start), look 2 reads nothing (IMDS answers), look 3
	// is the truth check and its confirming read, look 4 a standby's.
	if n := wd.count("overlay"); n != 4 {
		t.Errorf("%d reads of the overlay, want 4 (look 1, look 3 and its confirmation, look 4): %v", n, wd.calls)
	}
	if len(r.hooks.envs) != 2 || r.hooks.at[1] != 3 {
		t.Fatalf("hooks %+v at %v: want on_holder, then on_standby at look 3", r.hooks.envs, r.hooks.at)
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
		t.Errorf("%d probes of the new holder, want 1 (look 4): %v", n, wd.calls)
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
