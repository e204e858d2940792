//go:build unix

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// --metrics-listen :0 serves the Prometheus text format on loopback, on
// the port the log names: the watcher's state, the epoch, its looks, and
// every AWS request by operation and outcome (a throttled attempt counted
// under its error code). --metrics-file is replaced atomically after every
// look: each write is a new file renamed over the old one, so that a
// reader never sees a partial file.
func TestWatchMetricsListenAndFile(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	w.truthEvery = "1s" // every look a truth check: it reads EC2
	// The third DescribeAddresses is throttled once (the SDK retries it).
	w.ec2 = func(uint64) faultproxy.Options {
		return faultproxy.Options{Plan: func(action string, n int) faultproxy.Kind {
			if action == "DescribeAddresses" && n == 3 {
				return faultproxy.Throttle
			}
			return faultproxy.None
		}}
	}
	svcA := testenv.StartService(t)
	a := w.instance(svcA)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa := w.start(a, "--metrics-listen", ":0")

	var metricsURL string
	waitFor(t, 20*time.Second, "the log names the metrics URL", func() bool {
		for l := range strings.Lines(wa.stderr.String()) {
			var m struct{ Msg, URL string }
			if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "serving metrics" {
				metricsURL = m.URL
				return true
			}
		}
		return false
	})
	u, err := url.Parse(metricsURL)
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Path != "/metrics" {
		t.Fatalf("serving metrics at %q: want http://127.0.0.1:PORT/metrics with the port chosen (loopback by default)", metricsURL)
	}
	get := func() string {
		t.Helper()
		resp, err := http.Get(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %v", metricsURL, resp.Status, err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want the text format", ct)
		}
		return string(b)
	}
	var body string
	waitFor(t, 20*time.Second, "the served metrics count the throttled look", func() bool {
		body = get()
		return strings.Contains(body, `eipclaim_aws_requests_total{operation="ec2:DescribeAddresses",outcome="RequestLimitExceeded"} 1`+"\n") &&
			series(body, `eipclaim_looks_total{result="ok",role="db"}`) >= 3
	})
	for _, want := range []string{
		`eipclaim_watch_state{role="db",state="holder"} 1`,
		`eipclaim_watch_state{role="db",state="standby"} 0`,
		`eipclaim_epoch{role="db"} 1`,
		`eipclaim_takeovers_total{role="db"} 0`,
		`eipclaim_losses_total{role="db"} 0`,
		`eipclaim_hook_runs_total{event="holder",result="ok",role="db"} 1`,
		"# TYPE eipclaim_aws_requests_total counter",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("GET /metrics has no line %s:\n%s", want, body)
		}
	}
	// The requests by operation match what the proxy saw, attempt for attempt.
	counts := wa.ec2.Counts()
	if got, max := series(body, `eipclaim_aws_requests_total{operation="ec2:DescribeAddresses",outcome="ok"}`), counts.Requests("DescribeAddresses"); got < 3 || got > float64(max) {
		t.Errorf("ec2:DescribeAddresses ok %v, want at least 3 and at most the %d the proxy saw", got, max)
	}
	if series(body, `eipclaim_aws_requests_total{operation="ec2:DescribeInstances",outcome="ok"}`) < 1 {
		t.Errorf("no ec2:DescribeInstances counted:\n%s", body)
	}
	if last := series(body, `eipclaim_last_successful_look_timestamp_seconds{role="db"}`); time.Since(time.Unix(int64(last), 0)) > 10*time.Second {
		t.Errorf("last successful look at %v, not within the last 10s", last)
	}

	// The file: replaced (a new inode) after every look, never partial.
	ino := func() uint64 {
		fi, err := os.Stat(wa.metrics)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	inodes := map[uint64]bool{ino(): true}
	reads := 0
	for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		b, err := os.ReadFile(wa.metrics)
		if err != nil {
			t.Fatalf("reading the metrics file while the watcher writes it: %v", err)
		}
		reads++
		s := string(b)
		if !strings.HasSuffix(s, "\n") || !strings.Contains(s, `eipclaim_watch_state{role="db",state="holder"} 1`) || !strings.Contains(s, "eipclaim_looks_total") {
			t.Fatalf("read %d: a partial metrics file:\n%s", reads, s)
		}
		inodes[ino()] = true
	}
	if len(inodes) < 3 {
		t.Errorf("the metrics file had %d inodes over 3.5s of looks at 1s: not replaced by a rename at every look", len(inodes))
	}
	if entries, _ := os.ReadDir(wa.hookDir); len(entries) > 0 {
		for _, e := range entries {
			if e.Name() != "metrics.prom" && !strings.HasPrefix(e.Name(), "holder.") {
				t.Errorf("left behind in the metrics file's directory: %s", e.Name())
			}
		}
	}
	t.Logf("GET %s: %d series lines; the file read %d times whole, %d inodes", metricsURL, strings.Count(body, "\neipclaim_"), reads, len(inodes))
	wa.stopTerm(t, 5*time.Second)
	if _, err := http.Get(metricsURL); err == nil {
		t.Errorf("%s still answers after the watcher exited", metricsURL)
	}
}

// series is the value of the series line (name{labels}) in a text-format
// body, or -1 when absent.
func series(body, name string) float64 {
	for l := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
