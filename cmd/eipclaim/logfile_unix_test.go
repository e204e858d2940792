//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestLogFileNamedPipe: --log-file naming a named pipe that no process
// reads is a usage error at once; opening it for writing would wait for a
// reader, past --timeout and SIGTERM. With a reader, the logs go to it.
func TestLogFileNamedPipe(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(conf, []byte("roles:\n  db:\n    public_ip: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	hosts := func() (string, error) {
		var errb bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(context.Background(), []string{"hosts", "--config", conf, "--log-file", fifo, "--timeout", "5s"}, func(string) string { return "" }, io.Discard, &errb)
		}()
		select {
		case err := <-done:
			return errb.String(), err
		case <-time.After(20 * time.Second):
			t.Errorf("still running after 20s, past its 5s --timeout: it waits for a reader of %s", fifo)
			r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0) // let the blocked open return
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = <-done
			return errb.String(), err
		}
	}

	stderr, err := hosts()
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("exit %d, want 2: %v", exitcode.Of(err), err)
	}
	if want := "--log-file " + fifo + " is a named pipe that no process reads: start its reader first, or point --log-file at a file"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing: the error is main's to print", stderr)
	}

	// With a reader, the log lines reach it.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stderr, err = hosts()
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "roles.db.public_ip") {
		t.Errorf("with a reader: exit %d, %v; want 2 and the configuration error", exitcode.Of(err), err)
	}
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if !strings.Contains(string(b), "exit_code=2") {
		t.Errorf("the reader got %q, want the failure logged; stderr %q", b, stderr)
	}
}
