package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/table"
)

// tablePublisher writes the role's entry in the role table (the
// repository: key): compare-and-swap on the object's ETag, never over an
// entry with a newer epoch (internal/table).
type tablePublisher struct {
	store *table.Store
	role  string
	spec  *config.Role
	now   func() time.Time

	mu    sync.Mutex
	ahead *tableRead // the read started by Prefetch, for the next Publish
}

// tableRead is a read of the table made ahead: done is closed once snap or
// err is set.
type tableRead struct {
	done chan struct{}
	snap *table.Snapshot
	err  error
}

// prefetch starts reading the table, for Recorded and the next Publish.
func (t *tablePublisher) prefetch(ctx context.Context) {
	r := &tableRead{done: make(chan struct{})}
	t.mu.Lock()
	t.ahead = r
	t.mu.Unlock()
	go func() {
		defer close(r.done)
		r.snap, r.err = t.store.ReadSnapshot(ctx)
	}()
}

// Seed gives the role table's publishers among pubs snap, a read of the
// table made earlier (the off-box controller's observation, once for
// every role of its run), for their next Publish: a keep compares its
// entry on it, and writes, when it must, compare-and-swap on its ETag
// (the table is read again if it changed since). Not for a claim: its
// epoch must be above a read made after the claim's decision (Prefetch).
func Seed(pubs []Publisher, snap *table.Snapshot) {
	if snap == nil {
		return
	}
	for _, p := range pubs {
		if t, ok := unwrap(p).(*tablePublisher); ok {
			r := &tableRead{done: make(chan struct{}), snap: snap.Clone()}
			close(r.done)
			t.mu.Lock()
			t.ahead = r
			t.mu.Unlock()
		}
	}
}

// take returns the read made ahead, once done, and forgets it: nil when
// there is none or it failed.
func (t *tablePublisher) take() *table.Snapshot {
	t.mu.Lock()
	r := t.ahead
	t.ahead = nil
	t.mu.Unlock()
	if r == nil || !r.wait() {
		return nil
	}
	return r.snap
}

// aheadWait bounds how long a claim waits for the table's read made ahead
// (a slow or failing S3 must not hold up a move's tags, publications and
// hook): past it, the epoch is the tag's and Publish reads the table
// again (its compare-and-swap protects the write all the same). A
// variable for tests.
var aheadWait = 5 * time.Second

// wait waits for the read made ahead, at most aheadWait; it reports
// whether the read is done.
func (r *tableRead) wait() bool {
	t := time.NewTimer(aheadWait)
	defer t.Stop()
	select {
	case <-r.done:
		return true
	case <-t.C:
		return false
	}
}

// recorded waits for the read made ahead and returns the role's record
// (epoch.Recorded), nil when there is no entry, no read, or the read
// failed (logged: the epoch is then the tag's, and Publish reports the
// table's failure).
func (t *tablePublisher) recorded(log *slog.Logger) *epoch.Recorded {
	t.mu.Lock()
	r := t.ahead
	t.mu.Unlock()
	if r == nil {
		return nil
	}
	if !r.wait() {
		log.Warn("the role table's read is slow: the claim's epoch is above the EIP's tag only", "table", t.store.URL(), "waited", aheadWait)
		return nil
	}
	if r.err != nil {
		log.Warn("could not read the role table's epoch for the role: the claim's epoch is above the EIP's tag only", "table", t.store.URL(), "error", r.err)
		return nil
	}
	e, ok := r.snap.Doc.Roles[t.role]
	if !ok {
		return nil
	}
	if err := epoch.Check(e.Epoch); err != nil {
		log.Warn("the role table's entry for the role has no valid epoch: disregarded, the entry will be replaced", "table", t.store.URL(), "error", err)
		return nil
	}
	return &epoch.Recorded{Epoch: e.Epoch, Holder: e.Holder}
}

func (t *tablePublisher) Kind() string { return "table" }
func (t *tablePublisher) Name() string { return t.store.URL() }

// entry is the role's entry for f.
func (t *tablePublisher) entry(f placement.Placement) table.Entry {
	e := table.Entry{Name: t.role, PublicDNSName: f.PublicDNSName, Holder: f.InstanceID, Epoch: f.Epoch, UpdatedAt: t.now().UTC()}
	if a := f.Private(); a.IsValid() {
		e.PrivateIP = a.String() // the private-kind address (secondary or overlay) when the role has one
	}
	if f.PublicIP.IsValid() {
		e.PublicIP = f.PublicIP.String()
	}
	e.Names = t.spec.HostNames()
	return e
}

func describeEntry(e table.Entry) string {
	return fmt.Sprintf("private %s, public %s, epoch %d", dashIfEmpty(e.PrivateIP), dashIfEmpty(e.PublicIP), e.Epoch)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (t *tablePublisher) Publish(ctx context.Context, f placement.Placement) (Result, error) {
	e := t.entry(f)
	res := Result{Value: describeEntry(e)}
	wrote, err := t.store.UpdateFrom(ctx, t.take(), func(d *table.Document) (bool, error) { return d.Set(e) })
	var stale *table.StaleError
	if errors.As(err, &stale) {
		// A claim with a greater epoch was recorded after this one read
		// the table: this instance may have been deposed since. Not a
		// silent success: the table does not point here (exit 5), and a
		// rerun on the holder records it above (its epoch goes above the
		// table's).
		res.Detail = fmt.Sprintf("not written: the table holds epoch %d (holder %s)", stale.Newer, stale.Holder)
		return res, fmt.Errorf("entry not written: %w: a claim with a greater epoch was recorded meanwhile; see `eipclaim status`, and if this instance still holds the EIP rerun eipclaim here, which records it above", stale)
	}
	res.Changed = wrote
	return res, err
}

func (t *tablePublisher) Check(ctx context.Context) (string, error) {
	d, err := t.store.Read(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("table %s readable (version %d, %d roles); writing it needs s3:PutObject on the object, which check cannot prove without writing", t.store.URL(), table.Version, len(d.Roles)), nil
}

func (t *tablePublisher) Current(ctx context.Context) (string, error) {
	d, err := t.store.Read(ctx)
	if err != nil {
		return "", err
	}
	e, ok := d.Roles[t.role]
	if err := d.Invalid(t.role); err != nil {
		return "an entry that is not valid, which clients leave out (" + err.Error() + "); the next claim rewrites it", nil
	}
	if !ok {
		return "no entry", nil
	}
	return e.Describe(), nil
}
