package decide

import "strings"

// Instance states as EC2 names them (types.InstanceStateName), and Gone:
// EC2 no longer knows the instance (terminated long ago).
const (
	StateRunning      = "running"
	StatePending      = "pending"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
	StateGone         = "gone"
)

// Status-check summaries as EC2 names them (types.SummaryStatus), and
// StatusUnknown when EC2 gave none.
const (
	StatusOK           = "ok"
	StatusImpaired     = "impaired"
	StatusInitializing = "initializing"
	StatusUnknown      = "unknown"
)

// Stopped reports a holder's instance state in which it does not serve,
// whatever its probe says: stopping, stopped, shutting down, terminated,
// or gone. It is the one list of down states.
func Stopped(state string) bool {
	switch state {
	case StateStopping, StateStopped, StateShuttingDown, StateTerminated, StateGone:
		return true
	}
	return false
}

// Probe is the result of one health_check probe (tcp:PORT on the private
// IP): whether it answered, and the result in words.
type Probe struct {
	OK     bool
	Result string
}

// Holder is what is known of an EIP's holder. An empty field was not read.
type Holder struct {
	// Instance is the holder; "" when the EIP is on an interface attached
	// to no instance (a NAT gateway, a load balancer, a detached ENI).
	Instance string
	// State is the instance's state (StateRunning, ...; StateGone when
	// EC2 no longer knows it).
	State string
	// InstanceStatus and SystemStatus are the status checks' summaries
	// (StatusOK, StatusImpaired, ...).
	InstanceStatus, SystemStatus string
	// Probe is the role's health_check against the holder; nil when none ran.
	Probe *Probe
}

// Verdict is whether the holder counts as down, and why, in one line.
type Verdict struct {
	Down bool
	Why  string
}

// NoInstance is the verdict on an EIP held by an interface of no
// instance: not down, and taken only by force.
const NoInstance = "on an interface attached to no instance (a NAT gateway, a load balancer or a detached interface): eipclaim does not take it without --force"

// Judge gives the holder's verdict from what is known of it, in order:
// an interface of no instance is not down; a stopped state (Stopped) is
// down; an impaired status check is down; a failed probe is down; else
// the holder is up, and Why lists the evidence.
func Judge(h Holder) Verdict {
	switch {
	case h.Instance == "":
		return Verdict{Why: NoInstance}
	case h.State == StateGone:
		return Verdict{Down: true, Why: "holder " + h.Instance + " no longer exists"}
	case Stopped(h.State):
		return Verdict{Down: true, Why: "holder " + h.Instance + " is " + h.State}
	case h.InstanceStatus == StatusImpaired || h.SystemStatus == StatusImpaired:
		return Verdict{Down: true, Why: "holder " + h.Instance + " fails its status checks (" + h.statusWords() + ")"}
	case h.Probe != nil && !h.Probe.OK:
		return Verdict{Down: true, Why: "holder " + h.Instance + " fails its health check: " + h.Probe.Result}
	}
	var reasons []string
	if h.State != "" {
		reasons = append(reasons, h.State)
	}
	if s := h.statusWords(); s != "" {
		reasons = append(reasons, "status checks: "+s)
	}
	if h.Probe != nil {
		reasons = append(reasons, h.Probe.Result)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "holder "+h.Instance+": nothing known against it")
	}
	return Verdict{Why: strings.Join(reasons, ", ")}
}

// statusWords says the status checks: "instance ok, system ok"; "" when
// they were not read.
func (h Holder) statusWords() string {
	if h.InstanceStatus == "" && h.SystemStatus == "" {
		return ""
	}
	return "instance " + orUnknown(h.InstanceStatus) + ", system " + orUnknown(h.SystemStatus)
}

func orUnknown(s string) string {
	if s == "" {
		return StatusUnknown
	}
	return s
}
