package decide

import (
	"fmt"
	"slices"
	"strings"

	"github.com/eipclaim/eipclaim/internal/config"
)

// Private is a role's private-kind address as observed: its secondary
// private IP (private_address), or its overlay address (overlay: Overlay
// set).
type Private struct {
	Address string
	// Overlay: an overlay address, whose holder is the role table's entry's
	// (HolderTag is that holder: it has no tags) and whose routes may
	// point elsewhere (Drift).
	Overlay bool
	// Drift lists the route tables of an overlay address that do not
	// point at its holder: a claim by the holder repairs them (no new
	// epoch).
	Drift []string
	// Held: on an interface (Holder.Instance "" when that interface
	// belongs to no instance).
	Held   bool
	Holder Holder
	// HolderTag is the holder interface's eipclaim:holder:<role> tag;
	// EpochBad says its eipclaim:epoch:<role> tag is there but not an
	// epoch. Either asks for a repair by the step.
	HolderTag string
	EpochBad  bool
}

// PrivateMove is what becomes of a role's secondary private IP when the
// role has an EIP too: it follows the EIP. Action is Keep (on the EIP's
// holder; Repair as for an EIP), Claim (free), TakeOver (from another
// instance: down, or, with Force, healthy but apart from the EIP),
// HandOver (its holder terminating), Release (with the EIP, from its
// terminating holder), or Nothing (Why).
type PrivateMove struct {
	Action    Action
	Address   string
	Holder    string // the instance holding it now, "" when free
	Candidate string // the instance it goes to or stays on: the EIP's
	Force     bool   // moved off a healthy holder, to join the EIP
	Repair    bool
	Why       string
}

// Moves reports whether the private address changes hands or its tags
// are repaired: the failover step runs for Candidate.
func (p *PrivateMove) Moves() bool {
	if p == nil {
		return false
	}
	switch p.Action {
	case Claim, TakeOver, HandOver:
		return true
	case Keep:
		return p.Repair
	}
	return false
}

// lead is the address a role's plan is made on, and its name in reasons:
// its EIP, or its private address when it has no EIP.
func (o Observed) lead() (Address, string) {
	if len(o.Addresses) > 0 {
		a := o.Addresses[0]
		return a, a.PublicIP + " (" + a.AllocationID + ")"
	}
	p := o.Private
	return Address{Held: p.Held, Holder: p.Holder, HolderTag: p.HolderTag, EpochBad: p.EpochBad, Drift: p.Drift, overlay: p.Overlay}, p.name()
}

// name names the address in reasons.
func (p *Private) name() string {
	if p.Overlay {
		return "overlay address " + p.Address
	}
	return "private address " + p.Address
}

// repair says what a claim by the holder repairs, "" when nothing: the
// audit tags, or an overlay's routes that point elsewhere.
func repair(holder, holderTag string, epochBad bool, drift []string) string {
	switch {
	case len(drift) > 0:
		return "its routes in " + strings.Join(drift, ", ") + " repaired"
	case holderTag != holder || epochBad:
		return "the audit tags repaired"
	}
	return ""
}

// kind names what a is in reasons: "EIP", "private address" or "overlay
// address".
func kind(a Address) string {
	if a.overlay {
		return "overlay address"
	}
	if a.AllocationID == "" && a.PublicIP == "" {
		return "private address"
	}
	return "EIP"
}

// preferHolder puts first among the candidates the instance that holds
// the private address, when it is one (after the event's own instance):
// a free or taken EIP then goes where the private address already is, and
// nothing else moves.
func preferHolder(cands []string, p *Private, s Situation) []string {
	h := p.Holder.Instance
	i := slices.Index(cands, h)
	if !p.Held || i <= 0 || (s.Subject != "" && cands[0] == s.Subject) {
		return cands
	}
	out := append([]string{h}, cands[:i]...)
	return append(out, cands[i+1:]...)
}

// planPrivate plans the private address of a role that has an EIP too:
// the EIP's holder leads (both end on one instance: clients of either
// address reach the same holder), so the private address goes where the
// EIP is or is going (m), by force off a healthy holder apart from it
// unless takeover is never. When the EIP stays where it is or goes
// nowhere, neither moves apart from it.
func planPrivate(o Observed, s Situation, m Move, a Address) *PrivateMove {
	p := o.Private
	pm := &PrivateMove{Action: Nothing, Address: p.Address, Holder: p.Holder.Instance}
	name := p.name()
	lead := ""
	switch m.Action {
	case Keep, Claim, TakeOver, HandOver:
		lead = m.Candidate
	case Nothing:
		if a.Held && a.Holder.Instance != "" && !Judge(a.Holder).Down {
			lead = a.Holder.Instance // an event about another instance
		}
	}
	if lead == "" {
		if m.Action == Release && p.Held && p.Holder.Instance == m.Holder {
			pm.Action, pm.Why = Release, name+" is released with the EIP: "+m.Why
			return pm
		}
		pm.Why = name + " follows the EIP, which does not move: " + m.Why
		return pm
	}
	pm.Candidate = lead
	switch {
	case p.Held && p.Holder.Instance == lead:
		pm.Action, pm.Why = Keep, name+" is on "+lead+" with the EIP"
		if r := repair(lead, p.HolderTag, p.EpochBad, p.Drift); m.Action == Keep && r != "" {
			pm.Repair = true
			pm.Why += "; " + r
		}
	case !p.Held:
		pm.Action, pm.Why = Claim, name+" was free: it joins the EIP on "+lead
	case p.Holder.Instance == "":
		pm.Candidate, pm.Why = "", name+" is "+NoInstance
	case s.Terminating && p.Holder.Instance == s.Subject:
		pm.Action, pm.Force, pm.Why = HandOver, true, "holder "+p.Holder.Instance+" of "+name+" is terminating: it joins the EIP on "+lead
	default:
		v := Judge(p.Holder)
		if v.Down {
			if allow, why := Takeover(o.Spec.Takeover, false, v); !allow {
				pm.Candidate, pm.Why = "", fmt.Sprintf("%s needs a holder (%s), but %s", name, v.Why, why)
				return pm
			}
			pm.Action, pm.Why = TakeOver, v.Why+": "+name+" joins the EIP on "+lead
			return pm
		}
		if o.Spec.EffectiveTakeover() == config.TakeoverNever {
			pm.Candidate, pm.Why = "", fmt.Sprintf("%s is on %s (healthy: %s), apart from the EIP on %s, and takeover is never: release it on %s (eipclaim release)", name, p.Holder.Instance, v.Why, lead, p.Holder.Instance)
			return pm
		}
		pm.Action, pm.Force = TakeOver, true
		pm.Why = fmt.Sprintf("%s is on %s, apart from the EIP on %s: it joins the EIP (the EIP's holder leads)", name, p.Holder.Instance, lead)
	}
	return pm
}
