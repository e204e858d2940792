package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eipclaim/eipclaim/internal/config"
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
}

func (t *tablePublisher) Kind() string { return "table" }
func (t *tablePublisher) Name() string { return t.store.URL() }

// entry is the role's entry for f.
func (t *tablePublisher) entry(f Facts) table.Entry {
	e := table.Entry{Name: t.role, PublicDNSName: f.PublicDNSName, Holder: f.InstanceID, Epoch: f.Epoch, UpdatedAt: t.now().UTC()}
	if f.PrivateIP.IsValid() {
		e.PrivateIP = f.PrivateIP.String()
	}
	if f.PublicIP.IsValid() {
		e.PublicIP = f.PublicIP.String()
	}
	e.Names = t.spec.HostNames(t.role)
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

func (t *tablePublisher) Publish(ctx context.Context, f Facts) (Result, error) {
	e := t.entry(f)
	res := Result{Value: describeEntry(e)}
	wrote, err := t.store.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(e) })
	var stale *table.StaleError
	if errors.As(err, &stale) {
		// A newer claim has been recorded since: its entry is the truth.
		res.Detail = fmt.Sprintf("not written: the table holds epoch %d (holder %s)", stale.Newer, stale.Holder)
		return res, nil
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
