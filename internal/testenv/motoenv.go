package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// StartMotoEnv starts a moto server for t alone, as [StartMoto] does, with
// env (KEY=VALUE) added to its environment; it is stopped when t ends. For
// example INITIAL_NO_AUTH_ACTION_COUNT=N lets the first N requests through
// without authentication and then enforces IAM: every later request must be
// signed with the keys of an IAM user (or role) of this server whose
// policies allow the action.
func StartMotoEnv(t testing.TB, env ...string) *Moto {
	t.Helper()
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			t.Fatalf("testenv: StartMotoEnv: %q is not KEY=VALUE", kv)
		}
	}
	began := time.Now()
	dir, err := os.MkdirTemp("", "testenv-moto-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p, port, err := motoLaunch(dir, env...).run()
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("testenv: %v", err)
	}
	go func() { <-p.done; os.RemoveAll(dir) }()
	cleanupProcess(t, p)
	m, err := newMoto(fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(m.gate.close)
	for _, kv := range env {
		if strings.HasPrefix(kv, "INITIAL_NO_AUTH_ACTION_COUNT=") {
			// moto enforces IAM itself: the keys of its IAM users are
			// its to judge, not the gate's.
			m.gate.motoJudgesUnknownKeys = true
		}
	}
	m.watchDenials(t)
	t.Logf("testenv: moto_server ready on 127.0.0.1:%d in %s (with %s), behind the IAM gate on %s", port, since(began), strings.Join(env, " "), m.Endpoint)
	return m
}
