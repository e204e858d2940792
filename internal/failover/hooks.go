package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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
type Hooks struct {
	Role      string
	OnHolder  []string
	OnStandby []string
	Timeout   time.Duration // default 30s
	Log       *slog.Logger
	// Observe, when set, is told the result of every run (metrics).
	Observe func(event, result string)

	mu sync.Mutex // hooks of a role never run concurrently
}

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
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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
	)
	out := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	processGroup(cmd) // Cancel kills the whole group
	// Pipes held open by an orphaned grandchild do not keep the watcher.
	cmd.WaitDelay = 2 * time.Second
	began := time.Now()
	log.Info("running hook", "epoch", env.Epoch, "reason", env.Reason)
	err := cmd.Run()
	run := &HookRun{Event: env.Event, Command: strings.Join(argv, " "), Result: HookOK, Took: time.Since(began).Round(time.Millisecond).String()}
	switch {
	case errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		run.Result, run.Error = HookTimeout, fmt.Sprintf("killed after its timeout of %s", timeout)
	case err != nil:
		run.Result, run.Error = HookFailed, err.Error()
	}
	if run.Result == HookOK {
		log.Info("hook done", "took", run.Took)
	} else {
		// The hook's own output is shown, cut short: it is the operator's.
		log.Warn("hook failed; the watcher goes on", "result", run.Result, "error", run.Error, "took", run.Took, "output", out.String())
	}
	if h.Observe != nil {
		h.Observe(env.Event, run.Result)
	}
	return run
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
