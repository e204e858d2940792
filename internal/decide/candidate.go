package decide

import (
	"cmp"
	"slices"
	"time"
)

// Candidate is an instance that may hold a role's EIP (tagged with the
// role), as observed.
type Candidate struct {
	Instance string
	// State, InstanceStatus and SystemStatus as in Holder.
	State, InstanceStatus, SystemStatus string
	LaunchTime                          time.Time
	// Probe is the role's health_check against it; nil when the role has
	// none.
	Probe *Probe
}

// Eligible reports whether c may hold the EIP: running, both status
// checks ok (while Auto Scaling launches it, launching: not impaired,
// since its checks are still initializing), and its health_check passing.
// why says what failed, or "eligible".
func Eligible(c Candidate, launching bool) (ok bool, why string) {
	if c.State != StateRunning {
		return false, c.Instance + " is " + orUnknown(c.State) + ", not running"
	}
	passes := c.InstanceStatus == StatusOK && c.SystemStatus == StatusOK
	if launching {
		passes = c.InstanceStatus != StatusImpaired && c.SystemStatus != StatusImpaired
	}
	if !passes {
		return false, c.Instance + " status checks: instance " + orUnknown(c.InstanceStatus) + ", system " + orUnknown(c.SystemStatus)
	}
	if c.Probe != nil && !c.Probe.OK {
		return false, c.Instance + " fails its health check: " + c.Probe.Result
	}
	return true, "eligible"
}

// Rank orders candidates best first: the instance first (the event's,
// "" for none), then the longest running (launch time), then by id, so
// that every controller run picks the same one.
func Rank(cs []Candidate, first string) {
	slices.SortFunc(cs, func(a, b Candidate) int {
		if (a.Instance == first) != (b.Instance == first) {
			if a.Instance == first {
				return -1
			}
			return 1
		}
		return cmp.Or(a.LaunchTime.Compare(b.LaunchTime), cmp.Compare(a.Instance, b.Instance))
	})
}
