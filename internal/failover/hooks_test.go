//go:build unix

package failover

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHookEnvAndResult(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	var mu sync.Mutex
	seen := map[string]int{}
	h := &Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "env | grep ^EIPCLAIM_ > " + out},
		OnStandby: []string{"/bin/sh", "-c", "echo demote failed; exit 3"},
		Observe:   func(ev, res string) { mu.Lock(); seen[ev+" "+res]++; mu.Unlock() }}
	run := h.Run(t.Context(), HookEnv{Event: EventHolder, PublicIP: "203.0.113.9", AllocationID: "eipalloc-1", Epoch: 7, PreviousHolder: "i-old", Holder: "i-new", Reason: "holder i-old is stopped", Fenced: "i-old", PrivateAddress: "10.0.1.50"})
	if run == nil || run.Result != HookOK {
		t.Fatalf("on_holder: %+v", run)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EIPCLAIM_EVENT=holder", "EIPCLAIM_ROLE=db", "EIPCLAIM_PUBLIC_IP=203.0.113.9", "EIPCLAIM_ALLOCATION_ID=eipalloc-1",
		"EIPCLAIM_EPOCH=7", "EIPCLAIM_PREVIOUS_HOLDER=i-old", "EIPCLAIM_HOLDER=i-new", "EIPCLAIM_REASON=holder i-old is stopped", "EIPCLAIM_FENCED=i-old", "EIPCLAIM_PRIVATE_ADDRESS=10.0.1.50"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("hook env lacks %s:\n%s", want, b)
		}
	}
	run = h.Run(t.Context(), HookEnv{Event: EventStandby})
	if run == nil || run.Result != HookFailed || !strings.Contains(run.Error, "exit status 3") {
		t.Errorf("failing on_standby: %+v", run)
	}
	if seen["holder ok"] != 1 || seen["standby failed"] != 1 {
		t.Errorf("observed %v", seen)
	}
	if (&Hooks{}).Run(t.Context(), HookEnv{Event: EventHolder}) != nil {
		t.Error("no hook configured, yet a run")
	}
}

// A hanging hook is killed at its timeout, with the children it started.
func TestHookTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := &Hooks{Role: "db", Timeout: 500 * time.Millisecond,
		OnHolder: []string{"/bin/sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"}}
	began := time.Now()
	run := h.Run(t.Context(), HookEnv{Event: EventHolder})
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("a hanging hook took %s, want about its timeout", took)
	}
	if run.Result != HookTimeout {
		t.Fatalf("result %+v, want timeout", run)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break // gone, or a zombie awaiting its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's child %s outlived the timeout", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Hooks of one role never run at once.
func TestHooksNeverConcurrent(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	// mkdir is atomic: a second hook running at once would fail it.
	h := &Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "mkdir " + lock + " && sleep 0.2 && rmdir " + lock}}
	var wg sync.WaitGroup
	results := make([]*HookRun, 4)
	for i := range results {
		wg.Go(func() { results[i] = h.Run(context.Background(), HookEnv{Event: EventHolder}) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Result != HookOK {
			t.Errorf("run %d: %+v (ran concurrently?)", i, r)
		}
	}
}

// A hook running when eipclaim is stopped is sent SIGTERM and given its
// grace to finish (a promote is not cut off mid-run), and SIGKILLed after
// it when it does not exit (issue 17: it was SIGKILLed at once).
func TestHookStopTerminatesThenKills(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "term")
	ready := filepath.Join(dir, "ready")
	waitReady := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(ready); err == nil {
				os.Remove(ready)
				return
			}
		}
		t.Fatal("the hook never started")
	}
	// Cleans up on SIGTERM, then exits 0.
	h := &Hooks{Role: "db", Timeout: time.Minute, StopGrace: 5 * time.Second,
		OnHolder: []string{"/bin/sh", "-c", "trap 'sleep 0.3; echo cleaned > " + marker + "; exit 0' TERM; touch " + ready + "; sleep 30 & wait"}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { waitReady(); cancel() }()
	began := time.Now()
	run := h.Run(ctx, HookEnv{Event: EventHolder})
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "cleaned" {
		t.Errorf("the hook did not get to clean up after SIGTERM: %v %q (run %+v)", err, b, run)
	}
	if run.Result != HookOK {
		t.Errorf("a hook that exited 0 after SIGTERM: %+v, want ok", run)
	}
	if took := time.Since(began); took > 4*time.Second {
		t.Errorf("took %s", took)
	}

	// Ignores SIGTERM: killed after its grace.
	h = &Hooks{Role: "db", Timeout: time.Minute, StopGrace: 700 * time.Millisecond,
		OnHolder: []string{"/bin/sh", "-c", "trap '' TERM; touch " + ready + "; while :; do sleep 0.1; done"}}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { waitReady(); cancel() }()
	began = time.Now()
	run = h.Run(ctx, HookEnv{Event: EventHolder})
	took := time.Since(began)
	if run.Result != HookFailed || !strings.Contains(run.Error, "stopped with eipclaim") {
		t.Errorf("a hook ignoring SIGTERM: %+v, want failed, stopped", run)
	}
	if took < 700*time.Millisecond || took > 4*time.Second {
		t.Errorf("a hook ignoring SIGTERM ended after %s, want its grace (700ms) and little more", took)
	}
}

// A hook that exits 0 leaving a background child that holds its output
// open is a success, at once (issue 17: "WaitDelay expired" after 2 s).
func TestHookBackgroundChildIsSuccess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := &Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "sleep 30 & echo $! > " + pidFile + "; echo started"}}
	began := time.Now()
	run := h.Run(t.Context(), HookEnv{Event: EventHolder})
	if run.Result != HookOK {
		t.Errorf("a hook that exited 0: %+v, want ok", run)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("took %s: the background child held the hook", took)
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid := strings.TrimSpace(string(b)); pid != "" {
			if _, err := os.Stat("/proc/" + pid); err != nil {
				t.Errorf("the background child %s was killed: a hook that succeeded keeps what it started", pid)
			}
			exec.Command("kill", pid).Run()
		}
	}
}

// While a hook runs, the heartbeat (the service manager's watchdog) is
// called: a hook allowed to run longer than the watchdog's timeout does
// not get the watcher killed.
func TestHookHeartbeat(t *testing.T) {
	var beats atomic.Int32
	h := &Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "sleep 1"},
		Heartbeat: func() { beats.Add(1) }, HeartbeatEvery: 100 * time.Millisecond}
	if run := h.Run(t.Context(), HookEnv{Event: EventHolder}); run.Result != HookOK {
		t.Fatalf("%+v", run)
	}
	if n := beats.Load(); n < 5 {
		t.Errorf("%d heartbeats during a 1s hook, want about 10", n)
	}
}
