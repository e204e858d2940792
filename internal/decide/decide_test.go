package decide

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
)

func TestStopped(t *testing.T) {
	for state, want := range map[string]bool{
		StateStopping: true, StateStopped: true, StateShuttingDown: true, StateTerminated: true, StateGone: true,
		StateRunning: false, StatePending: false, "": false, "Stopped": false,
	} {
		if got := Stopped(state); got != want {
			t.Errorf("Stopped(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestJudge(t *testing.T) {
	up := &Probe{OK: true, Result: "tcp:5432 on 10.0.1.7 answered"}
	dead := &Probe{OK: false, Result: "tcp:5432 on 10.0.1.7 failed: connection refused"}
	tests := []struct {
		name string
		h    Holder
		down bool
		why  string
	}{
		{"no instance", Holder{}, false, NoInstance},
		{"no instance, whatever else", Holder{State: StateStopped, Probe: dead}, false, NoInstance},
		{"gone", Holder{Instance: "i-1", State: StateGone, Probe: up}, true, "holder i-1 no longer exists"},
		{"stopped, probe answers", Holder{Instance: "i-1", State: StateStopped, Probe: up}, true, "holder i-1 is stopped"},
		{"stopping", Holder{Instance: "i-1", State: StateStopping}, true, "holder i-1 is stopping"},
		{"shutting down", Holder{Instance: "i-1", State: StateShuttingDown}, true, "holder i-1 is shutting-down"},
		{"terminated", Holder{Instance: "i-1", State: StateTerminated}, true, "holder i-1 is terminated"},
		{"instance check impaired", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusImpaired, SystemStatus: StatusOK, Probe: up},
			true, "holder i-1 fails its status checks (instance impaired, system ok)"},
		{"system check impaired", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusImpaired},
			true, "holder i-1 fails its status checks (instance ok, system impaired)"},
		{"probe fails", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK, Probe: dead},
			true, "holder i-1 fails its health check: " + dead.Result},
		{"probe fails, nothing else read", Holder{Instance: "i-1", Probe: dead}, true, "holder i-1 fails its health check: " + dead.Result},
		{"healthy", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK, Probe: up},
			false, "running, status checks: instance ok, system ok, " + up.Result},
		{"healthy, initializing", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusInitializing, SystemStatus: StatusInitializing},
			false, "running, status checks: instance initializing, system initializing"},
		{"no status reported", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusUnknown, SystemStatus: StatusUnknown},
			false, "running, status checks: instance unknown, system unknown"},
		{"one status read", Holder{Instance: "i-1", State: StateRunning, InstanceStatus: StatusOK}, false, "running, status checks: instance ok, system unknown"},
		{"pending", Holder{Instance: "i-1", State: StatePending}, false, "pending"},
		{"only the probe", Holder{Instance: "i-1", Probe: up}, false, up.Result},
		{"nothing read", Holder{Instance: "i-1"}, false, "holder i-1: nothing known against it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.h)
			if v.Down != tt.down || v.Why != tt.why {
				t.Errorf("Judge(%+v) = %+v, want {Down:%v Why:%q}", tt.h, v, tt.down, tt.why)
			}
		})
	}
}

// TestTakeover covers every policy × force × verdict.
func TestTakeover(t *testing.T) {
	down := Verdict{Down: true, Why: "holder i-1 is stopped"}
	up := Verdict{Why: "running"}
	policies := []config.Takeover{"", config.TakeoverNever, config.TakeoverIfHolderDown, config.TakeoverAlways}
	for _, p := range policies {
		for _, force := range []bool{false, true} {
			for _, v := range []Verdict{down, up} {
				name := fmt.Sprintf("%q/force=%v/down=%v", p, force, v.Down)
				allow, why := Takeover(p, force, v)
				var wantAllow bool
				var wantWhy string
				switch {
				case force:
					wantAllow, wantWhy = true, "--force"
				case p == config.TakeoverNever:
					wantAllow, wantWhy = false, "takeover is never"
				case p == config.TakeoverAlways:
					wantAllow, wantWhy = true, "takeover: always"
				default:
					wantAllow, wantWhy = v.Down, v.Why
				}
				if allow != wantAllow || why != wantWhy {
					t.Errorf("%s: Takeover = %v %q, want %v %q", name, allow, why, wantAllow, wantWhy)
				}
				needs := NeedsVerdict(p, force)
				if wantNeeds := !force && (p == "" || p == config.TakeoverIfHolderDown); needs != wantNeeds {
					t.Errorf("%s: NeedsVerdict = %v, want %v", name, needs, wantNeeds)
				}
			}
		}
	}
}

func TestEligible(t *testing.T) {
	up := &Probe{OK: true, Result: "answered"}
	dead := &Probe{Result: "refused"}
	ok := Candidate{Instance: "i-2", State: StateRunning, InstanceStatus: StatusOK, SystemStatus: StatusOK}
	with := func(f func(*Candidate)) Candidate { c := ok; f(&c); return c }
	tests := []struct {
		name      string
		c         Candidate
		launching bool
		want      bool
		why       string
	}{
		{"healthy, no health check", ok, false, true, "eligible"},
		{"healthy, probe answers", with(func(c *Candidate) { c.Probe = up }), false, true, "eligible"},
		{"probe fails", with(func(c *Candidate) { c.Probe = dead }), false, false, "i-2 fails its health check: refused"},
		{"stopped", with(func(c *Candidate) { c.State = StateStopped }), false, false, "i-2 is stopped, not running"},
		{"pending", with(func(c *Candidate) { c.State = StatePending }), true, false, "i-2 is pending, not running"},
		{"state unread", with(func(c *Candidate) { c.State = "" }), false, false, "i-2 is unknown, not running"},
		{"initializing", with(func(c *Candidate) { c.InstanceStatus = StatusInitializing }), false, false, "i-2 status checks: instance initializing, system ok"},
		{"initializing while launching", with(func(c *Candidate) { c.InstanceStatus, c.SystemStatus = StatusInitializing, "" }), true, true, "eligible"},
		{"impaired while launching", with(func(c *Candidate) { c.SystemStatus = StatusImpaired }), true, false, "i-2 status checks: instance ok, system impaired"},
		{"impaired", with(func(c *Candidate) { c.InstanceStatus = StatusImpaired }), false, false, "i-2 status checks: instance impaired, system ok"},
		{"launching, probe fails", with(func(c *Candidate) { c.Probe = dead }), true, false, "i-2 fails its health check: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Eligible(tt.c, tt.launching)
			if got != tt.want || why != tt.why {
				t.Errorf("Eligible(%+v, %v) = %v %q, want %v %q", tt.c, tt.launching, got, why, tt.want, tt.why)
			}
		})
	}
}

func TestRank(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := []Candidate{
		{Instance: "i-c", LaunchTime: t0.Add(time.Hour)},
		{Instance: "i-b", LaunchTime: t0},
		{Instance: "i-a", LaunchTime: t0},
		{Instance: "i-d", LaunchTime: t0.Add(2 * time.Hour)},
	}
	ids := func(cs []Candidate) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Instance)
		}
		return strings.Join(s, ",")
	}
	for first, want := range map[string]string{
		"":    "i-a,i-b,i-c,i-d",
		"i-d": "i-d,i-a,i-b,i-c",
		"i-b": "i-b,i-a,i-c,i-d",
		"i-x": "i-a,i-b,i-c,i-d",
	} {
		c := slices.Clone(cs)
		Rank(c, first)
		if got := ids(c); got != want {
			t.Errorf("Rank(first=%q) = %s, want %s", first, got, want)
		}
	}
}
