package decide

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
)

// The world of the plan tests: role db, EIP eipalloc-1 (203.0.113.1),
// holder i-h, candidates i-a (launched first) and i-b.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func runningHolder() Holder {
	return Holder{Instance: "i-h", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
}

func cand(id string, age int, mods ...func(*Candidate)) Candidate {
	c := Candidate{Instance: id, State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK, LaunchTime: t0.Add(time.Duration(age) * time.Minute)}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func held(h Holder) Address {
	return Address{AllocationID: "eipalloc-1", PublicIP: "203.0.113.1", Held: true, Holder: h, HolderTag: h.Instance}
}

var freeEIP = Address{AllocationID: "eipalloc-1", PublicIP: "203.0.113.1"}

func observed(policy config.Takeover, a Address, cs ...Candidate) Observed {
	return Observed{Spec: &config.Role{AllocationID: "eipalloc-1", Takeover: policy}, Addresses: []Address{a}, Candidates: cs}
}

func with(h Holder, f func(*Holder)) Holder { f(&h); return h }

func TestPlan(t *testing.T) {
	dead := &Probe{Result: "tcp:5432 on 10.0.0.9 failed: connection refused"}
	up := &Probe{OK: true, Result: "tcp:5432 on 10.0.0.9 answered"}
	a, b := cand("i-a", 0), cand("i-b", 1)
	schedule := Situation{}
	stopped := Situation{Subject: "i-h", State: StateStopped}
	tests := []struct {
		name string
		o    Observed
		s    Situation
		want Move
	}{
		// The schedule, holder healthy: keep, whatever the policy.
		{"healthy holder kept", observed("", held(runningHolder()), a, b), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true"}},
		{"healthy holder kept under always", observed(config.TakeoverAlways, held(runningHolder()), a), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true"}},
		{"healthy holder, probe answers", observed("", held(with(runningHolder(), func(h *Holder) { h.Probe = up })), a), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok, " + up.Result + "); DNS kept true"}},
		{"healthy holder initializing kept", observed("", held(with(runningHolder(), func(h *Holder) { h.InstanceStatus = StatusInitializing })), a), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance initializing, system ok); DNS kept true"}},
		{"untagged holder repaired", observed("", func() Address { x := held(runningHolder()); x.HolderTag = "i-old"; return x }(), a), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Repair: true, Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true; the audit tags repaired"}},
		{"bad epoch repaired", observed("", func() Address { x := held(runningHolder()); x.EpochBad = true; return x }()), schedule,
			Move{Action: Keep, Candidate: "i-h", Holder: "i-h", Repair: true, Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true; the audit tags repaired"}},
		// Holder down: taken over for the first candidate when the policy allows.
		{"stopped holder taken over", observed("", held(Holder{Instance: "i-h", State: StateStopped}), b, a), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h is stopped"}},
		{"gone holder taken over", observed(config.TakeoverIfHolderDown, held(Holder{Instance: "i-h", State: StateGone}), a), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h no longer exists"}},
		{"impaired holder taken over", observed("", held(with(runningHolder(), func(h *Holder) { h.SystemStatus = StatusImpaired })), b), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-b", Why: "holder i-h fails its status checks (instance ok, system impaired)"}},
		{"holder failing its probe taken over", observed("", held(with(runningHolder(), func(h *Holder) { h.Probe = dead })), a), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h fails its health check: " + dead.Result}},
		{"down holder under always taken over", observed(config.TakeoverAlways, held(Holder{Instance: "i-h", State: StateTerminated}), a), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h is terminated"}},
		{"down holder under never kept", observed(config.TakeoverNever, held(Holder{Instance: "i-h", State: StateStopped}), a), schedule,
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) needs a holder (holder i-h is stopped), but takeover is never"}},
		{"down holder, no candidate", observed("", held(Holder{Instance: "i-h", State: StateStopped})), schedule,
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) needs a holder (holder i-h is stopped), but no instance is tagged with the role (eipclaim:role)"}},
		{"down holder, every candidate ineligible", observed("", held(Holder{Instance: "i-h", State: StateStopped}),
			cand("i-a", 0, func(c *Candidate) { c.State = StatePending }), cand("i-b", 1, func(c *Candidate) { c.InstanceStatus = StatusInitializing }),
			cand("i-c", 2, func(c *Candidate) { c.Probe = dead })), schedule,
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) needs a holder (holder i-h is stopped), but no candidate is eligible (i-a is pending, not running; i-b status checks: instance initializing, system ok; i-c fails its health check: " + dead.Result + ")"}},
		{"the stopped holder is no candidate", observed("", held(Holder{Instance: "i-h", State: StateStopped}), cand("i-h", 0, func(c *Candidate) { c.State = StateStopped }), b), schedule,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-b", Why: "holder i-h is stopped"}},
		{"interface of no instance left alone", observed(config.TakeoverAlways, held(Holder{}), a), schedule,
			Move{Action: Nothing, Why: "203.0.113.1 (eipalloc-1) is " + NoInstance}},
		// A free EIP: claimed for the first eligible candidate.
		{"free EIP claimed", observed(config.TakeoverNever, freeEIP, b, a), schedule,
			Move{Action: Claim, Candidate: "i-a", Why: "the EIP was free"}},
		{"free EIP, candidate with a passing probe", observed("", freeEIP, cand("i-b", 0, func(c *Candidate) { c.Probe = up })), schedule,
			Move{Action: Claim, Candidate: "i-b", Why: "the EIP was free"}},
		{"free EIP, no candidate", observed("", freeEIP), schedule,
			Move{Action: Nothing, Why: "203.0.113.1 (eipalloc-1) is free and needs a holder, but no instance is tagged with the role (eipclaim:role)"}},
		// State-change events.
		{"event: holder stopped", observed("", held(Holder{Instance: "i-h", State: StateStopped}), a, b), stopped,
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h is stopped"}},
		{"event: holder stopped, the API still says running", observed("", held(runningHolder()), a), stopped,
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) is held by i-h, which is healthy (running, status checks: instance ok, system ok)"}},
		{"event: candidate running, EIP free: the event's instance first", observed("", freeEIP, a, b), Situation{Subject: "i-b", State: StateRunning},
			Move{Action: Claim, Candidate: "i-b", Why: "the EIP was free"}},
		{"event: candidate running, healthy holder", observed("", held(runningHolder()), a, b), Situation{Subject: "i-b", State: StateRunning},
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) is held by i-h, which is healthy (running, status checks: instance ok, system ok)"}},
		{"event: a candidate stopping is none", observed("", freeEIP, a, b), Situation{Subject: "i-a", State: StateStopping},
			Move{Action: Claim, Candidate: "i-b", Why: "the EIP was free"}},
		// Auto Scaling.
		{"launching: initializing instance claims the free EIP", observed("", freeEIP, a, cand("i-n", 9, func(c *Candidate) { c.InstanceStatus, c.SystemStatus = StatusInitializing, StatusInitializing })),
			Situation{Subject: "i-n", Launching: true}, Move{Action: Claim, Candidate: "i-n", Why: "the EIP was free"}},
		{"launching: impaired instance is none", observed("", freeEIP, cand("i-n", 9, func(c *Candidate) { c.SystemStatus = StatusImpaired })),
			Situation{Subject: "i-n", Launching: true}, Move{Action: Nothing, Why: "203.0.113.1 (eipalloc-1) is free and needs a holder, but no candidate is eligible (i-n status checks: instance ok, system impaired)"}},
		{"launching: healthy holder kept", observed("", held(runningHolder()), cand("i-n", 9)), Situation{Subject: "i-n", Launching: true},
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) is held by i-h, which is healthy (running, status checks: instance ok, system ok)"}},
		{"launching: down holder taken over by the new instance", observed("", held(Holder{Instance: "i-h", State: StateStopped}), a, cand("i-n", 9, func(c *Candidate) { c.InstanceStatus = StatusInitializing })),
			Situation{Subject: "i-n", Launching: true}, Move{Action: TakeOver, Holder: "i-h", Candidate: "i-n", Why: "holder i-h is stopped"}},
		{"terminating holder handed over by force", observed(config.TakeoverNever, held(runningHolder()), cand("i-h", 0), b), Situation{Subject: "i-h", Terminating: true},
			Move{Action: HandOver, Holder: "i-h", Candidate: "i-b", Force: true, Why: "holder i-h is terminating"}},
		{"terminating holder, no candidate: released", observed("", held(runningHolder()), cand("i-h", 0)), Situation{Subject: "i-h", Terminating: true},
			Move{Action: Release, Holder: "i-h", Why: "holder i-h is terminating and no candidate is eligible (i-h is leaving (the event))"}},
		{"terminating candidate: healthy holder kept", observed("", held(runningHolder()), a), Situation{Subject: "i-a", Terminating: true},
			Move{Action: Nothing, Holder: "i-h", Why: "203.0.113.1 (eipalloc-1) is held by i-h, which is healthy (running, status checks: instance ok, system ok)"}},
		// Failures.
		{"missing EIP", Observed{Spec: &config.Role{AllocationID: "eipalloc-9"}, Problem: "EIP eipalloc-9: not found"}, schedule,
			Move{Action: Failed, Why: "EIP eipalloc-9: not found"}},
		{"nothing observed", Observed{Spec: &config.Role{}}, schedule, Move{Action: Failed, Why: "no EIP observed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.o, tt.s)
			want := tt.want
			if want.Action != Failed && len(tt.o.Addresses) == 1 {
				want.AllocationID, want.PublicIP = "eipalloc-1", "203.0.113.1"
			}
			if len(got) != 1 || got[0] != want {
				t.Errorf("Plan =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// TestPlanEveryCombination plans every combination of holder state, status
// checks, probe, policy, candidates and event, and checks the rules that
// hold for all: a healthy holder's EIP never moves but by Auto Scaling's
// termination, a move goes only to an eligible candidate that is not the
// holder nor leaving, takeover: never takes nothing, a down holder's EIP
// is taken when the policy and a candidate allow, a free EIP is claimed
// when a candidate is eligible.
func TestPlanEveryCombination(t *testing.T) {
	states := []string{StateRunning, StatePending, StateStopping, StateStopped, StateShuttingDown, StateTerminated, StateGone}
	statuses := []string{StatusOK, StatusInitializing, StatusImpaired, StatusUnknown}
	probes := []*Probe{nil, {OK: true, Result: "answered"}, {Result: "refused"}}
	policies := []config.Takeover{"", config.TakeoverNever, config.TakeoverIfHolderDown, config.TakeoverAlways}
	candSets := map[string][]Candidate{
		"none":       nil,
		"healthy":    {cand("i-a", 0)},
		"ineligible": {cand("i-a", 0, func(c *Candidate) { c.State = StateStopped })},
		"two":        {cand("i-b", 1), cand("i-a", 0, func(c *Candidate) { c.Probe = &Probe{Result: "refused"} })},
		"initializing": {cand("i-a", 0, func(c *Candidate) {
			c.InstanceStatus, c.SystemStatus = StatusInitializing, StatusInitializing
		})},
	}
	situations := []Situation{{}, {Subject: "i-h", State: StateStopped}, {Subject: "i-a", State: StateRunning},
		{Subject: "i-a", Launching: true}, {Subject: "i-h", Terminating: true}, {Subject: "i-a", Terminating: true}}
	n := 0
	for _, free := range []bool{false, true} {
		for _, state := range states {
			for _, status := range statuses {
				for _, probe := range probes {
					h := Holder{Instance: "i-h", State: state, InstanceStatus: status, SystemStatus: StatusOK, Probe: probe}
					addr := held(h)
					if free {
						if state != StateRunning || status != StatusOK || probe != nil {
							continue // one free case per candidate set, policy and event
						}
						addr = freeEIP
					}
					for _, policy := range policies {
						for cname, cs := range candSets {
							for _, s := range situations {
								n++
								name := fmt.Sprintf("free=%v state=%s status=%s probe=%v policy=%q cands=%s event=%+v", free, state, status, probe, policy, cname, s)
								checkPlan(t, name, observed(policy, addr, cs...), s)
							}
						}
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d combinations planned", n)
	}
}

func checkPlan(t *testing.T, name string, o Observed, s Situation) {
	t.Helper()
	moves := Plan(o, s)
	if len(moves) != 1 {
		t.Fatalf("%s: %d moves, want 1: %+v", name, len(moves), moves)
	}
	m := moves[0]
	a := o.Addresses[0]
	eligible := map[string]bool{}
	for _, c := range o.Candidates {
		if ok, _ := Eligible(c, s.Launching && c.Instance == s.Subject); ok && !(s.Leaving() && c.Instance == s.Subject) && c.Instance != a.Holder.Instance {
			eligible[c.Instance] = true
		}
	}
	v := Judge(a.Holder)
	terminating := a.Held && s.Terminating && s.Subject == a.Holder.Instance
	if m.Why == "" {
		t.Errorf("%s: %s without a reason", name, m.Action)
	}
	switch m.Action {
	case Claim, TakeOver, HandOver:
		if !eligible[m.Candidate] {
			t.Errorf("%s: %s for %q, not an eligible candidate (%v)", name, m.Action, m.Candidate, eligible)
		}
	}
	switch {
	case !a.Held:
		if want := map[bool]Action{true: Claim, false: Nothing}[len(eligible) > 0]; m.Action != want {
			t.Errorf("%s: free EIP: %s, want %s", name, m.Action, want)
		}
	case terminating:
		if want := map[bool]Action{true: HandOver, false: Release}[len(eligible) > 0]; m.Action != want || (m.Action == HandOver && !m.Force) {
			t.Errorf("%s: terminating holder: %+v, want %s", name, m, want)
		}
	case !v.Down:
		want := Nothing
		if s.Subject == "" {
			want = Keep
		}
		if m.Action != want || (want == Keep && m.Candidate != a.Holder.Instance) {
			t.Errorf("%s: healthy holder (%s): %+v, want %s", name, v.Why, m, want)
		}
	case o.Spec.Takeover == config.TakeoverNever:
		if m.Action != Nothing || !strings.Contains(m.Why, "takeover is never") {
			t.Errorf("%s: down holder under never: %+v, want nothing", name, m)
		}
	default:
		if want := map[bool]Action{true: TakeOver, false: Nothing}[len(eligible) > 0]; m.Action != want || (want == TakeOver && m.Why != v.Why) {
			t.Errorf("%s: down holder (%s): %+v, want %s", name, v.Why, m, want)
		}
	}
	if m.Force && m.Action != HandOver {
		t.Errorf("%s: %s by force", name, m.Action)
	}
}

func pool(policy config.Takeover, addrs []Address, cs ...Candidate) Observed {
	return Observed{Spec: &config.Role{Pool: &config.Pool{Tags: map[string]string{"eip-pool": "web"}}, Takeover: policy}, Addresses: addrs, Candidates: cs}
}

func poolEIP(n int, h *Holder) Address {
	a := Address{AllocationID: fmt.Sprintf("eipalloc-%d", n), PublicIP: fmt.Sprintf("203.0.113.%d", n)}
	if h != nil {
		a.Held, a.Holder, a.HolderTag = true, *h, h.Instance
	}
	return a
}

func TestPlanPool(t *testing.T) {
	hh := func(id string) *Holder { h := runningHolder(); h.Instance = id; return &h }
	stoppedH := func(id string) *Holder { return &Holder{Instance: id, State: StateStopped} }
	tests := []struct {
		name string
		o    Observed
		s    Situation
		want []string // "action candidate holder alloc"
	}{
		{"every candidate holds one", pool("", []Address{poolEIP(1, hh("i-a")), poolEIP(2, hh("i-b"))}, cand("i-a", 0), cand("i-b", 1)), Situation{},
			[]string{"nothing - - -"}},
		{"a candidate without one claims a free one", pool("", []Address{poolEIP(1, hh("i-a")), poolEIP(2, nil)}, cand("i-a", 0), cand("i-b", 1)), Situation{},
			[]string{"claim i-b - -"}},
		{"free EIPs for the best candidates only", pool("", []Address{poolEIP(1, nil)}, cand("i-c", 2), cand("i-b", 1)), Situation{},
			[]string{"claim i-b - -", "nothing i-c - -"}},
		{"a down holder's EIP released for a waiting candidate", pool("", []Address{poolEIP(1, stoppedH("i-a")), poolEIP(2, hh("i-b"))}, cand("i-b", 1), cand("i-c", 2)), Situation{},
			[]string{"release - i-a eipalloc-1", "claim i-c - -"}},
		{"a down holder's EIP released even with nobody waiting", pool("", []Address{poolEIP(1, stoppedH("i-a"))}), Situation{},
			[]string{"release - i-a eipalloc-1"}},
		{"takeover never keeps a down holder's EIP", pool(config.TakeoverNever, []Address{poolEIP(1, stoppedH("i-a"))}, cand("i-c", 2)), Situation{},
			[]string{"nothing - i-a eipalloc-1", "nothing i-c - -"}},
		{"terminating holder released, its EIP claimed by a waiting candidate", pool("", []Address{poolEIP(1, hh("i-a"))}, cand("i-a", 0), cand("i-n", 5)),
			Situation{Subject: "i-a", Terminating: true}, []string{"release - i-a eipalloc-1", "claim i-n - -"}},
		{"launching instance claims first", pool("", []Address{poolEIP(1, nil)}, cand("i-b", 1), cand("i-n", 5, func(c *Candidate) { c.InstanceStatus = StatusInitializing })),
			Situation{Subject: "i-n", Launching: true}, []string{"claim i-n - -", "nothing i-b - -"}},
		{"no candidate, no holder", pool("", []Address{poolEIP(1, nil)}), Situation{}, []string{"nothing - - -"}},
		{"missing pool", Observed{Spec: &config.Role{Pool: &config.Pool{}}, Problem: "pool eip-pool=web has no EIP"}, Situation{}, []string{"failed - - -"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range Plan(tt.o, tt.s) {
				if m.Why == "" {
					t.Errorf("%s without a reason", m.Action)
				}
				got = append(got, fmt.Sprintf("%s %s %s %s", m.Action, or(m.Candidate), or(m.Holder), or(m.AllocationID)))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Plan =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
