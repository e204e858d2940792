package watch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
)

const (
	self  = "i-0000000000000self"
	other = "i-00000000000other"
	alloc = "eipalloc-0123456789abcdef0"
)

// fakeLooker answers the watcher's looks from a script: each
// Addresses call takes the next state (or error), the last one repeats.
// Every holder is healthy.
type fakeLooker struct {
	mu     sync.Mutex
	states []lookAnswer
	reads  int
}

type lookAnswer struct {
	holder string // "" free
	err    error
}

var _ Looker = (*fakeLooker)(nil)

func (f *fakeLooker) Addresses(ctx context.Context, spec *config.Role, withHealth bool) ([]claim.Address, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ans := f.states[min(f.reads, len(f.states)-1)]
	f.reads++
	if ans.err != nil {
		return nil, ans.err
	}
	a := claim.Address{AllocationID: alloc, PublicIP: "203.0.113.10", Tags: map[string]string{claim.TagEpoch: "4"}}
	if ans.holder != "" {
		a.Holder, a.ENI, a.AssociationID, a.PrivateIP = ans.holder, "eni-"+ans.holder, "eipassoc-"+ans.holder, "10.0.1.9"
	}
	return []claim.Address{a}, nil
}

func (f *fakeLooker) Secondary(ctx context.Context, role string, spec *config.Role, withHealth bool) (*claim.SecondaryStatus, error) {
	return nil, errors.New("fakeLooker: no private address")
}

func (f *fakeLooker) Overlay(ctx context.Context, role string, spec *config.Role, tbl claim.RoleTable, withHealth bool) (*claim.OverlayStatus, error) {
	return nil, errors.New("fakeLooker: no overlay address")
}

func (f *fakeLooker) Health(ctx context.Context, holder, privateIP string, hc config.HealthCheck) (*claim.Health, error) {
	return &claim.Health{Instance: holder, State: "running", Status: "ok", Why: "running, status checks ok"}, nil
}

func (f *fakeLooker) Probe(ctx context.Context, ip string, hc config.HealthCheck) (bool, string) {
	return true, "answered"
}

// holderWatcher is a watcher that holds the EIP (its start is done), whose
// reads come from f, with the confirmation's delays shortened.
func holderWatcher(f *fakeLooker, logs *bytes.Buffer) *Watcher {
	return &Watcher{
		Role: "db", Spec: &config.Role{AllocationID: alloc}, InstanceID: self,
		Settings: config.WatchSettings{Interval: time.Second, Fall: 3},
		Engine:   f, Log: slog.New(slog.NewTextHandler(logs, nil)),
		// No step: a holder's look that ran it (repair, reclaim) would
		// panic on the nil Step.
		RepairEvery: 1000,
		state:       StateHolder,
		lossConfirm: []time.Duration{time.Millisecond, time.Millisecond},
	}
}

// TestHolderConfirmsLoss: a holder's look that shows the EIP elsewhere or
// free may be a stale read (EC2's eventual consistency). The holder stands
// down (standby, on_standby) only when the reads that follow confirm the
// loss; one that shows the EIP here keeps it holder. A real loss is still
// followed within the same look. Before the fix: standby on the first
// read, in every case.
func TestHolderConfirmsLoss(t *testing.T) {
	apiDown := errors.New("RequestLimitExceeded")
	for _, tc := range []struct {
		name      string
		answers   []lookAnswer
		wantState string
		wantReads int
		wantLog   string
	}{
		{"stale elsewhere", []lookAnswer{{holder: other}, {holder: self}}, StateHolder, 2, "stale read"},
		{"stale elsewhere twice", []lookAnswer{{holder: other}, {holder: other}, {holder: self}}, StateHolder, 3, "stale read"},
		{"stale free", []lookAnswer{{holder: ""}, {holder: self}}, StateHolder, 2, "stale read"},
		{"unconfirmed: the API does not answer", []lookAnswer{{holder: other}, {err: apiDown}}, StateHolder, 2, "could not confirm"},
		{"real loss", []lookAnswer{{holder: other}}, StateStandby, 3, "no longer holds the EIP"},
		{"held", []lookAnswer{{holder: self}}, StateHolder, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLooker{states: tc.answers}
			var logs bytes.Buffer
			w := holderWatcher(f, &logs)
			w.look(context.Background())
			if w.State() != tc.wantState || f.reads != tc.wantReads {
				t.Errorf("state %q after %d reads, want %q after %d\n%s", w.State(), f.reads, tc.wantState, tc.wantReads, logs.String())
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not say %q:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

// TestHolderConfirmsLossDefaultDelays: the confirmation's reads span at
// least 3s (a mutation shows within 2s in the proofs' stale-read mode),
// and it ends at once when the watcher is stopped.
func TestHolderConfirmsLossDefaultDelays(t *testing.T) {
	var total time.Duration
	for _, d := range lossConfirmDelays {
		total += d
	}
	if total < 3*time.Second || len(lossConfirmDelays) > 2 {
		t.Errorf("lossConfirmDelays %v: want at least 3s in at most 2 reads", lossConfirmDelays)
	}
	f := &fakeLooker{states: []lookAnswer{{holder: other}}}
	var logs bytes.Buffer
	w := holderWatcher(f, &logs)
	w.lossConfirm = nil
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	w.look(ctx)
	if took := time.Since(began); took > time.Second || w.State() != StateHolder {
		t.Errorf("stopped during the confirmation: look took %s, state %q; want at once, still holder", took, w.State())
	}
}
