package decide

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
)

// Where is where a watcher's look found the role's EIP.
type Where int

const (
	// WhereFree: on no interface.
	WhereFree Where = iota
	// WhereHere: on this instance.
	WhereHere
	// WhereOther: on another instance (Look.Holder.Instance).
	WhereOther
	// WhereNoInstance: on an interface attached to no instance (a NAT
	// gateway, a load balancer, a detached interface).
	WhereNoInstance
)

func (w Where) String() string {
	switch w {
	case WhereFree:
		return "free"
	case WhereHere:
		return "here"
	case WhereOther:
		return "other"
	case WhereNoInstance:
		return "no instance"
	}
	return "Where(" + strconv.Itoa(int(w)) + ")"
}

// From is a watcher's state before a look.
type From int

const (
	// FromStart: the first look; the watcher has no state yet.
	FromStart From = iota
	// FromStandby: the watcher is a standby.
	FromStandby
	// FromHolder: the watcher held the EIP at its last look (and has
	// confirmed a loss, if this look shows one).
	FromHolder
)

func (f From) String() string {
	switch f {
	case FromStart:
		return "start"
	case FromStandby:
		return "standby"
	case FromHolder:
		return "holder"
	}
	return "From(" + strconv.Itoa(int(f)) + ")"
}

// Look is what a watcher knows at one look at its role's EIP.
type Look struct {
	From   From
	Where  Where
	Policy config.Takeover
	// Holder is what the look learnt of the other instance that holds
	// the EIP (WhereOther): its probe (a health_check), or its state and
	// status checks (through the API), and its State when that was read.
	// Examined says it was examined at this look at all.
	Holder   Holder
	Examined bool
	// Fails is how many consecutive looks before this one the holder
	// failed; Fall how many make a takeover (at least 1).
	Fails, Fall int
	// HeldFor is how long the holder's association has been seen (or
	// tagged); within HoldDown a holder failing its probes is not taken
	// over, unless its state is a stopped one (Stopped).
	HeldFor, HoldDown time.Duration
	// Self is what this instance knows of its own reach, checked at the
	// look that would take the EIP from another instance (ActCheckSelf).
	Self Self
}

// Self is a standby's own reach, checked before it takes the EIP from
// another instance, so that an instance that is itself cut off or unwell
// does not take over (and the EIP does not ping-pong): its own instance
// metadata (IMDS, local to the instance) answered, the EC2 API answered
// the fresh read of this look, and its reference targets (watch.references:
// addresses of the network other than the holder) answered at least once.
type Self struct {
	Checked bool // checked at this look; the other fields mean nothing until then
	IMDS    bool // this instance's IMDS answered
	API     bool // the EC2 API answered this look's fresh read of the EIP
	// References are this look's probes of the reference targets; none
	// when none are configured.
	References []Probe
}

// The reasons a standby does not take over although the holder failed
// fall looks: the label of eipclaim_takeover_refused_total.
const (
	RefusedHoldDown = "hold_down" // the holder is new (hold_down) and not stopped
	RefusedIMDS     = "imds"      // this instance's own IMDS does not answer
	RefusedAPI      = "ec2_api"   // the EC2 API does not answer this instance
	RefusedCutOff   = "cut_off"   // the holder's probe and every reference fail: this instance is the one cut off
)

// Refusal says why a standby that would take the EIP from holder h does
// not, from its own reach s: one of the Refused reasons and the words, or
// "" when nothing stops it. Only a probe's failure is put down to a
// cut-off: a holder the EC2 API shows stopped or impaired is down
// whatever this instance's network.
func Refusal(s Self, h Holder) (reason, why string) {
	switch {
	case !s.IMDS:
		return RefusedIMDS, "this instance's own instance metadata (IMDS) does not answer: not taking over from an instance that may be unwell itself"
	case !s.API:
		return RefusedAPI, "the EC2 API does not answer this instance: not taking over without a fresh read of the EIP"
	case h.Probe == nil || h.Probe.OK || len(s.References) == 0 || Judge(Holder{Instance: h.Instance, State: h.State,
		InstanceStatus: h.InstanceStatus, SystemStatus: h.SystemStatus}).Down:
		return "", ""
	}
	var failed []string
	for _, r := range s.References {
		if r.OK {
			return "", ""
		}
		failed = append(failed, r.Result)
	}
	return RefusedCutOff, "every target this instance probes fails, the holder and the references (" + strings.Join(failed, "; ") +
		"): this instance is the one cut off, not taking over"
}

// Act is what a watcher does after a look.
type Act int

const (
	// ActNothing: nothing this look (the holder answers, or this instance
	// was just deposed).
	ActNothing Act = iota
	// ActExamine: examine the holder (its probe, else through the API),
	// then decide again with what was learnt (Look.Examined). When it
	// cannot be examined, the look counts for nothing.
	ActExamine
	// ActCount: the holder failed this look; count it (Next.Fails), not
	// yet a takeover: fewer than fall, or within hold_down.
	ActCount
	// ActReadState: the holder failed fall looks within hold_down and its
	// state is not known: read it through the API, then decide again
	// with Holder.State.
	ActReadState
	// ActStep: run the failover step: claim the EIP, take it over, or (held
	// here) publish it and promote this instance.
	ActStep
	// ActWatch: only watch: this watcher does not take the EIP.
	ActWatch
	// ActCheckSelf: the holder counts as down and this watcher would take
	// the EIP from it: check this instance's own reach first (Look.Self),
	// then decide again.
	ActCheckSelf
)

func (a Act) String() string {
	switch a {
	case ActNothing:
		return "nothing"
	case ActExamine:
		return "examine"
	case ActCount:
		return "count"
	case ActReadState:
		return "read state"
	case ActStep:
		return "step"
	case ActWatch:
		return "watch"
	case ActCheckSelf:
		return "check self"
	}
	return "Act(" + strconv.Itoa(int(a)) + ")"
}

// Next is the decision of a look: what to do, the consecutive failed looks
// counted after it, and why in words. Refused is set when the holder
// failed fall looks but is not taken over (one of the Refused reasons).
type Next struct {
	Act     Act
	Fails   int
	Why     string
	Refused string
}

// Standby is a watcher's decision at one look where it does not already
// hold the EIP (or has just started), in order:
//
//   - held here: run the step (publish, promote);
//   - free: claim it, unless takeover is never (only watch);
//   - on an interface of no instance: only watch (taken only by hand);
//   - on another instance after this one held it: nothing (deposed; the
//     new holder is examined from the next look on);
//   - takeover: never: only watch;
//   - not yet examined at this look: examine the holder;
//   - the holder is up (Judge): nothing, and the count starts again;
//   - down, fewer than fall looks in a row: count;
//   - fall looks, held for less than hold_down: take over only a holder
//     in a stopped state (Stopped), read through the API when not known;
//     otherwise count and wait (refused: hold_down);
//   - else take over, once this instance's own reach is checked
//     (ActCheckSelf) and Refusal finds nothing against it (else count,
//     refused for Refusal's reason).
//
// Fails is kept as it was on every answer that has not examined the
// holder (and so when it could not be examined: no evidence either way).
func Standby(l Look) Next {
	fall := max(l.Fall, 1)
	never := effective(l.Policy) == config.TakeoverNever
	switch l.Where {
	case WhereHere:
		if l.From == FromStart {
			return Next{Act: ActStep, Why: "started as the holder"}
		}
		return Next{Act: ActStep, Why: "the EIP was moved to this instance"}
	case WhereFree:
		if never {
			return Next{Act: ActWatch, Why: "the EIP is free and takeover is never: this watcher only watches"}
		}
		if l.From == FromHolder {
			return Next{Act: ActStep, Why: "the EIP was released from this instance and is free"}
		}
		return Next{Act: ActStep, Why: "the EIP was free"}
	case WhereNoInstance:
		return Next{Act: ActWatch, Why: "the EIP is " + NoInstance}
	}
	// WhereOther.
	who := l.Holder.Instance
	switch {
	case l.From == FromHolder:
		return Next{Act: ActNothing, Why: "this instance no longer holds the EIP: it was moved to " + who}
	case never:
		return Next{Act: ActWatch, Fails: l.Fails, Why: "this watcher does not take over (takeover: never)"}
	case !l.Examined:
		return Next{Act: ActExamine, Fails: l.Fails, Why: "examine the holder " + who}
	}
	v := Judge(l.Holder)
	if !v.Down {
		return Next{Act: ActNothing, Why: "the holder answers: " + v.Why}
	}
	fails := l.Fails + 1
	if fails < fall {
		return Next{Act: ActCount, Fails: fails, Why: fmt.Sprintf("%s: failed look %d of fall %d", v.Why, fails, fall)}
	}
	if l.HeldFor < l.HoldDown {
		held := fmt.Sprintf("held for %s of hold_down %s", l.HeldFor.Round(time.Second), l.HoldDown)
		switch {
		case l.Holder.State == "":
			return Next{Act: ActReadState, Fails: fails, Why: v.Why + ": the holder is new (" + held + "): its state, read through the API, decides (a stopped holder is taken over)"}
		case !Stopped(l.Holder.State):
			return Next{Act: ActCount, Fails: fails, Refused: RefusedHoldDown,
				Why: v.Why + ": the holder is new (" + held + ", " + l.Holder.State + "): not taking over within hold_down for failing probes"}
		}
		// Judge puts a stopped state before any probe: v.Why names it.
		return takeOver(l, fails, v.Why+" (taken over within hold_down: a stopped holder does not serve)")
	}
	return takeOver(l, fails, fmt.Sprintf("%s: failed %d looks of fall %d", v.Why, fails, fall))
}

// takeOver is the decision to take the EIP from another instance, once
// this instance's own reach is known and nothing in it refuses.
func takeOver(l Look, fails int, why string) Next {
	if !l.Self.Checked {
		return Next{Act: ActCheckSelf, Fails: fails, Why: why + ": checking this instance's own reach before taking over"}
	}
	if reason, refused := Refusal(l.Self, l.Holder); reason != "" {
		return Next{Act: ActCount, Fails: fails, Why: why + ": " + refused, Refused: reason}
	}
	return Next{Act: ActStep, Fails: fails, Why: why}
}
