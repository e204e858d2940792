package watch

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/table"
)

// value returns the value of the metric name for role (a gauge or a
// counter), -1 when there is none.
func value(t *testing.T, m *Metrics, name, role string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "role" && l.GetValue() == role {
					if s.Gauge != nil {
						return s.Gauge.GetValue()
					}
					return s.Counter.GetValue()
				}
			}
		}
	}
	return -1
}

func newTestWatcher() (*Watcher, *bytes.Buffer) {
	var logs bytes.Buffer
	m := NewMetrics()
	m.Role("db")
	return &Watcher{Role: "db", Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil)).With("role", "db")}, &logs
}

// TestEpochTagReported: an epoch tag that is not an epoch is reported (a
// warning with the allocation id when its value changes, the gauge
// eipclaim_epoch_invalid while it lasts), never read as a wrapped number.
func TestEpochTagReported(t *testing.T) {
	w, logs := newTestWatcher()
	a := claim.Address{AllocationID: "eipalloc-0abc", Tags: map[string]string{claim.TagEpoch: "7"}}
	if n := w.epochOf(a); n != 7 || value(t, w.Metrics, "eipclaim_epoch", "db") != 7 || value(t, w.Metrics, "eipclaim_epoch_invalid", "db") != 0 {
		t.Fatalf("epoch 7: %d, metrics epoch %v invalid %v", n, value(t, w.Metrics, "eipclaim_epoch", "db"), value(t, w.Metrics, "eipclaim_epoch_invalid", "db"))
	}
	for _, bad := range []string{"9223372036854775807", "garbage", "-1"} {
		logs.Reset()
		a.Tags[claim.TagEpoch] = bad
		for range 3 {
			if n := w.epochOf(a); n != 0 {
				t.Errorf("%q read as %d", bad, n)
			}
		}
		if got := strings.Count(logs.String(), "level=WARN"); got != 1 || !strings.Contains(logs.String(), "allocation_id=eipalloc-0abc") || !strings.Contains(logs.String(), "role=db") {
			t.Errorf("%q: %d warnings, want one naming the role and the allocation id:\n%s", bad, got, logs)
		}
		if v := value(t, w.Metrics, "eipclaim_epoch_invalid", "db"); v != 1 {
			t.Errorf("%q: eipclaim_epoch_invalid %v, want 1", bad, v)
		}
		if v := value(t, w.Metrics, "eipclaim_epoch", "db"); v != 7 {
			t.Errorf("%q: eipclaim_epoch %v, want the last valid one, 7", bad, v)
		}
	}
	a.Tags[claim.TagEpoch] = "8"
	if w.epochOf(a); value(t, w.Metrics, "eipclaim_epoch_invalid", "db") != 0 {
		t.Error("eipclaim_epoch_invalid stays 1 once the tag is an epoch again")
	}
}

// TestTableDropWarned: a publication that failed because the role table
// holds a greater epoch is a warning saying so, and is counted.
func TestTableDropWarned(t *testing.T) {
	w, logs := newTestWatcher()
	err := fmt.Errorf("publishing failed: %w", fmt.Errorf("table: %w", &table.StaleError{Role: "db", Epoch: 3, Newer: 9, Holder: "i-new"}))
	w.publicationFailed(err)
	if v := value(t, w.Metrics, "eipclaim_table_writes_dropped_total", "db"); v != 1 {
		t.Errorf("eipclaim_table_writes_dropped_total = %v, want 1", v)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "table_epoch=9") || !strings.Contains(logs.String(), "table_holder=i-new") {
		t.Errorf("no warning naming the table's epoch and holder:\n%s", logs)
	}
	w.publicationFailed(fmt.Errorf("route53: throttled"))
	if v := value(t, w.Metrics, "eipclaim_table_writes_dropped_total", "db"); v != 1 {
		t.Errorf("another failure counted as a dropped write: %v", v)
	}
}

// TestStoppedHolderWarned: a stopped holder left in place is a warning
// (once) and eipclaim_holder_stopped while it lasts.
func TestStoppedHolderWarned(t *testing.T) {
	w, logs := newTestWatcher()
	a := claim.Address{AllocationID: "eipalloc-0abc", Holder: "i-old"}
	for range 3 {
		w.holderState(a, "stopped", "takeover is never")
	}
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 || !strings.Contains(logs.String(), "holder=i-old") {
		t.Errorf("%d warnings, want one naming the holder:\n%s", got, logs)
	}
	if v := value(t, w.Metrics, "eipclaim_holder_stopped", "db"); v != 1 {
		t.Errorf("eipclaim_holder_stopped = %v, want 1", v)
	}
	w.holderState(a, "running", "")
	if v := value(t, w.Metrics, "eipclaim_holder_stopped", "db"); v != 0 {
		t.Errorf("eipclaim_holder_stopped = %v once running, want 0", v)
	}
}
