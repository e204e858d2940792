//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestLocalFilesNeverWait: every file the product reads, given as a named
// pipe with no writer (or missing), is refused at once with exit 2 and the
// key or flag that named it, before any change: a dyndns password_file, a
// tsig_secret_file, --config FILE, hosts --from FILE (issue 17: the open
// waited for a writer past --timeout and past SIGTERM, 650 s until
// something wrote; a missing password_file was retried to the deadline
// after the EIP had moved).
func TestLocalFilesNeverWait(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.secret")
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	role := "roles:\n  db:\n    allocation_id: " + alloc + "\n"
	dyndns := func(pw string) string {
		return role + "    dns:\n      dyndns: {url: 'http://127.0.0.1:1/nic/update', hostname: db.example-ddns.net, username: fleet, password_file: " + pw + "}\n"
	}
	tsig := func(key string) string {
		return role + "    dns:\n      rfc2136: {server: '127.0.0.1:1', zone: example.internal., name: db.example.internal., tsig_name: eipclaim., tsig_secret_file: " + key + "}\n"
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"password_file fifo", []string{"claim", "--role", "db", "--config", write("a.yaml", dyndns(fifo))}, "dyndns password_file " + fifo + ": a named pipe, not a regular file"},
		{"password_file missing", []string{"claim", "--role", "db", "--config", write("b.yaml", dyndns(missing))}, "dyndns password_file " + missing + ": no such file"},
		{"password_file fifo, watch", []string{"watch", "--role", "db", "--config", write("c.yaml", dyndns(fifo))}, "dyndns password_file " + fifo + ": a named pipe"},
		{"tsig_secret_file fifo", []string{"claim", "--role", "db", "--config", write("d.yaml", tsig(fifo))}, "tsig_secret_file " + fifo + ": a named pipe, not a regular file"},
		{"--config fifo", []string{"claim", "--role", "db", "--config", fifo}, "--config " + fifo + ": a named pipe, not a regular file"},
		{"hosts --from fifo", []string{"hosts", "--from", fifo, "--out", filepath.Join(dir, "hosts"), "--dry-run"}, "--from " + fifo + ": a named pipe, not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				stderr string
				code   int
			}
			done := make(chan result, 1)
			began := time.Now()
			go func() {
				_, errs, code := eipclaim(t, append(tc.args, "--timeout", "20s")...)
				done <- result{errs, code}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("still running after 10s")
				for range 3 { // release the open, then the read
					if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
						f.Close()
					}
				}
				select {
				case r = <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("still running after the pipe was opened")
				}
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("took %s, want at once", took)
			}
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 saying %q:\n%s", r.code, tc.want, r.stderr)
			}
			if a := w.address(alloc); aws.ToString(a.AssociationId) != "" {
				t.Fatalf("the EIP was associated (%s) although the command was refused", aws.ToString(a.AssociationId))
			}
		})
	}
}
