//go:build unix

package failover

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	run := h.Run(t.Context(), HookEnv{Event: EventHolder, PublicIP: "203.0.113.9", AllocationID: "eipalloc-1", Epoch: 7, PreviousHolder: "i-old", Holder: "i-new", Reason: "holder i-old is stopped"})
	if run == nil || run.Result != HookOK {
		t.Fatalf("on_holder: %+v", run)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EIPCLAIM_EVENT=holder", "EIPCLAIM_ROLE=db", "EIPCLAIM_PUBLIC_IP=203.0.113.9", "EIPCLAIM_ALLOCATION_ID=eipalloc-1",
		"EIPCLAIM_EPOCH=7", "EIPCLAIM_PREVIOUS_HOLDER=i-old", "EIPCLAIM_HOLDER=i-new", "EIPCLAIM_REASON=holder i-old is stopped"} {
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
