package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
