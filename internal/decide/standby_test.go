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
	// A standby's look at a holder of 10 minutes that fails its probe,
	// the second of fall 3.
	base := Look{From: FromStandby, Where: WhereOther, Holder: Holder{Instance: "i-1", Probe: dead}, Examined: true,
		Fails: 1, Fall: 3, HeldFor: 10 * time.Minute, HoldDown: 5 * time.Minute}
	with := func(f func(*Look)) Look { l := base; f(&l); return l }
	tests := []struct {
		name string
		l    Look
		want Next
	}{
		{"started held here", Look{From: FromStart, Where: WhereHere},
			Next{ActStep, 0, "started as the holder"}},
		{"moved here", Look{From: FromStandby, Where: WhereHere, Fails: 2},
			Next{ActStep, 0, "the EIP was moved to this instance"}},
		{"free at start", Look{From: FromStart, Where: WhereFree},
			Next{ActStep, 0, "the EIP was free"}},
		{"free for a standby", Look{From: FromStandby, Where: WhereFree, Policy: config.TakeoverAlways},
			Next{ActStep, 0, "the EIP was free"}},
		{"released from the holder", Look{From: FromHolder, Where: WhereFree},
			Next{ActStep, 0, "the EIP was released from this instance and is free"}},
		{"free, takeover never", Look{From: FromStart, Where: WhereFree, Policy: config.TakeoverNever},
			Next{ActWatch, 0, "the EIP is free and takeover is never: this watcher only watches"}},
		{"released, takeover never", Look{From: FromHolder, Where: WhereFree, Policy: config.TakeoverNever},
			Next{ActWatch, 0, "the EIP is free and takeover is never: this watcher only watches"}},
		{"no instance", Look{From: FromStandby, Where: WhereNoInstance, Policy: config.TakeoverAlways, Examined: true, Fails: 5, Fall: 1},
			Next{ActWatch, 0, "the EIP is " + NoInstance}},
		{"deposed", with(func(l *Look) { l.From = FromHolder }),
			Next{ActNothing, 0, "this instance no longer holds the EIP: it was moved to i-1"}},
		{"takeover never, holder stopped", with(func(l *Look) { l.Policy, l.Holder.State, l.Fails = config.TakeoverNever, StateStopped, 7 }),
			Next{ActWatch, 7, "this watcher does not take over (takeover: never)"}},
		{"not examined yet", with(func(l *Look) { l.Examined = false }),
			Next{ActExamine, 1, "examine the holder i-1"}},
		{"holder answers again", with(func(l *Look) { l.Holder.Probe = up }),
			Next{ActNothing, 0, "the holder answers: " + up.Result}},
		{"holder up through the API", with(func(l *Look) {
			l.Holder = Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
		}), Next{ActNothing, 0, "the holder answers: running, status checks: instance ok, system ok"}},
		{"failed, below fall", base,
			Next{ActCount, 2, "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
		{"failed, fall reached", with(func(l *Look) { l.Fails = 2 }),
			Next{ActStep, 3, "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"failed, past fall (after hold_down)", with(func(l *Look) { l.Fails = 6 }),
			Next{ActStep, 7, "holder i-1 fails its health check: " + dead.Result + ": failed 7 looks of fall 3"}},
		{"fall 1", with(func(l *Look) { l.Fails, l.Fall = 0, 1 }),
			Next{ActStep, 1, "holder i-1 fails its health check: " + dead.Result + ": failed 1 looks of fall 1"}},
		{"fall 0 counts as 1", with(func(l *Look) { l.Fails, l.Fall = 0, 0 }),
			Next{ActStep, 1, "holder i-1 fails its health check: " + dead.Result + ": failed 1 looks of fall 1"}},
		{"impaired through the API", with(func(l *Look) {
			l.Fails, l.Holder = 2, Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusImpaired, SystemStatus: StatusOK}
		}), Next{ActStep, 3, "holder i-1 fails its status checks (instance impaired, system ok): failed 3 looks of fall 3"}},
		{"new holder, probe fails, state unknown", with(func(l *Look) { l.Fails, l.HeldFor = 2, 30*time.Second }),
			Next{ActReadState, 3, "holder i-1 fails its health check: " + dead.Result + ": the holder is new (held for 30s of hold_down 5m0s): its state, read through the API, decides (a stopped holder is taken over)"}},
		{"new holder, running", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 30*time.Second, StateRunning }),
			Next{ActCount, 3, "holder i-1 fails its health check: " + dead.Result + ": the holder is new (held for 30s of hold_down 5m0s, running): not taking over within hold_down for failing probes"}},
		{"new holder, stopped", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 30*time.Second, StateStopped }),
			Next{ActStep, 3, "holder i-1 is stopped (taken over within hold_down: a stopped holder does not serve)"}},
		{"new holder, gone", with(func(l *Look) { l.Fails, l.HeldFor, l.Holder.State = 2, 0, StateGone }),
			Next{ActStep, 3, "holder i-1 no longer exists (taken over within hold_down: a stopped holder does not serve)"}},
		{"new holder, below fall", with(func(l *Look) { l.HeldFor = 0 }),
			Next{ActCount, 2, "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
		{"hold_down just past", with(func(l *Look) { l.Fails, l.HeldFor = 2, 5*time.Minute }),
			Next{ActStep, 3, "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"hold_down 0", with(func(l *Look) { l.Fails, l.HeldFor, l.HoldDown = 2, 0, 0 }),
			Next{ActStep, 3, "holder i-1 fails its health check: " + dead.Result + ": failed 3 looks of fall 3"}},
		{"takeover always still waits for fall", with(func(l *Look) { l.Policy = config.TakeoverAlways }),
			Next{ActCount, 2, "holder i-1 fails its health check: " + dead.Result + ": failed look 2 of fall 3"}},
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
											l := Look{From: from, Where: where, Policy: policy, Examined: examined,
												Holder: Holder{State: state, InstanceStatus: st[0], SystemStatus: st[1], Probe: probe},
												Fails:  fails, Fall: fall, HeldFor: held, HoldDown: holdDown}
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
	for _, a := range []Act{ActNothing, ActExamine, ActCount, ActReadState, ActStep, ActWatch} {
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
		if got.Act != ActStep {
			return "fall failed looks past hold_down: take over"
		}
	case l.Holder.State == "":
		if got.Act != ActReadState || !strings.Contains(got.Why, "hold_down") {
			return "fall failed looks within hold_down, the state unknown: read it"
		}
	case Stopped(l.Holder.State):
		if got.Act != ActStep {
			return "a stopped holder is taken over within hold_down"
		}
	default:
		if got.Act != ActCount || !strings.Contains(got.Why, "hold_down") {
			return "a holder in its hold_down that is not stopped is not taken over for failing probes"
		}
	}
	return ""
}

func TestStandbyStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		WhereFree: "free", WhereHere: "here", WhereOther: "other", WhereNoInstance: "no instance", Where(9): "Where(9)",
		FromStart: "start", FromStandby: "standby", FromHolder: "holder", From(9): "From(9)",
		ActNothing: "nothing", ActExamine: "examine", ActCount: "count", ActReadState: "read state", ActStep: "step", ActWatch: "watch", Act(9): "Act(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
}
