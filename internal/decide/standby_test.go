package decide

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
)

// TestStandby: the named cases, each with its exact decision and reason.
func TestStandby(t *testing.T) {
	dead := &Probe{Result: "tcp:5432 on 10.0.1.7 failed: connection refused"}
	up := &Probe{OK: true, Result: "tcp:5432 on 10.0.1.7 answered"}
	// This instance reaches its IMDS, the API and its reference.
	reach := Self{Checked: true, IMDS: true, API: true, References: []Probe{{OK: true, Result: "tcp:53 on 10.0.0.2 answered"}}}
	refDead := Probe{Result: "tcp:53 on 10.0.0.2 failed: i/o timeout"}
	// A standby's look at a holder of 10 minutes that fails its probe,
	// the second of fall 3.
	base := Look{From: FromStandby, Where: WhereOther, Holder: Holder{Instance: "i-1", Probe: dead}, Examined: true,
		Fails: 1, Fall: 3, HeldFor: 10 * time.Minute, HoldDown: 5 * time.Minute, Self: reach}
	with := func(f func(*Look)) Look { l := base; f(&l); return l }
	tests := []struct {
		name string
		l    Look
		want Next
	}{
		{"started held here", Look{From: FromStart, Where: WhereHere},
			Next{Act: ActStep, Fails: 0, Why: "started as the holder"}},
		{"moved here", Look{From: FromStandby, Where: WhereHere, Fails: 2},
			Next{Act: ActStep, Fails: 0, Why: "the EIP was moved to this instance"}},
		{"free at start", Look{From: FromStart, Where: WhereFree},
			Next{Act: ActStep, Fails: 0, Why: "the EIP was free"}},
		{"free for a standby", Look{From: FromStandby, Where: WhereFree, Policy: config.TakeoverAlways},
			Next{Act: ActStep, Fails: 0, Why: "the EIP was free"}},
		{"released from the holder", Look{From: FromHolder, Where: WhereFree},
			Next{Act: ActStep, Fails: 0, Why: "the EIP was released from this instance and is free"}},
		{"free, takeover never", Look{From: FromStart, Where: WhereFree, Policy: config.TakeoverNever},
			Next{Act: ActWatch, Fails: 0, Why: "the EIP is free and takeover is never: this watcher only watches"}},
		{"released, takeover never", Look{From: FromHolder, Where: WhereFree, Policy: config.TakeoverNever},
			Next{Act: ActWatch, Fails: 0, Why: "the EIP is free and takeover is never: this watcher only watches"}},
		{"no instance", Look{From: FromStandby, Where: WhereNoInstance, Policy: config.TakeoverAlways, Examined: true, Fails: 5, Fall: 1},
			Next{Act: ActWatch, Fails: 0, Why: "the EIP is " + NoInstance}},
		{"deposed", with(func(l *Look) { l.From = FromHolder }),
			Next{Act: ActNothing, Fails: 0, Why: "this instance no longer holds the EIP: it was moved to i-1"}},
		{"takeover never, holder stopped", with(func(l *Look) { l.Policy, l.Holder.State, l.Fails = config.TakeoverNever, StateStopped, 7 }),
			Next{Act: ActWatch, Fails: 7, Why: "this watcher does not take over (takeover: never)"}},
		{"not examined yet", with(func(l *Look) { l.Examined = false }),
			Next{Act: ActExamine, Fails: 1, Why: "examine the holder i-1"}},
		{"holder answers again", with(func(l *Look) { l.Holder.Probe = up }),
			Next{Act: ActNothing, Fails: 0, Why: "the holder answers: " + up.Result}},
		{"holder up through the API", with(func(l *Look) {
			l.Holder = Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
		}), Next{Act: ActNothing, Fails: 0, Why: "the holder answers: running, status checks: instance ok, system ok"}},
		{"failed, below fall", base,
			Next{Act: ActCount, Fails: 2, Why: "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
		{"failed, fall reached", with(func(l *Look) { l.Fails = 2 }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"failed, past fall (after hold_down)", with(func(l *Look) { l.Fails = 6 }),
			Next{Act: ActStep, Fails: 7, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 7 looks of fall 3"}},
		{"fall 1", with(func(l *Look) { l.Fails, l.Fall = 0, 1 }),
			Next{Act: ActStep, Fails: 1, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 1 looks of fall 1"}},
		{"fall 0 counts as 1", with(func(l *Look) { l.Fails, l.Fall = 0, 0 }),
			Next{Act: ActStep, Fails: 1, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 1 looks of fall 1"}},
		{"impaired through the API", with(func(l *Look) {
			l.Fails, l.Holder = 2, Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusImpaired, SystemStatus: StatusOK}
		}), Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its status checks (instance impaired, system ok): failed 3 looks of fall 3"}},
		{"new holder, probe fails, state unknown", with(func(l *Look) { l.Fails, l.HeldFor = 2, 30*time.Second }),
			Next{Act: ActReadState, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": the holder is new (held for 30s of hold_down 5m0s): its state, read through the API, decides (a stopped holder is taken over)"}},
		{"new holder, running", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 30*time.Second, StateRunning }),
			Next{Act: ActCount, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": the holder is new (held for 30s of hold_down 5m0s, running): not taking over within hold_down for failing probes", Refused: RefusedHoldDown}},
		{"new holder, stopped", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 30*time.Second, StateStopped }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 is stopped (taken over within hold_down: a stopped holder does not serve)"}},
		{"new holder, gone", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 0, StateGone }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 no longer exists (taken over within hold_down: a stopped holder does not serve)"}},
		{"new holder, below fall", with(func(l *Look) { l.HeldFor = 0 }),
			Next{Act: ActCount, Fails: 2, Why: "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
		{"hold_down just past", with(func(l *Look) { l.Fails, l.HeldFor = 2, 5*time.Minute }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"hold_down 0", with(func(l *Look) { l.Fails, l.HeldFor, l.HoldDown = 2, 0, 0 }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"fall reached, own reach not checked", with(func(l *Look) { l.Fails, l.Self = 2, Self{} }),
			Next{Act: ActCheckSelf, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3: checking this instance's own reach before taking over"}},
		{"stopped within hold_down, own reach not checked", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State, l.Self = 2, 0, StateStopped, Self{} }),
			Next{Act: ActCheckSelf, Fails: 3, Why: "holder i-1 is stopped (taken over within hold_down: a stopped holder does not serve): checking this instance's own reach before taking over"}},
		{"own IMDS does not answer", with(func(l *Look) { l.Fails, l.Self.IMDS = 2, false }),
			Next{Act: ActCount, Fails: 3, Refused: RefusedIMDS, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3: this instance's own instance metadata (IMDS) does not answer: not taking over from an instance that may be unwell itself"}},
		{"EC2 API does not answer", with(func(l *Look) { l.Fails, l.Self.API = 2, false }),
			Next{Act: ActCount, Fails: 3, Refused: RefusedAPI, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3: the EC2 API does not answer this instance: not taking over without a fresh read of the EIP"}},
		{"cut off: the holder and the reference fail", with(func(l *Look) { l.Fails, l.Self.References = 2, []Probe{refDead} }),
			Next{Act: ActCount, Fails: 3, Refused: RefusedCutOff, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3: every target this instance probes fails, the holder and the references (" + refDead.Result + "): this instance is the one cut off, not taking over"}},
		{"one reference of two answers: not cut off", with(func(l *Look) { l.Fails, l.Self.References = 2, []Probe{refDead, reach.References[0]} }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"no reference configured: the probe alone", with(func(l *Look) { l.Fails, l.Self.References = 2, nil }),
			Next{Act: ActStep, Fails: 3, Why: "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"a stopped holder is taken over whatever the references", with(func(l *Look) {
			l.Fails, l.Holder.State, l.Self.References = 2, StateStopped, []Probe{refDead}
		}), Next{Act: ActStep, Fails: 3, Why: "holder i-1 is stopped: failed 3 looks of fall 3"}},
		{"a stopped holder, own IMDS down", with(func(l *Look) { l.Fails, l.Holder.State, l.Self.IMDS = 2, StateStopped, false }),
			Next{Act: ActCount, Fails: 3, Refused: RefusedIMDS, Why: "holder i-1 is stopped: failed 3 looks of fall 3: this instance's own instance metadata (IMDS) does not answer: not taking over from an instance that may be unwell itself"}},
		{"free EIP claimed without a check of own reach", Look{From: FromStandby, Where: WhereFree},
			Next{Act: ActStep, Fails: 0, Why: "the EIP was free"}},
		{"takeover always still waits for fall", with(func(l *Look) { l.Policy = config.TakeoverAlways }),
			Next{Act: ActCount, Fails: 2, Why: "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Standby(tt.l); got != tt.want {
				t.Errorf("Standby(%+v)\n got %+v\nwant %+v", tt.l, got, tt.want)
			}
		})
	}
}

// TestStandbyEveryCombination runs every watcher state × where the EIP is ×
// policy × examined × the holder's state, status checks and probe × failed
// looks so far × fall × held for against hold_down, and checks each decision
// against the rules as the watcher's documentation states them.
func TestStandbyEveryCombination(t *testing.T) {
	froms := []From{FromStart, FromStandby, FromHolder}
	wheres := []Where{WhereFree, WhereHere, WhereOther, WhereNoInstance}
	policies := []config.Takeover{"", config.TakeoverIfHolderDown, config.TakeoverAlways, config.TakeoverNever}
	states := []string{"", StateRunning, StatePending, StateStopping, StateStopped, StateShuttingDown, StateTerminated, StateGone}
	statuses := [][2]string{{"", ""}, {StatusOK, StatusOK}, {StatusInitializing, StatusOK}, {StatusOK, StatusImpaired}, {StatusImpaired, StatusOK}}
	probes := []*Probe{nil, {OK: true, Result: "answered"}, {Result: "refused"}}
	const holdDown = time.Minute
	helds := []time.Duration{0, holdDown - time.Second, holdDown, time.Hour}
	ok := Self{Checked: true, IMDS: true, API: true}
	selves := []Self{ok, {}, {Checked: true, API: true}, {Checked: true, IMDS: true},
		{Checked: true, IMDS: true, API: true, References: []Probe{{Result: "refused"}}},
		{Checked: true, IMDS: true, API: true, References: []Probe{{Result: "refused"}, {OK: true, Result: "answered"}}}}
	acts := map[Act]int{}
	n := 0
	for _, from := range froms {
		for _, where := range wheres {
			for _, policy := range policies {
				for _, examined := range []bool{false, true} {
					for _, state := range states {
						for _, st := range statuses {
							for _, probe := range probes {
								for fails := range 4 {
									for fall := 1; fall <= 3; fall++ {
										for _, held := range helds {
											for i, self := range selves {
												if i > 0 && where != WhereOther {
													break // only a takeover from another checks its own reach
												}
												l := Look{From: from, Where: where, Policy: policy, Examined: examined,
													Holder: Holder{State: state, InstanceStatus: st[0], SystemStatus: st[1], Probe: probe},
													Fails:  fails, Fall: fall, HeldFor: held, HoldDown: holdDown, Self: self}
												if where == WhereOther {
													l.Holder.Instance = "i-1"
												}
												got := Standby(l)
												acts[got.Act]++
												n++
												if msg := checkStandby(l, got); msg != "" {
													t.Fatalf("Standby(%+v) = %+v: %s", l, got, msg)
												}
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	for _, a := range []Act{ActNothing, ActExamine, ActCount, ActReadState, ActStep, ActWatch, ActCheckSelf} {
		if acts[a] == 0 {
			t.Errorf("no combination decided %s", a)
		}
	}
	t.Logf("%d combinations: %v", n, acts)
}

// checkStandby says what is wrong with the decision got for l ("" when
// nothing), from the rules stated one by one.
func checkStandby(l Look, got Next) string {
	never := l.Policy == config.TakeoverNever
	if got.Why == "" {
		return "no reason given"
	}
	switch l.Where {
	case WhereHere:
		if got.Act != ActStep {
			return "the EIP is here: the step publishes it and promotes this instance"
		}
		return ""
	case WhereFree:
		if never != (got.Act == ActWatch) || !never && got.Act != ActStep {
			return "a free EIP is claimed unless takeover is never"
		}
		return ""
	case WhereNoInstance:
		if got.Act != ActWatch {
			return "an EIP on an interface of no instance is only watched"
		}
		return ""
	}
	if got.Refused != "" && got.Act != ActCount {
		return "a refusal only counts"
	}
	if l.From == FromHolder {
		if got.Act != ActNothing || got.Fails != 0 {
			return "a deposed holder does nothing at the look that finds it deposed, and counts from 0"
		}
		return ""
	}
	if never {
		if got.Act != ActWatch || got.Fails != l.Fails {
			return "takeover: never only watches, whatever the holder's state"
		}
		return ""
	}
	if !l.Examined {
		if got.Act != ActExamine || got.Fails != l.Fails {
			return "a holder not examined is examined first, the count kept"
		}
		return ""
	}
	// Whether the holder is down is Judge's (TestJudge).
	if !Judge(l.Holder).Down {
		if got.Act != ActNothing || got.Fails != 0 {
			return "a holder that answers resets the count"
		}
		return ""
	}
	if got.Fails != l.Fails+1 {
		return fmt.Sprintf("a failed look counts: %d, want %d", got.Fails, l.Fails+1)
	}
	reached := l.Fails+1 >= l.Fall
	within := l.HeldFor < l.HoldDown
	switch {
	case !reached:
		if got.Act != ActCount {
			return "fewer than fall failed looks: count, no step"
		}
	case !within:
		return checkTakeOver(l, got, "fall failed looks past hold_down: take over")
	case l.Holder.State == "":
		if got.Act != ActReadState || !strings.Contains(got.Why, "hold_down") {
			return "fall failed looks within hold_down, the state unknown: read it"
		}
	case Stopped(l.Holder.State):
		return checkTakeOver(l, got, "a stopped holder is taken over within hold_down")
	default:
		if got.Act != ActCount || !strings.Contains(got.Why, "hold_down") || got.Refused != RefusedHoldDown {
			return "a holder in its hold_down that is not stopped is not taken over for failing probes (refused: hold_down)"
		}
	}
	if got.Act != ActCount && got.Act != ActReadState {
		return "no takeover before its own reach is checked"
	}
	return ""
}

// checkTakeOver checks a decision to take the EIP from another instance:
// this instance's own reach checked first; no IMDS, no API: refused; a
// probe's failure while every reference fails: refused (cut off); a
// holder the API shows stopped or impaired is taken over whatever the
// references.
func checkTakeOver(l Look, got Next, rule string) string {
	s := l.Self
	cutOff := len(s.References) > 0 && l.Holder.Probe != nil && !l.Holder.Probe.OK &&
		!Stopped(l.Holder.State) && l.Holder.State != StateGone && l.Holder.InstanceStatus != StatusImpaired && l.Holder.SystemStatus != StatusImpaired
	for _, r := range s.References {
		cutOff = cutOff && !r.OK
	}
	switch {
	case !s.Checked:
		if got.Act != ActCheckSelf {
			return rule + ", once its own reach is checked"
		}
	case !s.IMDS:
		if got.Refused != RefusedIMDS {
			return "no takeover by an instance whose own IMDS does not answer"
		}
	case !s.API:
		if got.Refused != RefusedAPI {
			return "no takeover by an instance the EC2 API does not answer"
		}
	case cutOff:
		if got.Refused != RefusedCutOff {
			return "no takeover by an instance whose every probe fails (cut off)"
		}
	default:
		if got.Act != ActStep || got.Refused != "" {
			return rule
		}
	}
	return ""
}

func TestStandbyStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		WhereFree: "free", WhereHere: "here", WhereOther: "other", WhereNoInstance: "no instance", Where(9): "Where(9)",
		FromStart: "start", FromStandby: "standby", FromHolder: "holder", From(9): "From(9)",
		ActNothing: "nothing", ActExamine: "examine", ActCount: "count", ActReadState: "read state", ActStep: "step", ActWatch: "watch", ActCheckSelf: "check self", Act(9): "Act(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
}
