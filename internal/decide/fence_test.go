package decide

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/config"
)

func TestFence(t *testing.T) {
	up := &Probe{OK: true, Result: "tcp:5432 on 10.0.1.7 answered"}
	dead := &Probe{OK: false, Result: "tcp:5432 on 10.0.1.7 failed: connection refused"}
	running := func(inst, sys string, p *Probe) Holder {
		return Holder{Instance: "i-1", State: StateRunning, InstanceStatus: inst, SystemStatus: sys, Probe: p}
	}
	stop, off := config.FenceStop, config.Fence("")
	tests := []struct {
		name   string
		fence  config.Fence
		policy config.Takeover
		force  bool
		h      Holder
		want   bool
		why    string // a part of the reason
	}{
		{"probe fails, running", stop, "", false, running(StatusOK, StatusOK, dead), true, "fails its health check"},
		{"instance check impaired, running", stop, "", false, running(StatusImpaired, StatusOK, nil), true, "fails its status checks"},
		{"system check impaired, running", stop, config.TakeoverIfHolderDown, false, running(StatusOK, StatusImpaired, up), true, "fails its status checks"},
		{"down, takeover always", stop, config.TakeoverAlways, false, running(StatusOK, StatusOK, dead), true, "stop it first"},
		{"down, --force", stop, "", true, running(StatusOK, StatusOK, dead), true, "stop it first"},
		{"down, takeover never with --force", stop, config.TakeoverNever, true, running(StatusOK, StatusOK, dead), true, "stop it first"},
		{"explicit off", config.FenceOff, "", false, running(StatusOK, StatusOK, dead), false, "fence is off"},
		{"unset is off", off, "", false, running(StatusOK, StatusOK, dead), false, "fence is off"},
		{"off, --force", off, "", true, running(StatusOK, StatusOK, dead), false, "fence is off"},
		{"healthy", stop, "", false, running(StatusOK, StatusOK, up), false, "never fenced"},
		{"healthy, --force", stop, "", true, running(StatusOK, StatusOK, up), false, "never fenced"},
		{"healthy, takeover always", stop, config.TakeoverAlways, false, running(StatusOK, StatusOK, up), false, "never fenced"},
		{"healthy, no probe", stop, config.TakeoverAlways, false, running(StatusOK, StatusOK, nil), false, "never fenced"},
		{"initializing, --force", stop, "", true, running(StatusInitializing, StatusInitializing, nil), false, "never fenced"},
		{"nothing read, --force", stop, "", true, Holder{Instance: "i-1"}, false, "never fenced"},
		{"takeover never", stop, config.TakeoverNever, false, running(StatusOK, StatusOK, dead), false, "no takeover"},
		{"stopping", stop, "", false, Holder{Instance: "i-1", State: StateStopping}, false, "needs no fence"},
		{"stopped, probe answers", stop, "", false, Holder{Instance: "i-1", State: StateStopped, Probe: up}, false, "needs no fence"},
		{"shutting down", stop, "", false, Holder{Instance: "i-1", State: StateShuttingDown}, false, "needs no fence"},
		{"terminated", stop, config.TakeoverAlways, false, Holder{Instance: "i-1", State: StateTerminated}, false, "needs no fence"},
		{"gone", stop, "", true, Holder{Instance: "i-1", State: StateGone}, false, "needs no fence"},
		{"pending, probe fails", stop, "", false, Holder{Instance: "i-1", State: StatePending, Probe: dead}, false, "pending, not running"},
		{"state not read, probe fails", stop, "", false, Holder{Instance: "i-1", Probe: dead}, false, "unknown, not running"},
		{"no instance, --force", stop, "", true, Holder{}, false, "interface of no instance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Fence(tc.fence, tc.policy, tc.force, tc.h)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("Fence = %v, %q; want %v, with %q", got, why, tc.want, tc.why)
			}
		})
	}
}

// TestFenceEvidence: over every combination of state × status checks ×
// probe × policy × fence setting × force, a fence happens exactly when the
// role fences, the takeover of a down holder is allowed, and the holder
// is running; and never when Judge says the holder is up.
func TestFenceEvidence(t *testing.T) {
	states := []string{"", StateRunning, StatePending, StateStopping, StateStopped, StateShuttingDown, StateTerminated, StateGone}
	statuses := []string{"", StatusOK, StatusImpaired, StatusInitializing, StatusUnknown}
	probes := []*Probe{nil, {OK: true, Result: "answered"}, {OK: false, Result: "refused"}}
	policies := []config.Takeover{"", config.TakeoverNever, config.TakeoverIfHolderDown, config.TakeoverAlways}
	fences := []config.Fence{"", config.FenceOff, config.FenceStop}
	n, fenced := 0, 0
	for _, inst := range []string{"", "i-1"} {
		for _, st := range states {
			for _, is := range statuses {
				for _, ss := range statuses {
					for _, p := range probes {
						for _, pol := range policies {
							for _, f := range fences {
								for _, force := range []bool{false, true} {
									h := Holder{Instance: inst, State: st, InstanceStatus: is, SystemStatus: ss, Probe: p}
									got, why := Fence(f, pol, force, h)
									v := Judge(h)
									allowed, _ := Takeover(pol, force, v)
									want := f == config.FenceStop && allowed && v.Down && st == StateRunning && inst != ""
									name := fmt.Sprintf("%+v policy %q fence %q force %v", h, pol, f, force)
									if got != want {
										t.Errorf("%s: Fence = %v (%s), want %v", name, got, why, want)
									}
									if got && !NeedsFacts(pol, force, f) {
										t.Errorf("%s: fences, but NeedsFacts says the facts are not read", name)
									}
									if why == "" {
										t.Errorf("%s: no reason", name)
									}
									n++
									if got {
										fenced++
									}
								}
							}
						}
					}
				}
			}
		}
	}
	if fenced == 0 || fenced == n {
		t.Errorf("%d of %d combinations fence: the table does not exercise both answers", fenced, n)
	}
}

func TestNeedsFacts(t *testing.T) {
	tests := []struct {
		policy config.Takeover
		force  bool
		fence  config.Fence
		want   bool
	}{
		{"", false, "", true},
		{config.TakeoverIfHolderDown, false, config.FenceOff, true},
		{config.TakeoverAlways, false, "", false},
		{config.TakeoverAlways, false, config.FenceStop, true},
		{"", true, "", false},
		{"", true, config.FenceStop, true},
		{config.TakeoverNever, false, config.FenceStop, false},
		{config.TakeoverNever, true, config.FenceStop, true},
		{config.TakeoverNever, false, "", false},
	}
	for _, tc := range tests {
		if got := NeedsFacts(tc.policy, tc.force, tc.fence); got != tc.want {
			t.Errorf("NeedsFacts(%q, %v, %q) = %v, want %v", tc.policy, tc.force, tc.fence, got, tc.want)
		}
	}
}
