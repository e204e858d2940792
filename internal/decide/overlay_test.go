package decide

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
)

// ovl is an overlay address held by h (nil: free), its routes in the
// drifted tables pointing elsewhere.
func ovl(h *Holder, drift ...string) *Private {
	p := priv(h)
	p.Overlay, p.Drift = true, drift
	return p
}

func overlayOnly(policy config.Takeover, p *Private, cs ...Candidate) Observed {
	return Observed{Spec: &config.Role{Overlay: &config.Overlay{Address: privAddr, RouteTables: []string{"rtb-1", "rtb-2"}}, Takeover: policy}, Private: p, Candidates: cs}
}

// TestPlanOverlay: an overlay address is planned as a secondary private
// IP is; routes that drifted from a healthy holder are repaired by it
// (Keep with Repair: the step's claim by the holder, no new epoch).
func TestPlanOverlay(t *testing.T) {
	a, b := cand("i-a", 0), cand("i-b", 1)
	stopped := Holder{Instance: "i-h", State: StateStopped}
	tests := []struct {
		name string
		o    Observed
		s    Situation
		want Move
	}{
		{"healthy holder kept", overlayOnly("", ovl(hp(runningHolder())), a), Situation{},
			Move{Action: Keep, Holder: "i-h", Candidate: "i-h", Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true"}},
		{"drifted route repaired by the holder", overlayOnly("", ovl(hp(runningHolder()), "rtb-2"), a), Situation{},
			Move{Action: Keep, Holder: "i-h", Candidate: "i-h", Repair: true, Why: "held by i-h, which is healthy (running, status checks: instance ok, system ok); DNS kept true; its routes in rtb-2 repaired"}},
		{"free claimed", overlayOnly("", ovl(nil), b, a), Situation{},
			Move{Action: Claim, Candidate: "i-a", Why: "the overlay address was free"}},
		{"stopped holder taken over, drift or not", overlayOnly("", ovl(&stopped, "rtb-1"), a, b), Situation{},
			Move{Action: TakeOver, Holder: "i-h", Candidate: "i-a", Why: "holder i-h is stopped"}},
		{"stopped holder under never", overlayOnly(config.TakeoverNever, ovl(&stopped), a), Situation{},
			Move{Action: Nothing, Holder: "i-h", Why: "overlay address 10.0.1.50 needs a holder (holder i-h is stopped), but takeover is never"}},
		{"an event about another instance: nothing", overlayOnly("", ovl(hp(runningHolder()), "rtb-2"), a), Situation{Subject: "i-a", State: StateRunning},
			Move{Action: Nothing, Holder: "i-h", Why: "overlay address 10.0.1.50 is held by i-h, which is healthy (running, status checks: instance ok, system ok)"}},
		{"terminating holder handed over", overlayOnly("", ovl(hp(runningHolder())), a), Situation{Subject: "i-h", Terminating: true},
			Move{Action: HandOver, Holder: "i-h", Candidate: "i-a", Force: true, Why: "holder i-h is terminating"}},
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

// TestPlanOverlayFollowsEIP: with an EIP, the EIP's holder leads; drifted
// routes on the EIP's holder are repaired; an overlay on another healthy
// instance joins the EIP by force.
func TestPlanOverlayFollowsEIP(t *testing.T) {
	a, b := cand("i-a", 0), cand("i-b", 1)
	healthyB := Holder{Instance: "i-b", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
	withEIP := func(p *Private, cs ...Candidate) Observed {
		o := observed("", held(runningHolder()), cs...)
		o.Spec.Overlay, o.Private = &config.Overlay{Address: privAddr}, p
		return o
	}
	for _, tt := range []struct {
		name         string
		o            Observed
		want         Action
		force, fixes bool
		whyPart      string
	}{
		{"both kept", withEIP(ovl(hp(runningHolder())), a), Keep, false, false, "overlay address 10.0.1.50 is on i-h with the EIP"},
		{"drift repaired", withEIP(ovl(hp(runningHolder()), "rtb-1"), a), Keep, false, true, "its routes in rtb-1 repaired"},
		{"apart: joins the EIP", withEIP(ovl(&healthyB), a, b), TakeOver, true, false, "the EIP's holder leads"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := Plan(tt.o, Situation{})[0]
			p := m.Private
			if m.Action != Keep || p == nil || p.Action != tt.want || p.Force != tt.force || p.Repair != tt.fixes || p.Moves() != (tt.force || tt.fixes) || !strings.Contains(p.Why, tt.whyPart) {
				t.Errorf("Plan: %+v private %+v; want EIP kept, overlay %s force %v repair %v (%q)", m, p, tt.want, tt.force, tt.fixes, tt.whyPart)
			}
		})
	}
}

// TestPlanOverlayEveryCombination: over every holder, drift, policy,
// candidate set and event, an overlay-only role is planned as a
// private-only role is (same action, holder, candidate, force), but that
// drift on a kept healthy holder asks for a repair, and only there.
func TestPlanOverlayEveryCombination(t *testing.T) {
	holders := map[string]*Holder{
		"free": nil, "i-h up": hp(runningHolder()), "i-h down": {Instance: "i-h", State: StateStopped},
		"i-a up":   {Instance: "i-a", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK},
		"i-h gone": {Instance: "i-h", State: StateGone}, "no inst": {},
	}
	policies := []config.Takeover{"", config.TakeoverNever, config.TakeoverAlways}
	candSets := map[string][]Candidate{"none": nil, "a": {cand("i-a", 0)}, "a b": {cand("i-a", 0), cand("i-b", 1)}}
	situations := []Situation{{}, {Subject: "i-h", State: StateStopped}, {Subject: "i-a", State: StateRunning}, {Subject: "i-h", Terminating: true}}
	n := 0
	for hn, h := range holders {
		for _, drift := range [][]string{nil, {"rtb-2"}} {
			for _, policy := range policies {
				for cn, cs := range candSets {
					for _, s := range situations {
						n++
						name := fmt.Sprintf("holder=%s drift=%v policy=%q cands=%s event=%+v", hn, drift, policy, cn, s)
						got := Plan(overlayOnly(policy, ovl(h, drift...), cs...), s)
						want := Plan(privateOnly(policy, priv(h), cs...), s)
						if len(got) != 1 || len(want) != 1 {
							t.Fatalf("%s: %+v", name, got)
						}
						g, w := got[0], want[0]
						if g.Action != w.Action || g.Holder != w.Holder || g.Candidate != w.Candidate || g.Force != w.Force {
							t.Errorf("%s: %+v, the private address's plan %+v", name, g, w)
						}
						if wantRepair := g.Action == Keep && len(drift) > 0; g.Repair != wantRepair {
							t.Errorf("%s: repair %v, want %v (%s)", name, g.Repair, wantRepair, g.Why)
						}
					}
				}
			}
		}
	}
	if n < 400 {
		t.Fatalf("only %d combinations planned", n)
	}
}
