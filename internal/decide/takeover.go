package decide

import "github.com/eipclaim/eipclaim/internal/config"

// NeedsVerdict reports whether Takeover needs the holder's verdict under
// the policy: only if-holder-down (the default) without force does.
func NeedsVerdict(policy config.Takeover, force bool) bool {
	return !force && effective(policy) == config.TakeoverIfHolderDown
}

// Takeover decides whether a claim may take an EIP from its holder (an
// instance other than the claimer): with force (--force, a hand-over
// while Auto Scaling terminates the holder) or takeover: always, yes; with
// takeover: never, no; with if-holder-down, when the verdict says the
// holder is down. why is the reason in words, either way.
func Takeover(policy config.Takeover, force bool, v Verdict) (allow bool, why string) {
	switch {
	case force:
		return true, "--force"
	case effective(policy) == config.TakeoverNever:
		return false, "takeover is never"
	case effective(policy) == config.TakeoverAlways:
		return true, "takeover: always"
	}
	return v.Down, v.Why
}

func effective(p config.Takeover) config.Takeover {
	if p == "" {
		return config.TakeoverIfHolderDown
	}
	return p
}
