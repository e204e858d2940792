package table_test

// The role table against moto's S3, which honours If-Match and
// If-None-Match on PutObject: concurrent writers lose no entry, and an
// older epoch never replaces a newer one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/table"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newBucket returns a freshly reset moto's S3 client for the table's
// writers (an instance's: the IAM gate judges it with docs/iam-policy.json,
// whose table object is BUCKET/roles.json), and a new bucket. The test's
// own reads and writes go through admin(t).
func newBucket(t *testing.T) (*s3.Client, string) {
	t.Helper()
	moto := testenv.SharedMoto(t)
	bucket := "fleet-" + strings.ToLower(strings.ReplaceAll(t.Name(), "_", "-"))
	moto.SetPolicyValues(testenv.PolicyValues{TableObject: bucket + "/roles.json"})
	admins[t.Name()] = s3Client(moto.Config())
	if _, err := admin(t).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s3Client(moto.ConfigAs(testenv.CallerInstance)), bucket
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
}

// admins are the tests' own S3 clients (not judged by the gate), by test.
var admins = map[string]*s3.Client{}

func admin(t *testing.T) *s3.Client { return admins[t.Name()] }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestConcurrentWritersLoseNoEntry: many writers of different roles at
// once, all starting with no table (If-None-Match: * races) and then on
// the same object (If-Match races), and several claims of one role with
// different epochs: every role's entry is there at the end, and the role
// written by many holds the entry of the greatest epoch.
func TestConcurrentWritersLoseNoEntry(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	const roles, claims = 24, 8
	var wg sync.WaitGroup
	errs := make(chan error, roles+claims)
	for i := range roles {
		wg.Go(func() {
			st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
			e := table.Entry{Name: fmt.Sprintf("role%d", i), PrivateIP: fmt.Sprintf("10.0.0.%d", i+1), Holder: fmt.Sprintf("i-%d", i), Epoch: 1, UpdatedAt: time.Now().UTC()}
			if _, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(e) }); err != nil {
				errs <- fmt.Errorf("role%d: %w", i, err)
			}
		})
	}
	for epoch := 1; epoch <= claims; epoch++ {
		wg.Go(func() {
			st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
			e := table.Entry{Name: "db", PrivateIP: fmt.Sprintf("10.1.0.%d", epoch), Holder: fmt.Sprintf("i-db%d", epoch), Epoch: int64(epoch), UpdatedAt: time.Now().UTC()}
			_, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(e) })
			var stale *table.StaleError
			if err != nil && !errors.As(err, &stale) {
				errs <- fmt.Errorf("db epoch %d: %w", epoch, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d, err := (&table.Store{API: api, Bucket: bucket, Key: "roles.json"}).Read(ctx)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	for i := range roles {
		name := fmt.Sprintf("role%d", i)
		if e, ok := d.Roles[name]; !ok || e.PrivateIP != fmt.Sprintf("10.0.0.%d", i+1) {
			t.Errorf("entry of %s lost or wrong: %+v", name, e)
		}
	}
	if e := d.Roles["db"]; e.Epoch != claims || e.Holder != fmt.Sprintf("i-db%d", claims) {
		t.Errorf("db entry = %+v, want epoch %d (the newest claim)", e, claims)
	}
	if len(d.Roles) != roles+1 {
		t.Errorf("%d entries, want %d", len(d.Roles), roles+1)
	}
}

// TestOlderEpochNeverReplacesNewer: a late write of an older claim leaves
// the stored entry as it is, and writes nothing.
func TestOlderEpochNeverReplacesNewer(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
	newer := table.Entry{Name: "db", PrivateIP: "10.0.0.7", Holder: "i-new", Epoch: 7, UpdatedAt: time.Now().UTC()}
	if wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(newer) }); !wrote || err != nil {
		t.Fatalf("write epoch 7: wrote=%v err=%v", wrote, err)
	}
	before := etag(t, admin(t), bucket)
	older := table.Entry{Name: "db", PrivateIP: "10.0.0.6", Holder: "i-old", Epoch: 6, UpdatedAt: time.Now().UTC()}
	wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(older) })
	var stale *table.StaleError
	if wrote || !errors.As(err, &stale) {
		t.Fatalf("write epoch 6: wrote=%v err=%v, want a StaleError and no write", wrote, err)
	}
	if after := etag(t, admin(t), bucket); after != before {
		t.Errorf("the object was rewritten (ETag %s -> %s)", before, after)
	}
	d, _ := st.Read(ctx)
	if d.Roles["db"].Holder != "i-new" {
		t.Errorf("entry = %+v, want the epoch-7 holder's", d.Roles["db"])
	}
	// The same entry again writes nothing either.
	if wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(newer) }); wrote || err != nil {
		t.Errorf("the same entry again: wrote=%v err=%v, want no write", wrote, err)
	}
}

// TestCorruptTableIsNeverOverwritten: a writer that finds a table it
// cannot read refuses (exit 2) rather than replace the other roles' entries.
func TestCorruptTableIsNeverOverwritten(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	corrupt := `{"version": 1, "roles": {"web": {"name": "web", "private_ip": "10.0.0.1"`
	if _, err := admin(t).PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("roles.json"), Body: strings.NewReader(corrupt)}); err != nil {
		t.Fatal(err)
	}
	st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
	_, err := st.Update(ctx, func(d *table.Document) (bool, error) {
		return d.Set(table.Entry{Name: "db", PrivateIP: "10.0.0.2", Epoch: 1})
	})
	if err == nil || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "cut short") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("Update on a corrupt table: %v (exit %d), want exit 2 saying it is cut short and nothing was written", err, exitcode.Of(err))
	}
	out, err := admin(t).GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("roles.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, err := io.ReadAll(out.Body); err != nil || string(b) != corrupt {
		t.Errorf("the corrupt table changed: %q (%v)", b, err)
	}
}

// TestBadEntryStopsNoWriter: a table holding an entry whose epoch is not
// an epoch (the negative one that eipclaim up to 0.x wrote for a tag of
// 9223372036854775807) stops no writer: the writer of another role writes
// its entry and keeps the bad one as it is; the bad role's own writer
// replaces it.
func TestBadEntryStopsNoWriter(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	bad := `{"version": 1, "roles": {"old": {"name": "old", "private_ip": "10.0.0.9", "holder": "i-old", "epoch": -9223372036854775808, "updated_at": "2025-01-02T03:04:05Z"}}}`
	if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("roles.json"), Body: strings.NewReader(bad)}); err != nil {
		t.Fatal(err)
	}
	st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
	if wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) {
		return d.Set(table.Entry{Name: "db", PrivateIP: "10.0.0.2", Epoch: 1})
	}); !wrote || err != nil {
		t.Fatalf("another role's writer: wrote=%v err=%v, want written", wrote, err)
	}
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("roles.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	var stored table.Document
	if err := json.NewDecoder(out.Body).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if stored.Roles["db"].PrivateIP != "10.0.0.2" || stored.Roles["old"].Epoch != -9223372036854775808 {
		t.Errorf("after db's write: %+v, want db written and old kept as it was", stored.Roles)
	}
	if wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) {
		return d.Set(table.Entry{Name: "old", PrivateIP: "10.0.0.3", Epoch: 1})
	}); !wrote || err != nil {
		t.Fatalf("the bad role's writer: wrote=%v err=%v, want its entry replaced", wrote, err)
	}
	d, err := st.Read(ctx)
	if err != nil || d.Roles["old"].Epoch != 1 || d.Roles["db"].Epoch != 1 {
		t.Errorf("after old's write: %v, %v; want a valid table", d, err)
	}
}

// TestFirstWriteWithoutListBucket: with the shipped policy (no
// s3:ListBucket), S3 answers the first writer's read of the missing table
// 403 AccessDenied, not 404: the writer creates the table (If-None-Match:
// *) all the same. (TestWriteOnlyCallerIsDenied: a caller that may write
// the table but not read it.)
func TestFirstWriteWithoutListBucket(t *testing.T) {
	api, bucket := newBucket(t)
	ctx := ctxFor(t)
	st := &table.Store{API: api, Bucket: bucket, Key: "roles.json"}
	e := table.Entry{Name: "db", PrivateIP: "10.0.0.5", Holder: "i-1", Epoch: 1, UpdatedAt: time.Now().UTC()}
	// The gate answers as S3 does: the read of the missing table is 403.
	if _, _, err := st.Get(ctx); exitcode.Of(err) != exitcode.Denied {
		t.Fatalf("Get of the missing table: %v (exit %d), want AccessDenied (exit 3) as S3 answers without s3:ListBucket", err, exitcode.Of(err))
	}
	if wrote, err := st.Update(ctx, func(d *table.Document) (bool, error) { return d.Set(e) }); !wrote || err != nil {
		t.Fatalf("first write: wrote=%v err=%v, want the table created", wrote, err)
	}
	d, err := st.Read(ctx)
	if err != nil || d.Roles["db"].PrivateIP != "10.0.0.5" {
		t.Fatalf("read back: %+v, %v", d, err)
	}
}

func etag(t *testing.T, api *s3.Client, bucket string) string {
	t.Helper()
	out, err := api.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("roles.json")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ETag)
}

// TestReadHTTPS reads tables through a real TLS server, with the client
// trusting its certificate: a whole table parses; an answer cut short, an
// oversized one, another version, a refusal and a missing table each fail
// with their exit code.
func TestReadHTTPS(t *testing.T) {
	const doc = `{"version": 1, "roles": {"db": {"name": "db", "private_ip": "10.0.0.5", "public_ip": "203.0.113.5", "epoch": 2, "updated_at": "2025-01-02T03:04:05Z"}}}`
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/roles.json":
			fmt.Fprint(w, doc)
		case "/cut.json":
			w.Header().Set("Content-Length", fmt.Sprint(len(doc)))
			fmt.Fprint(w, doc[:len(doc)/2])
		case "/big.json":
			w.Header().Set("Content-Length", fmt.Sprint(table.MaxSize+10))
			fmt.Fprint(w, strings.Repeat(" ", 100))
		case "/v2.json":
			fmt.Fprint(w, `{"version": 2, "roles": {}}`)
		case "/denied.json":
			http.Error(w, "no", http.StatusForbidden)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	r := &table.Reader{HTTP: testHTTP(srv)}
	d, err := r.Read(ctxFor(t), srv.URL+"/roles.json?X-Amz-Signature=SECRET")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if d.Roles["db"].PublicIP != "203.0.113.5" {
		t.Errorf("entry = %+v", d.Roles["db"])
	}
	for _, c := range []struct {
		path, want string
		code       int
	}{
		{"/cut.json", "cut short", exitcode.Failed},
		{"/big.json", "larger than", exitcode.Usage},
		{"/v2.json", "version 2", exitcode.Usage},
		{"/denied.json", "403", exitcode.Denied},
		{"/missing.json", "404", exitcode.Usage},
	} {
		_, err := r.Read(ctxFor(t), srv.URL+c.path+"?X-Amz-Signature=SECRET")
		if err == nil || !strings.Contains(err.Error(), c.want) || exitcode.Of(err) != c.code {
			t.Errorf("%s: %v (exit %d), want %q and exit %d", c.path, err, exitcode.Of(err), c.want, c.code)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error shows the URL's query: %v", c.path, err)
		}
	}
}
