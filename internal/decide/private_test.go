package decide

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
)

// The private address of the plan tests: 10.0.1.50.
const privAddr = "10.0.1.50"

func priv(h *Holder) *Private {
	if h == nil {
		return &Private{Address: privAddr}
	}
	return &Private{Address: privAddr, Held: true, Holder: *h, HolderTag: h.Instance}
}

func privateOnly(policy config.Takeover, p *Private, cs ...Candidate) Observed {
	return Observed{Spec: &config.Role{PrivateAddress: privAddr, Takeover: policy}, Private: p, Candidates: cs}
}

func both(policy config.Takeover, a Address, p *Private, cs ...Candidate) Observed {
	o := observed(policy, a, cs...)
	o.Spec.PrivateAddress, o.Private = privAddr, p
	return o
}

func hp(h Holder) *Holder { return &h }

// TestPlanPrivateOnly: a role with only private_address is planned as an
// EIP is, on its private address.
func TestPlanPrivateOnly(t *testing.T) {
	a, b := cand("i-a", 0), cand("i-b", 1)
	tests := []struct {
		name string
		o    Observed
		s    Situation
		want Move
	}{
		{"healthy holder kept", privateOnly("", priv(hp(runningHolder())), a), Situation{},
			Move{Action: Keep, Holder: "i-h", Candidate: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true"}},
		{"untagged holder repaired", privateOnly("", func() *Private { p := priv(hp(runningHolder())); p.HolderTag = ""; return p }(), a), Situation{},
			Move{Action: Keep, Holder: "i-h", Candidate: "i-h", Repair: true, Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true; the audit tags repaired"}},
		{"free claimed", privateOnly("", priv(nil), b, a), Situation{},
			Move{Action: Claim, Candidate: "i-a", Why: "the private address was free"}},
		{"free, no candidate", privateOnly("", priv(nil)), Situation{},
			Move{Action: Nothing, Why: "private address 10.0.1.50 is free and needs a holder, but no instance is tagged with the role (eipclaim:role)"}},
		{"stopped holder taken over", privateOnly("", priv(&Holder{Instance: "i-h", State: StateStopped}), a, b), Situation{},
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h is stopped"}},
		{"stopped holder under never", privateOnly(config.TakeoverNever, priv(&Holder{Instance: "i-h", State: StateStopped}), a), Situation{},
			Move{Action: Nothing, Holder: "i-h", Why: "private address 10.0.1.50 needs a holder (holder i-h is stopped), but takeover is never"}},
		{"terminating holder handed over", privateOnly("", priv(hp(runningHolder())), a), Situation{Subject: "i-h", Terminating: true},
			Move{Action: HandOver, Holder: "i-h", Candidate: "i-a", Force: true, Why: "holder i-h is terminating"}},
		{"terminating holder, no candidate: released", privateOnly("", priv(hp(runningHolder()))), Situation{Subject: "i-h", Terminating: true},
			Move{Action: Release, Holder: "i-h", Why: "holder i-h is terminating and no instance is tagged with the role (eipclaim:role)"}},
		{"on an interface of no instance", privateOnly("", priv(&Holder{})), Situation{},
			Move{Action: Nothing, Why: "private address 10.0.1.50 is " + NoInstance}},
		{"the holder is no candidate of its own", privateOnly("", priv(&Holder{Instance: "i-a", State: StateStopped}), a), Situation{},
			Move{Action: Nothing, Holder: "i-a", Why: "private address 10.0.1.50 needs a holder (holder i-a is stopped), but no candidate is eligible (i-a holds it)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.o, tt.s)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("Plan =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

// TestPlanPrivateFollowsEIP: a role with an EIP and a private address; the
// EIP's holder leads.
func TestPlanPrivateFollowsEIP(t *testing.T) {
	a, b := cand("i-a", 0), cand("i-b", 1)
	stoppedH := Holder{Instance: "i-h", State: StateStopped}
	healthyB := Holder{Instance: "i-b", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
	tests := []struct {
		name    string
		o       Observed
		s       Situation
		eip     Action
		cand    string
		want    Action
		force   bool
		repair  bool
		whyPart string
	}{
		{"both kept", both("", held(runningHolder()), priv(hp(runningHolder())), a), Situation{}, Keep, "i-h", Keep, false, false, "with the EIP"},
		{"private's tags repaired", both("", held(runningHolder()), func() *Private { p := priv(hp(runningHolder())); p.EpochBad = true; return p }(), a), Situation{}, Keep, "i-h", Keep, false, true, "repaired"},
		{"free private joins the EIP", both("", held(runningHolder()), priv(nil), a), Situation{}, Keep, "i-h", Claim, false, false, "was free"},
		{"healthy split: moved to the EIP's holder", both("", held(runningHolder()), priv(&healthyB), a, b), Situation{}, Keep, "i-h", TakeOver, true, false, "the EIP's holder leads"},
		{"healthy split under never: left", both(config.TakeoverNever, held(runningHolder()), priv(&healthyB), a, b), Situation{}, Keep, "", Nothing, false, false, "takeover is never"},
		{"both taken over together", both("", held(stoppedH), priv(&stoppedH), a, b), Situation{}, TakeOver, "i-a", TakeOver, false, false, "holder i-h is stopped"},
		{"EIP free: claimed where the private address is", both("", freeEIP, priv(&healthyB), a, b), Situation{}, Claim, "i-b", Keep, false, false, "with the EIP"},
		{"event about the private's stopped holder: joins the healthy EIP holder", both("", held(runningHolder()), priv(&Holder{Instance: "i-b", State: StateStopped}), a), Situation{Subject: "i-b", State: StateStopped},
			Nothing, "i-h", TakeOver, false, false, "holder i-b is stopped"},
		{"terminating holder of both: handed over together", both("", held(runningHolder()), priv(hp(runningHolder())), a), Situation{Subject: "i-h", Terminating: true}, HandOver, "i-a", HandOver, true, false, "terminating"},
		{"terminating holder, no candidate: both released", both("", held(runningHolder()), priv(hp(runningHolder()))), Situation{Subject: "i-h", Terminating: true}, Release, "", Release, false, false, "released with the EIP"},
		{"EIP stays nowhere: private untouched", both(config.TakeoverNever, held(stoppedH), priv(&stoppedH), a), Situation{}, Nothing, "", Nothing, false, false, "does not move"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.o, tt.s)
			if len(got) != 1 || got[0].Private == nil {
				t.Fatalf("Plan = %+v: want one move with Private", got)
			}
			m, p := got[0], got[0].Private
			if m.Action != tt.eip {
				t.Errorf("EIP: %s (%s), want %s", m.Action, m.Why, tt.eip)
			}
			if p.Action != tt.want || p.Candidate != tt.cand || p.Force != tt.force || p.Repair != tt.repair || !strings.Contains(p.Why, tt.whyPart) {
				t.Errorf("private: %+v\nwant action %s candidate %q force %v repair %v, why containing %q", *p, tt.want, tt.cand, tt.force, tt.repair, tt.whyPart)
			}
		})
	}
}

// TestPlanPrivateEveryCombination plans a role with an EIP and a private
// address over every combination of both holders, policy, candidates and
// event, and checks the rules that hold for all: the private address ends
// where the EIP ends, or does not move; it moves off a healthy holder only
// by force, to join the EIP, never under takeover: never, nor from a
// terminating holder but by hand-over; the EIP's plan is the plan of a role
// without a private address but for the candidate order.
func TestPlanPrivateEveryCombination(t *testing.T) {
	holders := map[string]*Holder{
		"free":       nil,
		"i-h up":     hp(runningHolder()),
		"i-h down":   {Instance: "i-h", State: StateStopped},
		"i-a up":     {Instance: "i-a", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK},
		"i-b down":   {Instance: "i-b", State: StateRunning, InstanceStatus: StatusImpaired, SystemStatus: StatusOK},
		"i-x up":     {Instance: "i-x", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK},
		"no inst":    {},
		"i-h probed": {Instance: "i-h", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK, Probe: &Probe{Result: "refused"}},
	}
	policies := []config.Takeover{"", config.TakeoverNever, config.TakeoverAlways}
	candSets := map[string][]Candidate{"none": nil, "a": {cand("i-a", 0)}, "a b": {cand("i-a", 0), cand("i-b", 1)}}
	situations := []Situation{{}, {Subject: "i-h", State: StateStopped}, {Subject: "i-a", State: StateRunning},
		{Subject: "i-h", Terminating: true}, {Subject: "i-a", Terminating: true}, {Subject: "i-b", State: StateStopped}}
	n := 0
	for en, eh := range holders {
		if eh != nil && eh.Instance == "" {
			continue // an EIP on no instance: TestPlan's
		}
		for pn, ph := range holders {
			for _, policy := range policies {
				for cn, cs := range candSets {
					for _, s := range situations {
						n++
						name := fmt.Sprintf("eip=%s private=%s policy=%q cands=%s event=%+v", en, pn, policy, cn, s)
						addr := freeEIP
						if eh != nil {
							addr = held(*eh)
						}
						o := both(policy, addr, priv(ph), cs...)
						got := Plan(o, s)
						if len(got) != 1 || got[0].Private == nil {
							t.Fatalf("%s: %+v", name, got)
						}
						m, p := got[0], got[0].Private
						eipOnly := Plan(observed(policy, addr, cs...), s)[0]
						if m.Action != eipOnly.Action || m.Holder != eipOnly.Holder {
							t.Errorf("%s: the EIP's plan %s differs from the plan without a private address %s", name, m.Action, eipOnly.Action)
						}
						ends := m.Candidate
						if m.Action == Nothing && addr.Held && !Judge(addr.Holder).Down {
							ends = addr.Holder.Instance
						}
						if p.Why == "" {
							t.Errorf("%s: %s without a reason", name, p.Action)
						}
						switch p.Action {
						case Keep:
							if ph == nil || ph.Instance != ends {
								t.Errorf("%s: kept on %v, the EIP ends on %q", name, ph, ends)
							}
						case Claim, TakeOver, HandOver:
							if p.Candidate != ends || ends == "" {
								t.Errorf("%s: %s to %q, the EIP ends on %q", name, p.Action, p.Candidate, ends)
							}
							if ph != nil && !Judge(*ph).Down && !p.Force {
								t.Errorf("%s: taken off healthy %s without force", name, ph.Instance)
							}
							if p.Force && policy == config.TakeoverNever && p.Action != HandOver {
								t.Errorf("%s: taken by force under takeover: never", name)
							}
							if ph != nil && s.Terminating && ph.Instance == s.Subject && p.Action != HandOver {
								t.Errorf("%s: its holder terminates: %s, want hand over", name, p.Action)
							}
						case Release:
							if m.Action != Release || ph == nil || ph.Instance != m.Holder {
								t.Errorf("%s: released apart from the EIP (%s)", name, m.Action)
							}
						case Nothing:
						default:
							t.Errorf("%s: private action %s", name, p.Action)
						}
						if p.Force && p.Action != TakeOver && p.Action != HandOver {
							t.Errorf("%s: %s by force", name, p.Action)
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
