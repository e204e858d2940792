package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/table"
)

// memS3 is one S3 object in memory, with S3's conditional writes.
type memS3 struct {
	mu         sync.Mutex
	body       []byte // nil: no object
	version    int
	gets, puts int
}

var _ table.S3API = (*memS3)(nil)

func (m *memS3) etag() string { return fmt.Sprintf("\"v%d\"", m.version) }

func (m *memS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.body == nil {
		return nil, &s3types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(m.body)), ETag: aws.String(m.etag()), ContentLength: aws.Int64(int64(len(m.body)))}, nil
}

func (m *memS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if (in.IfNoneMatch != nil && m.body != nil) || (in.IfMatch != nil && (m.body == nil || *in.IfMatch != m.etag())) {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed"}
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	m.body, m.version = b, m.version+1
	return &s3.PutObjectOutput{ETag: aws.String(m.etag())}, nil
}

func (m *memS3) seed(t *testing.T, entries ...table.Entry) {
	t.Helper()
	d := table.New()
	for _, e := range entries {
		d.Roles[e.Name] = e
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m.body, m.version = b, m.version+1
}

func tableFacts(epoch int64) placement.Placement {
	return placement.Placement{Role: "db", InstanceID: "i-old", Epoch: epoch, PrivateIP: netip.MustParseAddr("10.0.0.6"), PublicIP: netip.MustParseAddr("203.0.113.10")}
}

// TestTableWriteDroppedIsNotSilent: a claim whose entry the table refuses
// because it holds a greater epoch fails its publication (exit 5), and
// says so, with what to do, in the line people read.
func TestTableWriteDroppedIsNotSilent(t *testing.T) {
	api := &memS3{}
	api.seed(t, table.Entry{Name: "db", PrivateIP: "10.0.0.7", Holder: "i-new", Epoch: 9, UpdatedAt: time.Now().UTC()})
	before := api.version
	p := &tablePublisher{store: &table.Store{API: api, Bucket: "b", Key: "roles.json"}, role: "db", now: time.Now}
	results, err := All(context.Background(), []Publisher{p}, tableFacts(8))
	var stale *table.StaleError
	if !errors.As(err, &stale) || exitcode.Of(err) != exitcode.DNSFailed {
		t.Fatalf("All: %v (exit %d), want a StaleError with exit %d", err, exitcode.Of(err), exitcode.DNSFailed)
	}
	line := results[0].String()
	for _, want := range []string{"FAILED", "not written", "epoch 9", "i-new", "rerun eipclaim"} {
		if !strings.Contains(line, want) {
			t.Errorf("the result's line does not say %q: %s", want, line)
		}
	}
	if api.version != before {
		t.Error("the table was rewritten")
	}
}

// TestTableRecorded: the role table's record of the role is read while the
// claim runs, and that read is the first of the table's write: the epoch
// floor costs no request. A record that is not an epoch counts for nothing.
func TestTableRecorded(t *testing.T) {
	api := &memS3{}
	api.seed(t, table.Entry{Name: "db", PrivateIP: "10.0.0.7", Holder: "i-new", Epoch: 9, UpdatedAt: time.Now().UTC()})
	p := &tablePublisher{store: &table.Store{API: api, Bucket: "b", Key: "roles.json"}, role: "db", now: time.Now}
	rec := Recorded(context.Background(), []Publisher{p}, nil)
	if r := rec(); r == nil || r.Epoch != 9 || r.Holder != "i-new" {
		t.Fatalf("Recorded = %+v, want epoch 9 of i-new", r)
	}
	if _, err := All(context.Background(), []Publisher{p}, tableFacts(10)); err != nil {
		t.Fatal(err)
	}
	// The read ahead, the conditional write, the read back.
	if api.gets != 2 || api.puts != 1 {
		t.Errorf("%d GETs and %d PUTs, want 2 and 1", api.gets, api.puts)
	}
	if Recorded(context.Background(), []Publisher{&route53Publisher{}}, nil) != nil {
		t.Error("Recorded without a table publisher is not nil")
	}
	api.seed(t, table.Entry{Name: "db", PrivateIP: "10.0.0.7", Holder: "i-new", Epoch: -3})
	if r := Recorded(context.Background(), []Publisher{p}, nil)(); r != nil {
		t.Errorf("Recorded of a negative entry = %+v, want nil", r)
	}
}

// slowS3 is an S3 whose GetObject waits until its context ends (an S3
// that does not answer, retried to the step's deadline).
type slowS3 struct{ memS3 }

func (m *slowS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestTableRecordedSlowS3: a table read that does not come back never
// holds up the claim (its tags, publications and the new holder's hook)
// past aheadWait: Recorded gives up and says so. Before the fix it waited
// for the read, up to the step's deadline (minutes).
func TestTableRecordedSlowS3(t *testing.T) {
	defer func(d time.Duration) { aheadWait = d }(aheadWait)
	aheadWait = 50 * time.Millisecond
	p := &tablePublisher{store: &table.Store{API: &slowS3{}, Bucket: "b", Key: "roles.json"}, role: "db", now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := Recorded(ctx, []Publisher{p}, nil)
	began := time.Now()
	if r := rec(); r != nil {
		t.Errorf("Recorded = %+v, want nil", r)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Recorded waited %s for a table read that does not answer, want at most aheadWait (%s)", took, aheadWait)
	}
	if snap := p.take(); snap != nil {
		t.Errorf("take = %+v, want nil (Publish reads the table again)", snap)
	}
}

// TestPrivateAddressPublished: a role's secondary private IP is what the
// role table's private_ip, an RFC 2136 A record and dyndns (private)
// publish: the address clients must use; without one, the EIP's private
// IP.
func TestPrivateAddressPublished(t *testing.T) {
	f := placement.Placement{Role: "db", InstanceID: "i-1", PrivateIP: netip.MustParseAddr("10.0.1.5"), Epoch: 3}
	tp := &tablePublisher{role: "db", spec: &config.Role{}, now: time.Now}
	rp := &rfc2136Publisher{c: &config.RFC2136{Name: "db.example.internal."}}
	dp := &dyndnsPublisher{c: &config.DynDNS{Hostname: "db.example-ddns.net"}}
	if e := tp.entry(f); e.PrivateIP != "10.0.1.5" {
		t.Errorf("table entry without a private address: private_ip %q, want the EIP's 10.0.1.5", e.PrivateIP)
	}
	f.PrivateAddress = netip.MustParseAddr("10.0.1.50")
	if e := tp.entry(f); e.PrivateIP != "10.0.1.50" || e.PublicIP != "" {
		t.Errorf("table entry: private_ip %q public_ip %q, want the private address 10.0.1.50 and none", e.PrivateIP, e.PublicIP)
	}
	if got := wouldPublish(rp, f); got != "A 10.0.1.50" {
		t.Errorf("rfc2136 would publish %q, want A 10.0.1.50", got)
	}
	if got := dp.address(f); got != f.PrivateAddress {
		t.Errorf("dyndns publishes %v, want the private address %v", got, f.PrivateAddress)
	}
}

// TestOverlayAddressPublished: a role's overlay address is what the role
// table's private_ip, an RFC 2136 A record and dyndns (private) publish,
// whoever holds it.
func TestOverlayAddressPublished(t *testing.T) {
	f := placement.Placement{Role: "vpn", InstanceID: "i-1", PrivateIP: netip.MustParseAddr("10.0.1.5"), Epoch: 4, OverlayAddress: netip.MustParseAddr("192.168.100.10")}
	tp := &tablePublisher{role: "vpn", spec: &config.Role{}, now: time.Now}
	rp := &rfc2136Publisher{c: &config.RFC2136{Name: "vpn.example.internal."}}
	dp := &dyndnsPublisher{c: &config.DynDNS{Hostname: "vpn.example-ddns.net"}}
	if e := tp.entry(f); e.PrivateIP != "192.168.100.10" || e.Holder != "i-1" || e.Epoch != 4 {
		t.Errorf("table entry %+v, want private_ip 192.168.100.10, holder i-1, epoch 4 (the arbiter's)", e)
	}
	if got := wouldPublish(rp, f); got != "A 192.168.100.10" {
		t.Errorf("rfc2136 would publish %q, want A 192.168.100.10", got)
	}
	if got := dp.address(f); got != f.OverlayAddress {
		t.Errorf("dyndns publishes %v, want the overlay address %v", got, f.OverlayAddress)
	}
}

// TestTableSeed: a keep's table publisher compares its entry on a read
// made earlier (Seed: the controller's one read per run), at no request
// when the entry is right; when the table changed since the read, its
// write is a compare-and-swap that fails, and the table is read again:
// the other writer's entry stays, this one is written. Two publishers
// seeded with one read each get their own copy.
func TestTableSeed(t *testing.T) {
	api := &memS3{}
	right := table.Entry{Name: "db", PrivateIP: "10.0.0.6", PublicIP: "203.0.113.10", Holder: "i-old", Epoch: 8, UpdatedAt: time.Now().UTC()}
	api.seed(t, right)
	store := &table.Store{API: api, Bucket: "b", Key: "roles.json"}
	snap, err := store.ReadSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gets := api.gets
	p := &tablePublisher{store: store, role: "db", now: time.Now}
	Seed([]Publisher{p}, snap)
	if _, err := All(context.Background(), []Publisher{p}, tableFacts(8)); err != nil {
		t.Fatal(err)
	}
	if api.gets != gets || api.puts != 0 {
		t.Errorf("a right entry on the seeded read: %d GETs, %d PUTs, want none", api.gets-gets, api.puts)
	}
	// Another writer adds web after the read; a claim's publisher seeded
	// with that read writes db at epoch 9 on it: the compare-and-swap
	// fails, the table is read again, web stays.
	api.seed(t, right, table.Entry{Name: "web", PrivateIP: "10.0.0.9", Holder: "i-web", Epoch: 2, UpdatedAt: time.Now().UTC()})
	q := &tablePublisher{store: store, role: "db", now: time.Now}
	Seed([]Publisher{p, q}, snap)
	if _, err := All(context.Background(), []Publisher{q}, tableFacts(9)); err != nil {
		t.Fatal(err)
	}
	d, err := store.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Roles["web"].Holder != "i-web" || d.Roles["db"].Epoch != 9 {
		t.Errorf("table after a write on a stale read: %+v, want web kept and db at epoch 9", d.Roles)
	}
	if snap.Doc.Roles["db"].Epoch != 8 || len(snap.Doc.Roles) != 1 {
		t.Errorf("the seeded read was changed: %+v", snap.Doc.Roles)
	}
}
