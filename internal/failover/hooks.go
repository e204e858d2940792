package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The states a watcher (or a claim) enters, and so the events of hooks.
const (
	EventHolder  = "holder"
	EventStandby = "standby"
)

// The results of a hook run, as counted in metrics.
const (
	HookOK      = "ok"
	HookFailed  = "failed"
	HookTimeout = "timeout"
)

// Hooks run a role's on_holder and on_standby commands: an argv each,
// without a shell, one at a time for the role, killed (their whole process
// group) at Timeout. A hook that fails is logged and counted, never an
// error of the caller.
//
// When the caller's context ends before the hook does (eipclaim is
// stopped: SIGTERM, SIGINT, SIGHUP), the hook's process group is sent
// SIGTERM and given StopGrace (at most what is left of its Timeout) to
// finish, then SIGKILL. (On Windows it is killed at once.) The failover
// step runs the on_holder hook of a move on a context that a stop does not
// end: it runs to its end or its Timeout.
//
// The hook's output (stdout and stderr) goes to a file of its own, of which
// the first 4 KiB are logged when it fails: a background child the hook
// started and left running with its output does not hold the caller, and a
// hook that exited 0 is a success.
type Hooks struct {
	Role      string
	OnHolder  []string
	OnStandby []string
	Timeout   time.Duration // default 30s
	// StopGrace is how long a hook may take to exit after SIGTERM when
	// the caller stops; DefaultStopGrace when zero.
	StopGrace time.Duration
	Log       *slog.Logger
	// Observe, when set, is told the result of every run (metrics).
	Observe func(event, result string)
	// Heartbeat, when set, is called every HeartbeatEvery while a hook
	// runs: the service manager's watchdog, which a hook allowed to run
	// longer than the watchdog's timeout must not trip.
	Heartbeat      func()
	HeartbeatEvery time.Duration

	mu sync.Mutex // hooks of a role never run concurrently
}

// HookRunner runs the hook of an event; *Hooks is one.
type HookRunner interface {
	Run(ctx context.Context, env HookEnv) *HookRun
}

// DefaultStopGrace is Hooks.StopGrace when zero: systemd's stop timeout
// of the shipped unit (TimeoutStopSec) leaves room for it.
const DefaultStopGrace = 10 * time.Second

// HookEnv is what a hook is told, as EIPCLAIM_* variables.
type HookEnv struct {
	Event          string // EventHolder or EventStandby
	PublicIP       string
	AllocationID   string
	Epoch          int64
	PreviousHolder string
	// Holder is the instance that holds the EIP now ("" when free).
	Holder string
	Reason string
	// Fenced is the previous holder's instance the move stopped first
	// (fence: stop), "" when none was: EIPCLAIM_FENCED.
	Fenced string
	// PrivateAddress is the role's secondary private IP (private_address),
	// "" when it has none: EIPCLAIM_PRIVATE_ADDRESS. A hook on Linux or
	// elsewhere adds it to (on_holder) or removes it from (on_standby)
	// the local interface when eipclaim does not.
	PrivateAddress string
	// OverlayAddress is the role's overlay address (overlay), "" when it
	// has none: EIPCLAIM_OVERLAY_ADDRESS. The routes point at the holder;
	// a hook adds the address to (on_holder) or removes it from
	// (on_standby) a local interface.
	OverlayAddress string
}

// HookRun is one run of a hook, reported in the step's Outcome.
type HookRun struct {
	Event   string `json:"event"`
	Command string `json:"command"`
	Result  string `json:"result"` // ok, failed, timeout
	Error   string `json:"error,omitempty"`
	Took    string `json:"took"`
}

// Run runs the hook of env.Event, if one is configured, and waits for it.
// It returns nil when no hook is configured for the event.
func (h *Hooks) Run(ctx context.Context, env HookEnv) *HookRun {
	if h == nil {
		return nil
	}
	argv := h.OnHolder
	if env.Event == EventStandby {
		argv = h.OnStandby
	}
	if len(argv) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("role", h.Role, "event", env.Event, "hook", argv[0])
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	grace := h.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(hctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"EIPCLAIM_EVENT="+env.Event,
		"EIPCLAIM_ROLE="+h.Role,
		"EIPCLAIM_PUBLIC_IP="+env.PublicIP,
		"EIPCLAIM_ALLOCATION_ID="+env.AllocationID,
		"EIPCLAIM_EPOCH="+strconv.FormatInt(env.Epoch, 10),
		"EIPCLAIM_PREVIOUS_HOLDER="+env.PreviousHolder,
		"EIPCLAIM_HOLDER="+env.Holder,
		"EIPCLAIM_REASON="+env.Reason,
		"EIPCLAIM_FENCED="+env.Fenced,
		"EIPCLAIM_PRIVATE_ADDRESS="+env.PrivateAddress,
		"EIPCLAIM_OVERLAY_ADDRESS="+env.OverlayAddress,
	)
	out, err := os.CreateTemp("", "eipclaim-hook-*.out")
	if err != nil {
		log.Warn("no file for the hook's output: it is discarded", "error", err)
	} else {
		defer func() { out.Close(); os.Remove(out.Name()) }()
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.Stdin = nil
	var stopped atomic.Bool
	// At its timeout the hook's group is killed; when the caller stops,
	// it is asked to stop first (unix: SIGTERM), and killed after grace
	// (never past its timeout).
	cmd.Cancel = func() error {
		if ctx.Err() != nil {
			stopped.Store(true)
			return terminate(cmd, min(grace, time.Until(began.Add(timeout))))
		}
		return kill(cmd)
	}
	processGroup(cmd)
	log.Info("running hook", "epoch", env.Epoch, "reason", env.Reason)
	if h.Heartbeat != nil && h.HeartbeatEvery > 0 {
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(h.HeartbeatEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					h.Heartbeat()
				}
			}
		}()
	}
	err = cmd.Run()
	if stopped.Load() {
		killLeftovers(cmd) // its children, once it has exited
	}
	run := &HookRun{Event: env.Event, Command: strings.Join(argv, " "), Result: HookOK, Took: time.Since(began).Round(time.Millisecond).String()}
	switch {
	case err == nil || cmd.ProcessState != nil && cmd.ProcessState.Success():
		// Exited 0 (after SIGTERM too: exec reports the cancellation):
		// a success, whatever it left running.
	case errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		run.Result, run.Error = HookTimeout, fmt.Sprintf("killed after its timeout of %s", timeout)
	case stopped.Load():
		run.Result, run.Error = HookFailed, fmt.Sprintf("stopped with eipclaim (sent SIGTERM, then SIGKILL after %s): %v", grace, err)
	default:
		run.Result, run.Error = HookFailed, err.Error()
	}
	if run.Result == HookOK {
		log.Info("hook done", "took", run.Took)
	} else {
		// The hook's own output is shown, cut short: it is the operator's.
		log.Warn("hook failed; the watcher goes on", "result", run.Result, "error", run.Error, "took", run.Took, "output", head(out, 4096))
	}
	if h.Observe != nil {
		h.Observe(env.Event, run.Result)
	}
	return run
}

// head returns the first max bytes of f, trimmed ("" when f is nil).
func head(f *os.File, max int) string {
	if f == nil {
		return ""
	}
	b := make([]byte, max)
	n, _ := f.ReadAt(b, 0)
	return strings.TrimSpace(string(b[:n]))
}
