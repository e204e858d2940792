package decide

import "github.com/eipclaim/eipclaim/internal/config"

// NeedsFacts reports whether a claim reads its holder's facts (state,
// status checks, probe) before it moves the EIP: Takeover needs the
// verdict (NeedsVerdict), or the role fences (fence: stop), so that a
// takeover allowed without a verdict (--force, takeover: always) still
// knows whether the holder is down but running. Under takeover: never
// without force nothing is taken, and nothing is read.
func NeedsFacts(policy config.Takeover, force bool, fence config.Fence) bool {
	if NeedsVerdict(policy, force) {
		return true
	}
	return fence == config.FenceStop && (force || effective(policy) != config.TakeoverNever)
}

// Fence decides whether a takeover stops the holder's instance before it
// moves the EIP (fence: stop): only when the role fences, the takeover is
// allowed (Takeover), Judge finds the holder down on the facts h (read
// now, as for a takeover) and its instance is running. Never a healthy
// holder, whatever --force or takeover: always allow: fencing is for a
// holder that is down but still running, which could go on serving
// through a path the EIP does not guard. A holder already stopping,
// stopped or gone needs no fence; one pending cannot be stopped and
// serves nothing yet. why is the reason in words, either way.
func Fence(fence config.Fence, policy config.Takeover, force bool, h Holder) (stop bool, why string) {
	v := Judge(h)
	allow, _ := Takeover(policy, force, v)
	switch {
	case fence != config.FenceStop:
		return false, "fence is off"
	case h.Instance == "":
		return false, "the EIP is on an interface of no instance: nothing to fence"
	case !v.Down:
		return false, "holder " + h.Instance + " is not down (" + v.Why + "): a healthy holder is never fenced"
	case !allow:
		return false, "no takeover, so no fence"
	case Stopped(h.State):
		return false, "holder " + h.Instance + " is " + h.State + ": it needs no fence"
	case h.State != StateRunning:
		return false, "holder " + h.Instance + " is " + orUnknown(h.State) + ", not running: no fence"
	}
	return true, v.Why + ", and its instance is running: stop it first (fence: stop)"
}
