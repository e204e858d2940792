package table_test

import (
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/table"
)

// ReadIfChanged against moto's S3: a read
// with the ETag of the last answers "not changed" (304, no body) until a
// writer changes the table, then returns the new entry and ETag.
func TestReadIfChangedMoto(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	st, err := table.NewStore(api, "s3://"+bucket+"/roles.json", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Missing, to a caller without s3:ListBucket: 403, an error (the
	// watcher counts it for nothing).
	if snap, changed, err := st.ReadIfChanged(ctx, ""); err == nil {
		t.Fatalf("missing table: %+v changed=%v, want AccessDenied", snap, changed)
	}
	write := func(holder string, n int64) {
		t.Helper()
		if _, err := st.Update(ctx, func(d *table.Document) (bool, error) {
			return d.Set(table.Entry{Name: "db", PrivateIP: "10.200.0.5", Holder: holder, Epoch: n, UpdatedAt: time.Now().UTC()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	write("i-aaaaaaaaaaaaaaaa1", 1)
	snap, changed, err := st.ReadIfChanged(ctx, "")
	if err != nil || !changed || snap.ETag == "" || snap.Doc.Roles["db"].Holder != "i-aaaaaaaaaaaaaaaa1" {
		t.Fatalf("first read: %+v changed=%v err=%v", snap, changed, err)
	}
	etag := snap.ETag
	for range 2 {
		snap, changed, err = st.ReadIfChanged(ctx, etag)
		if err != nil || changed || snap != nil {
			t.Fatalf("unchanged table: %+v changed=%v err=%v, want not changed (304)", snap, changed, err)
		}
	}
	write("i-bbbbbbbbbbbbbbbb2", 2)
	snap, changed, err = st.ReadIfChanged(ctx, etag)
	if err != nil || !changed || snap.ETag == etag {
		t.Fatalf("changed table: %+v changed=%v err=%v", snap, changed, err)
	}
	if e := snap.Doc.Roles["db"]; e.Holder != "i-bbbbbbbbbbbbbbbb2" || e.Epoch != 2 {
		t.Errorf("entry after the change = %+v, want i-bbbbbbbbbbbbbbbb2 at epoch 2", e)
	}
}
