package watch

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
)

// memLocal is the local interfaces in memory: a failover.LocalAddr.
type memLocal struct {
	addrs map[string]map[netip.Addr]bool // interface -> its addresses
	ops   []string
}

var _ failover.LocalAddr = (*memLocal)(nil)

func (m *memLocal) Ensure(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	m.ops = append(m.ops, "ensure "+iface+" "+addr.String())
	if m.addrs[iface][addr] {
		return false, nil
	}
	if m.addrs[iface] == nil {
		m.addrs[iface] = map[netip.Addr]bool{}
	}
	m.addrs[iface][addr] = true
	return true, nil
}

func (m *memLocal) Remove(_ context.Context, iface string, addr netip.Addr) (bool, error) {
	m.ops = append(m.ops, "remove "+iface+" "+addr.String())
	had := m.addrs[iface][addr]
	delete(m.addrs[iface], addr)
	return had, nil
}

func (m *memLocal) ByMAC(_ context.Context, mac string) (string, error) {
	return "if-" + mac, nil
}

// TestUnitSecondaryTakeover: a role with only private_address is watched
// as an EIP is: the standby reads EC2 through Secondary (never
// DescribeAddresses), probes the holder's primary private IP between
// truth checks, and on the fall-th failed probe reads afresh and runs the
// step; as holder, its looks read IMDS's local-ipv4s, and EC2 only at the
// truth check.
func TestUnitSecondaryTakeover(t *testing.T) {
	wd := newWorld(t, holderB, 9)
	wd.at[4] = func(w *world) { w.down[holderB] = true }
	r := newRig(t, wd, &config.Role{PrivateAddress: privAddr, HealthCheck: hc5432}, config.WatchSettings{Fall: 2})
	r.w.standbyEvery = 0
	r.run(t)
	r.wantSteps(t, 5)
	req := r.step.calls[0].req
	want := "holder " + holderB + " fails its health check: tcp:5432 on 10.0.1." + strconv.Itoa(len(holderB)) + " failed: connection refused: failed 2 looks of fall 2"
	if req.Reason != want || req.Spec.PrivateAddress != privAddr {
		t.Errorf("step request reason %q, private address %q; want %q, %s", req.Reason, req.Spec.PrivateAddress, want, privAddr)
	}
	// EC2: the start and the fresh read at look 5, by the address; the
	// holder's looks 6 to 9 read IMDS only.
	if n, m := wd.count("secondary"), wd.count("addresses"); n != 2 || m != 0 {
		t.Errorf("%d reads of the private address, %d of an EIP; want 2 and 0: %v", n, m, wd.calls)
	}
	if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 5 {
		t.Errorf("%d probes of the holder's primary private IP, want 5 (looks 1 to 5): %v", n, wd.calls)
	}
	if r.w.seen.ENI != "eni-"+self || r.w.assoc != "eni-"+self {
		t.Errorf("after the move the watcher sees %+v (assoc %q), want the private address on eni-%s", r.w.seen, r.w.assoc, self)
	}
	if !r.w.imdsSaw || r.w.mac != macEIP {
		t.Errorf("the holder's IMDS look did not find the address on %s's local-ipv4s (saw %v, mac %q)", macEIP, r.w.imdsSaw, r.w.mac)
	}
	r.wantState(t, StateHolder)
}

// TestUnitSecondaryDeposed: a holder of a private address whose IMDS no
// longer lists it (local-ipv4s) reads EC2, which shows it on another
// instance (two sources agree): it enters standby, takes the address off
// its local interface (local_interface), then runs on_standby with
// EIPCLAIM_PRIVATE_ADDRESS; a later look is a standby's.
func TestUnitSecondaryDeposed(t *testing.T) {
	wd := newWorld(t, self, 4)
	wd.at[3] = func(w *world) { w.moveTo(holderB) }
	addr := netip.MustParseAddr(privAddr)
	local := &memLocal{addrs: map[string]map[netip.Addr]bool{"eth1": {addr: true}}}
	r := newRig(t, wd, &config.Role{PrivateAddress: privAddr, LocalInterface: "eth1", HealthCheck: hc5432}, config.WatchSettings{})
	r.w.Local = &failover.Local{Addr: local, Observe: r.w.Metrics.LocalRun("db")}
	r.hooks.onRun = func(env failover.HookEnv) {
		if env.Event == failover.EventStandby && local.addrs["eth1"][addr] {
			t.Errorf("on_standby ran while eth1 still had %s", addr)
		}
	}
	r.run(t)
	r.wantSteps(t, 1)
	if got, want := len(r.clock.sleeps), 3; got != want {
		t.Errorf("waits %v, want %d intervals (no confirming delays: IMDS and EC2 agree)", r.clock.sleeps, want)
	}
	if len(r.hooks.envs) != 2 || r.hooks.at[1] != 3 {
		t.Fatalf("hooks %+v at %v: want on_holder, then on_standby at look 3", r.hooks.envs, r.hooks.at)
	}
	want := failover.HookEnv{Event: failover.EventStandby, Epoch: 5, PreviousHolder: self, Holder: holderB,
		Reason: "the EIP was moved to " + holderB, PrivateAddress: privAddr}
	if got := r.hooks.envs[1]; got != want {
		t.Errorf("on_standby env\n got %+v\nwant %+v", got, want)
	}
	if got := r.hooks.envs[0].PrivateAddress; got != privAddr {
		t.Errorf("on_holder's EIPCLAIM_PRIVATE_ADDRESS %q, want %s", got, privAddr)
	}
	if local.addrs["eth1"][addr] || len(local.ops) != 1 || local.ops[0] != "remove eth1 "+privAddr {
		t.Errorf("local interface ops %v (eth1 has it: %v), want one remove from eth1", local.ops, local.addrs["eth1"][addr])
	}
	if v := localValue(t, r.w.Metrics, "remove", "ok"); v != 1 {
		t.Errorf("eipclaim_local_interface_total{remove,ok} %v, want 1", v)
	}
	if n := wd.count("addresses"); n != 0 {
		t.Errorf("%d reads of an EIP, want none: %v", n, wd.calls)
	}
	if n := wd.count("probe 10.0.1." + strconv.Itoa(len(holderB))); n != 1 {
		t.Errorf("%d probes of the new holder, want 1 (look 4): %v", n, wd.calls)
	}
	r.wantState(t, StateStandby)
}

// TestUnitSecondaryStaleRead: a holder whose IMDS still lists the address
// but whose truth check reads it elsewhere confirms the loss by reading
// again: a later read showing it here keeps it holder.
func TestUnitSecondaryStaleRead(t *testing.T) {
	wd := newWorld(t, self, 3)
	wd.at[2] = func(w *world) { w.stale = []string{holderB} }
	r := newRig(t, wd, &config.Role{PrivateAddress: privAddr, HealthCheck: hc5432}, config.WatchSettings{})
	r.w.RepairEvery = 1
	r.w.lossConfirm = []time.Duration{time.Millisecond}
	r.run(t)
	r.wantState(t, StateHolder)
	if len(r.hooks.envs) != 1 || r.logCount("a later read shows it here; staying holder") != 1 {
		t.Errorf("hooks %+v: want on_holder only, the stale read logged:\n%s", r.hooks.envs, r.logs)
	}
}

// localValue is eipclaim_local_interface_total{role="db",op,result}.
func localValue(t *testing.T, m *Metrics, op, result string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eipclaim_local_interface_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["role"] == "db" && l["op"] == op && l["result"] == result {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestUnitEIPAndPrivateAddress: a role with an EIP and a private address
// is watched through its EIP, which leads: DescribeAddresses and IMDS's
// public-ipv4s, never a read of the address; the step (which moves both)
// runs on the EIP's failure, and both hooks get EIPCLAIM_PRIVATE_ADDRESS.
func TestUnitEIPAndPrivateAddress(t *testing.T) {
	wd := newWorld(t, holderB, 8)
	wd.at[3] = func(w *world) { w.down[holderB] = true }
	r := newRig(t, wd, &config.Role{AllocationID: alloc, PrivateAddress: privAddr, HealthCheck: hc5432}, config.WatchSettings{Fall: 2})
	r.w.standbyEvery = 0
	r.run(t)
	r.wantSteps(t, 4)
	if n, m := wd.count("secondary"), wd.count("addresses"); n != 0 || m != 2 {
		t.Errorf("%d reads of the private address, %d of the EIP; want 0 and 2 (start, fall): %v", n, m, wd.calls)
	}
	if len(r.hooks.envs) != 2 || r.hooks.envs[0].PrivateAddress != privAddr || r.hooks.envs[1].PrivateAddress != privAddr || r.hooks.envs[1].PublicIP != "203.0.113.10" {
		t.Errorf("hooks %+v: want on_standby then on_holder, both with the private address and the EIP", r.hooks.envs)
	}
	if r.w.seen.AllocationID != alloc || r.w.seen.PublicIP != "203.0.113.10" || !r.w.imdsSaw {
		t.Errorf("the holder follows %+v (IMDS saw it: %v), want the EIP through public-ipv4s", r.w.seen, r.w.imdsSaw)
	}
	r.wantState(t, StateHolder)
}
