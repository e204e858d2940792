//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostsOutNotRegular: --out naming a named pipe (directly or through a
// link), a device or a directory is a usage error, found before anything is
// opened: opening a named pipe for reading waits for a writer, past
// --timeout and SIGTERM.
func TestHostsOutNotRegular(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	w.associate(alloc, w.instance)
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	if err := os.WriteFile(conf, []byte("roles:\n  db:\n    allocation_id: "+alloc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		out  string
		args []string
		want string
	}{
		{fifo, nil, "--out " + fifo + " is a named pipe, not a regular file: point --out at the hosts file"},
		{fifo, []string{"--dry-run"}, "--out " + fifo + " is a named pipe, not a regular file: point --out at the hosts file"},
		{link, nil, "--out " + link + " (a link to " + fifo + ") is a named pipe, not a regular file: point --out at the hosts file"},
		{"/dev/null", nil, "--out /dev/null is a character device, not a regular file: point --out at the hosts file"},
		{dir, nil, "--out " + dir + " is a directory, not a regular file: point --out at the hosts file"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{tc.out}, tc.args...), " "), func(t *testing.T) {
			type result struct {
				stdout, stderr string
				code           int
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				args := append([]string{"hosts", "--config", conf, "--out", tc.out, "--timeout", "10s"}, tc.args...)
				out, errs, code := eipclaim(t, args...)
				done <- result{out, errs, code}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("hosts --out %s still running after 30s, past its 10s --timeout", tc.out)
				f, err := os.OpenFile(fifo, os.O_RDWR, 0) // let the blocked open return
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				r = <-done
			}
			if r.code != 2 {
				t.Errorf("exit %d after %v, want 2\nstdout: %s\nstderr: %s", r.code, time.Since(start), r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, r.stderr)
			}
			if info, err := os.Lstat(fifo); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("the named pipe was replaced: %v, %v", info, err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("files left behind: %v", entries)
	}
}
