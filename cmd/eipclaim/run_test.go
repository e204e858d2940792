package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"version"}, 0, "eipclaim dev (go"},
		{[]string{"help"}, 0, "Commands (claim is the default)"},
		{[]string{"frobnicate"}, exitcode.Usage, ""},
		{[]string{"claim", "--no-such-flag"}, exitcode.Usage, ""},
		{[]string{"claim", "extra"}, exitcode.Usage, ""},
		{[]string{"status", "--log-format", "xml"}, exitcode.Usage, ""},
		{[]string{"--log-level", "loud"}, exitcode.Usage, ""},
		{[]string{"claim", "-h"}, 0, ""},
		{[]string{"version", "extra"}, exitcode.Usage, ""},
		{[]string{"version", "--json"}, exitcode.Usage, ""},
		{[]string{"version", "-h"}, 0, ""},
		{[]string{"help", "extra"}, exitcode.Usage, ""},
		{[]string{"help", "status", "extra"}, exitcode.Usage, ""},
		{[]string{"help", "status"}, 0, ""},
		{[]string{"help", "version"}, 0, ""},
		{[]string{"help", "-h"}, 0, "Commands (claim is the default)"},
		{[]string{"status", "extra"}, exitcode.Usage, ""},
		{[]string{"check", "--json", "extra"}, exitcode.Usage, ""},
		{[]string{"release", "extra"}, exitcode.Usage, ""},
		{[]string{"hosts", "extra"}, exitcode.Usage, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errb)
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit %d, want %d (err %v)", got, tc.wantCode, err)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.wantOut)
			}
			if tc.wantCode == exitcode.Usage && out.Len() != 0 {
				t.Errorf("a usage error printed to stdout: %q", out.String())
			}
		})
	}
}

func TestLogFileGetsTheError(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(conf, []byte("roles:\n  db:\n    public_ip: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "eipclaim.log")
	t.Setenv("AWS_REGION", "us-east-1")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"hosts", "--config", conf, "--log-file", logPath}, func(string) string { return "" }, &out, &errb)
	if exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("exit %d, want 2: %v", exitcode.Of(err), err)
	}
	b, rerr := os.ReadFile(logPath)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(b), `roles.db.public_ip \"nope\" (line 3)`) || !strings.Contains(string(b), "exit_code=2") {
		t.Errorf("the log file lacks the error:\n%s", b)
	}
	if errb.Len() != 0 {
		t.Errorf("with --log-file, stderr got %q", errb.String())
	}
}

func TestJournaldLogsWithoutTime(t *testing.T) {
	for _, tc := range []struct {
		journal  string
		wantTime bool
	}{{"", true}, {"8:1234", false}} {
		c := common{logFormat: "text", logLevel: "info"}
		var b bytes.Buffer
		log, closeLog, err := c.logger(&b, func(k string) string {
			if k == "JOURNAL_STREAM" {
				return tc.journal
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello")
		closeLog()
		if got := strings.Contains(b.String(), "time="); got != tc.wantTime {
			t.Errorf("JOURNAL_STREAM=%q: line %q has time=%v, want %v", tc.journal, b.String(), got, tc.wantTime)
		}
	}
}

// TestHelpCommand: "help COMMAND" shows the command's flags, as
// "COMMAND -h" does.
func TestHelpCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"help", "hosts"}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("help hosts: %v", err)
	}
	if !strings.Contains(errb.String(), "-out") {
		t.Errorf("help hosts does not show the --out flag:\nstdout: %s\nstderr: %s", out.String(), errb.String())
	}
}

// TestUsageErrorsNameTheArgument: extra arguments are refused with a message
// naming them.
func TestUsageErrorsNameTheArgument(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"version", "extra"}, `unexpected argument "extra": eipclaim version takes no arguments`},
		{[]string{"help", "extra"}, `unknown command "extra"`},
		{[]string{"help", "status", "extra"}, `unexpected argument "extra": eipclaim help takes one command at most`},
	} {
		err := run(context.Background(), tc.args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestLogFileFull: when writing the log file fails (here /dev/full: no space
// left on device), stderr gets one line saying so, and the log lines go to
// stderr from then on instead of being lost.
func TestLogFileFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "eipclaim.yaml")
	if err := os.WriteFile(conf, []byte("roles:\n  db:\n    public_ip: 203.0.113.10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	// --out a directory: two log lines (the configuration loaded, then the
	// usage error), and no AWS call.
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"hosts", "--config", conf, "--out", dir, "--log-file", "/dev/full"}, func(string) string { return "" }, &out, &errb)
	if exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("exit %d, want 2: %v", exitcode.Of(err), err)
	}
	stderr := errb.String()
	const report = "eipclaim: writing the log file /dev/full failed: no space left on device; logs go to stderr from now on\n"
	if n := strings.Count(stderr, "writing the log file"); n != 1 || !strings.HasPrefix(stderr, report) {
		t.Errorf("stderr reports the failure %d times, want once, first:\n%s", n, stderr)
	}
	for _, want := range []string{`msg="configuration loaded"`, "is a directory, not a regular file", "exit_code=2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks the log lines that could not be written (%s):\n%s", want, stderr)
		}
	}
}

// TestFallbackWriter: every line after the first failure goes to stderr,
// and the failure is reported once.
func TestFallbackWriter(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "log"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // writes now fail: file already closed
	var errb bytes.Buffer
	w := &fallbackWriter{w: f, path: f.Name(), stderr: &errb}
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", line, n, err, len(line))
		}
	}
	w.closed(errors.New("input/output error")) // reported already: not again
	want := "eipclaim: writing the log file " + f.Name() + " failed: file already closed; logs go to stderr from now on\none\ntwo\nthree\n"
	if errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}

	// A failure that shows only at close (NFS, for one) is reported too.
	errb.Reset()
	w = &fallbackWriter{w: io.Discard, path: "/var/log/eipclaim.log", stderr: &errb}
	w.closed(nil)
	if errb.Len() != 0 {
		t.Errorf("a clean close reported %q", errb.String())
	}
	w.closed(&fs.PathError{Op: "close", Path: "/var/log/eipclaim.log", Err: syscall.EIO})
	if want := "eipclaim: closing the log file /var/log/eipclaim.log failed: input/output error; its last lines may be lost\n"; errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}
}

// TestWatchMetricsFileRefused: --metrics-file in a directory that does not
// exist is refused at start, exit 2, before anything is read (issue 17: a
// warning at every look, forever).
func TestWatchMetricsFileRefused(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "textfile_collector", "eipclaim.prom")
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	err := run(ctx, []string{"watch", "--metrics-file", missing, "--timeout", "20s"}, func(string) string { return "" }, &out, &errb)
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(fmt.Sprint(err), "--metrics-file "+missing+": directory "+filepath.Dir(missing)+" does not exist") {
		t.Fatalf("exit %d: %v, want 2 naming the missing directory", exitcode.Of(err), err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("took %s, want at once", took)
	}
}
