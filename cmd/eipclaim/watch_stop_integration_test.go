//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWatchStopDuringTakeover: SIGTERM, or SIGHUP, while a watcher's
// takeover is in flight (its on_holder hook running): the watcher lets the
// promote finish, with the EIP published, then exits 0 (issue 17 item 9:
// the hook was cut off, and SIGHUP killed the watcher at once, exit 129).
func TestWatchStopDuringTakeover(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			w := newWatchWorld(t, watchFast+`    hooks:
      on_holder: ["/bin/sh", "-c", "touch $HOOK_DIR/started; sleep 2; echo $EIPCLAIM_EPOCH > $HOOK_DIR/promoted"]
      timeout: 20s
`)
			svc := testenv.StartService(t)
			b := w.instance(svc)
			wb := w.start(b) // the EIP is free: b claims it
			started := filepath.Join(wb.hookDir, "started")
			waitFor(t, 30*time.Second, "the on_holder hook runs", func() bool {
				_, err := os.Stat(started)
				return err == nil
			})
			began := time.Now()
			wb.cmd.Process.Signal(sig)
			select {
			case <-wb.done:
			case <-time.After(15 * time.Second):
				t.Fatalf("no exit within 15s of %s\n%s", sig, wb.stderr)
			}
			took := time.Since(began)
			if wb.err != nil {
				t.Fatalf("%v after %s, want exit 0\n%s", wb.err, sig, wb.stderr)
			}
			if got := strings.TrimSpace(readFile(t, filepath.Join(wb.hookDir, "promoted"))); got != "1" {
				t.Errorf("the promote was cut off by %s (promoted %q, exit after %s)\n%s", sig, got, took, wb.stderr)
			}
			if took < time.Second {
				t.Errorf("exit %s after %s: the hook was not waited for", took, sig)
			}
			if got := w.holderENI(); got != b.ENI {
				t.Errorf("holder %s, want %s", got, b.ENI)
			}
			if got, want := w.cname(), "ec2-"+dashed(w.eip.PublicIP)+".compute-1.amazonaws.com."; !strings.HasPrefix(got, want+" ") {
				t.Errorf("CNAME %q, want %q", got, want)
			}
		})
	}
}
