package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Watch is a role's watch: block, how `eipclaim watch` looks at the role's
// EIP. Durations have a unit ("5s", "1m"): a bare number is refused with
// its line.
type Watch struct {
	Interval Duration `yaml:"interval"`  // how often the watcher looks (default 5s)
	Fall     *int     `yaml:"fall"`      // consecutive failed looks before the holder counts as down (default 3)
	HoldDown Duration `yaml:"hold_down"` // a new holder is not taken over for failing probes within this (default 60s, at least MinHoldDown)
	// References are HOST:PORT addresses of the network, other than the
	// holder, that a standby probes (TCP) before it takes over: when the
	// holder's probe and every reference fail, it is the one cut off and
	// does not take over.
	References []string `yaml:"references"`
}

// Hooks is a role's hooks: block, the commands a watcher runs when it
// enters a state. Each is an argv, run without a shell.
type Hooks struct {
	OnHolder  []string `yaml:"on_holder"`
	OnStandby []string `yaml:"on_standby"`
	Timeout   Duration `yaml:"timeout"` // default 30s
}

// The defaults of the watch: and hooks: blocks.
const (
	DefaultInterval    = 5 * time.Second
	DefaultFall        = 3
	DefaultHoldDown    = 60 * time.Second
	DefaultHookTimeout = 30 * time.Second
	// MinHoldDown is the shortest hold_down: after a move the new holder
	// keeps the EIP at least this long, so that a probe that fails from
	// everywhere cannot move the EIP at every fall looks (0 no longer
	// turns the hold-down off: it is refused).
	MinHoldDown = time.Second
)

// WatchSettings are a role's watch: and hooks: blocks with the defaults
// applied.
type WatchSettings struct {
	Interval    time.Duration
	Fall        int
	HoldDown    time.Duration
	References  []string // HOST:PORT
	OnHolder    []string
	OnStandby   []string
	HookTimeout time.Duration
}

// WatchSettings returns the role's watch settings, defaults applied. The
// configuration is validated: the values parse.
func (r *Role) WatchSettings() WatchSettings {
	s := WatchSettings{Interval: DefaultInterval, Fall: DefaultFall, HoldDown: DefaultHoldDown, HookTimeout: DefaultHookTimeout}
	if w := r.Watch; w != nil {
		s.Interval, s.HoldDown = w.Interval.Or(DefaultInterval), w.HoldDown.Or(DefaultHoldDown)
		if w.Fall != nil {
			s.Fall = *w.Fall
		}
		s.References = w.References
	}
	if h := r.Hooks; h != nil {
		s.OnHolder, s.OnStandby = h.OnHolder, h.OnStandby
		s.HookTimeout = h.Timeout.Or(DefaultHookTimeout)
	}
	return s
}

// The bounds of the watch settings.
const (
	minInterval = 100 * time.Millisecond
	maxInterval = time.Hour
	maxFall     = 100
)

func (v *validator) watch(path string, w *Watch) {
	if w == nil {
		return
	}
	v.durationIn(path+".interval", w.Interval, minInterval, maxInterval, "such as 5s")
	if w.Fall != nil && (*w.Fall < 1 || *w.Fall > maxFall) {
		v.add(path+".fall", fmt.Sprint(*w.Fall), fmt.Sprintf("want a whole number of looks from 1 to %d, such as 3", maxFall))
	}
	v.durationIn(path+".hold_down", w.HoldDown, MinHoldDown, 24*time.Hour,
		"such as 60s: after a move the new holder keeps the EIP at least this long, so 0 (no hold-down) is refused")
	for i, r := range w.References {
		host, port, err := net.SplitHostPort(r)
		if _, ok := decimal(port, 1, 65535); err != nil || !ok || host == "" {
			v.add(fmt.Sprintf("%s.references[%d]", path, i), r, "want HOST:PORT, an address of the network other than the holder that answers TCP on PORT, such as 10.0.0.5:22")
		}
	}
}

func (v *validator) hooks(path string, h *Hooks) {
	if h == nil {
		return
	}
	v.argv(path+".on_holder", h.OnHolder)
	v.argv(path+".on_standby", h.OnStandby)
	v.durationIn(path+".timeout", h.Timeout, time.Second, time.Hour, "such as 30s")
}

// argv checks a hook's command line: an absolute program path, then its
// arguments; no shell runs it.
func (v *validator) argv(path string, argv []string) {
	if argv == nil {
		return
	}
	if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
		v.add(path, "", `want a command as a list: the program's absolute path, then its arguments, such as ["/usr/local/bin/promote", "--fast"]`)
		return
	}
	if !filepath.IsAbs(argv[0]) && !strings.HasPrefix(argv[0], "/") {
		v.add(path, argv[0], `want the program's absolute path (no shell runs hooks, and the service's PATH is not yours), such as ["/usr/local/bin/promote"]; for a shell command write ["/bin/sh", "-c", "..."]`)
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			v.add(path, "", "an argument holds a NUL byte")
		}
	}
}
