package decide

import (
	"fmt"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
)

// Situation is what an event says to the off-box controller: the
// instance it is about, and how. The zero Situation is the schedule.
type Situation struct {
	// Subject is the event's instance; "" for the schedule.
	Subject string
	// State is Subject's state in an EC2 state-change event.
	State string
	// Launching: Auto Scaling launches Subject (its status checks may
	// still be initializing).
	Launching bool
	// Terminating: Auto Scaling terminates Subject, which is healthy until
	// the lifecycle hook completes.
	Terminating bool
}

// Leaving reports whether the event says Subject is going away: a stopped
// state, or Auto Scaling terminating it. Such an instance is no candidate,
// whatever the API still shows.
func (s Situation) Leaving() bool {
	return s.Subject != "" && (s.Terminating || Stopped(s.State))
}

// Observed is what the controller observed of one role.
type Observed struct {
	Spec *config.Role
	// Problem says why the role could not be observed (its EIP does not
	// exist, its pool has none); "" when it was.
	Problem string
	// Addresses are the role's EIP (one), or every EIP of its pool; none
	// for a role with only private_address.
	Addresses  []Address
	Candidates []Candidate
	// Private is the role's secondary private IP (private_address) as
	// observed; nil when the role has none.
	Private *Private
}

// Address is one EIP as observed.
type Address struct {
	AllocationID, PublicIP string
	// Held: associated with an interface (Holder.Instance "" when that
	// interface belongs to no instance).
	Held   bool
	Holder Holder
	// HolderTag is the EIP's eipclaim:holder tag; EpochBad says its
	// eipclaim:epoch tag is there but not an epoch. Either naming
	// something else than the holder asks for a repair by the step.
	HolderTag string
	EpochBad  bool
	// Drift lists the route tables of an overlay address (the lead of a
	// role without EIP) that do not point at its holder.
	Drift []string
	// overlay: the lead is an overlay address (its name in reasons).
	overlay bool
}

// What a plan does with an EIP.
type Action string

const (
	// Keep: the holder keeps the EIP; its names are made true.
	Keep Action = "keep"
	// Claim: the EIP is free; claim it for Candidate.
	Claim Action = "claim"
	// TakeOver: the holder is down (Why); take the EIP for Candidate
	// (the engine's compare-and-swap, which judges the holder again).
	TakeOver Action = "take over"
	// HandOver: the holder is terminating; move the EIP to Candidate by
	// force (still a compare-and-swap).
	HandOver Action = "hand over"
	// Release: free the EIP from Holder (terminating with no candidate to
	// take it, or a pool EIP on a down holder, for another instance).
	Release Action = "release"
	// Nothing: nothing to do, Why says why.
	Nothing Action = "nothing"
	// Failed: the role cannot be served (Why).
	Failed Action = "failed"
)

// Move is one thing to do for a role.
type Move struct {
	Action Action
	// AllocationID and PublicIP name the EIP ("" for a claim from a
	// pool: the engine picks a free one).
	AllocationID, PublicIP string
	Holder                 string // the instance holding it now, "" when free
	Candidate              string // the instance it goes to (or stays on, for Keep)
	Force                  bool   // HandOver: move even though the holder is healthy
	// Repair (Keep): the EIP's audit tags do not name the holder or its
	// epoch is not an epoch: the failover step rewrites them.
	Repair bool
	Why    string
	// Private is what becomes of the role's secondary private IP when the
	// role has both an EIP and a private_address (the move above is the
	// EIP's, which leads: see planPrivate); nil otherwise. For a role with
	// only private_address, the move itself is the private address's
	// (AllocationID and PublicIP empty).
	Private *PrivateMove
}

// Plan decides what the controller does for one role in the situation,
// from what it observed: a pure function. A role with one EIP gets one
// move. A pool gets a move per EIP that must change (see planPool).
//
// A healthy holder keeps its EIP whatever the policy (the controller never
// moves an EIP off a healthy holder but for Auto Scaling's termination);
// a down holder's EIP is taken for the best eligible candidate when the
// takeover policy allows it; a free EIP is claimed for it.
func Plan(o Observed, s Situation) []Move {
	if o.Problem != "" {
		return []Move{{Action: Failed, Why: o.Problem}}
	}
	if o.Spec == nil || len(o.Addresses) == 0 && o.Private == nil {
		return []Move{{Action: Failed, Why: "no EIP observed"}}
	}
	cands, rejected := choose(o, s)
	if o.Spec.Pool != nil {
		return planPool(o, s, cands, rejected)
	}
	a, what := o.lead()
	if o.Private != nil && len(o.Addresses) > 0 {
		cands = preferHolder(cands, o.Private, s)
		m := planOne(o, s, a, what, cands, rejected)
		m.Private = planPrivate(o, s, m, a)
		return []Move{m}
	}
	return []Move{planOne(o, s, a, what, cands, rejected)}
}

// planOne plans the role's leading address a (its EIP, or its private
// address when it has no EIP), named what in reasons.
func planOne(o Observed, s Situation, a Address, eip string, cands, rejected []string) Move {
	m := Move{AllocationID: a.AllocationID, PublicIP: a.PublicIP, Holder: a.Holder.Instance}
	if !a.Held {
		if len(cands) == 0 {
			m.Action, m.Why = Nothing, eip+" is free and needs a holder, but "+noCandidate(rejected)
			return m
		}
		m.Action, m.Candidate, m.Why = Claim, cands[0], "the "+kind(a)+" was free"
		return m
	}
	if a.Holder.Instance == "" {
		m.Action, m.Why = Nothing, eip+" is "+NoInstance
		return m
	}
	if s.Terminating && a.Holder.Instance == s.Subject {
		why := "holder " + a.Holder.Instance + " is terminating"
		if len(cands) == 0 {
			m.Action, m.Why = Release, why+" and "+noCandidate(rejected)
			return m
		}
		m.Action, m.Candidate, m.Force, m.Why = HandOver, cands[0], true, why
		return m
	}
	v := Judge(a.Holder)
	if !v.Down {
		if s.Subject != "" {
			m.Action, m.Why = Nothing, fmt.Sprintf("%s is held by %s, which is healthy (%s)", eip, a.Holder.Instance, v.Why)
			return m
		}
		m.Action, m.Candidate, m.Why = Keep, a.Holder.Instance, "held by "+a.Holder.Instance+", which is healthy ("+v.Why+"); DNS kept true"
		if r := repair(a.Holder.Instance, a.HolderTag, a.EpochBad, a.Drift); r != "" {
			m.Repair = true
			m.Why += "; " + r
		}
		return m
	}
	if allow, why := Takeover(o.Spec.Takeover, false, v); !allow {
		m.Action, m.Why = Nothing, fmt.Sprintf("%s needs a holder (%s), but %s", eip, v.Why, why)
		return m
	}
	if len(cands) == 0 {
		m.Action, m.Why = Nothing, fmt.Sprintf("%s needs a holder (%s), but %s", eip, v.Why, noCandidate(rejected))
		return m
	}
	m.Action, m.Candidate, m.Why = TakeOver, cands[0], v.Why
	return m
}

// planPool plans a pool role: every eligible candidate should hold one of
// the pool's EIPs, as the instances themselves would claim one each. A
// healthy holder keeps its EIP (nothing to publish: a pool's names are
// the instances' own); an EIP on a down holder is released when the
// policy allows taking it, an EIP on a terminating holder is released, so
// that the eligible candidates that hold none claim the free EIPs, best
// first, as many as there are. The claim of a pool EIP picks any free
// one (the engine's compare-and-swap), so the releases come first.
func planPool(o Observed, s Situation, cands, rejected []string) []Move {
	var moves []Move
	holding := map[string]bool{}
	free := 0
	for _, a := range o.Addresses {
		m := Move{AllocationID: a.AllocationID, PublicIP: a.PublicIP, Holder: a.Holder.Instance}
		switch {
		case !a.Held:
			free++
			continue
		case a.Holder.Instance == "":
			continue // an interface of no instance: not the controller's
		case s.Terminating && a.Holder.Instance == s.Subject:
			m.Action, m.Why = Release, "holder "+a.Holder.Instance+" is terminating: the EIP goes back to the pool"
		default:
			v := Judge(a.Holder)
			if !v.Down {
				holding[a.Holder.Instance] = true
				continue
			}
			allow, why := Takeover(o.Spec.Takeover, false, v)
			if !allow {
				moves = append(moves, Move{Action: Nothing, AllocationID: a.AllocationID, PublicIP: a.PublicIP, Holder: a.Holder.Instance,
					Why: fmt.Sprintf("%s (%s) needs a holder (%s), but %s", a.PublicIP, a.AllocationID, v.Why, why)})
				holding[a.Holder.Instance] = true
				continue
			}
			m.Action, m.Why = Release, v.Why+": the EIP goes back to the pool"
		}
		moves = append(moves, m)
		free++
	}
	var waiting []string
	for _, c := range cands {
		if !holding[c] {
			waiting = append(waiting, c)
		}
	}
	for _, c := range waiting {
		if free == 0 {
			moves = append(moves, Move{Action: Nothing, Candidate: c,
				Why: fmt.Sprintf("the pool is exhausted: its %d EIPs are held; %s waits for one", len(o.Addresses), c)})
			continue
		}
		free--
		moves = append(moves, Move{Action: Claim, Candidate: c, Why: "a free EIP of the pool for " + c})
	}
	if len(moves) == 0 {
		why := fmt.Sprintf("%d of the pool's %d EIPs held by healthy instances", len(holding), len(o.Addresses))
		if len(cands) == 0 && len(holding) == 0 {
			why += "; " + noCandidate(rejected)
		}
		moves = append(moves, Move{Action: Nothing, Why: why})
	}
	return moves
}

// choose returns the eligible candidates, best first (decide.Rank: the
// event's instance first), and why each other one is not eligible. An
// instance the event says is leaving is none.
func choose(o Observed, s Situation) (ok, rejected []string) {
	var cs []Candidate
	for _, c := range o.Candidates {
		if s.Leaving() && c.Instance == s.Subject {
			rejected = append(rejected, c.Instance+" is leaving (the event)")
			continue
		}
		if good, why := Eligible(c, s.Launching && c.Instance == s.Subject); !good {
			rejected = append(rejected, why)
			continue
		}
		cs = append(cs, c)
	}
	Rank(cs, s.Subject)
	for _, c := range cs {
		if holds(o, c.Instance) {
			rejected = append(rejected, c.Instance+" holds it")
			continue
		}
		ok = append(ok, c.Instance)
	}
	return ok, rejected
}

// holds reports whether instance holds the role's (single) EIP, or its
// private address when it has no EIP: it is no candidate to take it.
func holds(o Observed, instance string) bool {
	if o.Spec.Pool != nil {
		return false
	}
	a, _ := o.lead()
	return a.Held && a.Holder.Instance == instance
}

func noCandidate(rejected []string) string {
	if len(rejected) == 0 {
		return "no instance is tagged with the role (eipclaim:role)"
	}
	return "no candidate is eligible (" + strings.Join(rejected, "; ") + ")"
}
