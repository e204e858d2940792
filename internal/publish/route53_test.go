package publish

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/exitcode"
)

func TestPublicDNSName(t *testing.T) {
	tests := []struct {
		ip, region, want string
	}{
		{"203.0.113.10", "us-east-1", "ec2-203-0-113-10.compute-1.amazonaws.com"},
		{"203.0.113.10", "US-EAST-1", "ec2-203-0-113-10.compute-1.amazonaws.com"},
		{"198.51.100.7", "eu-west-1", "ec2-198-51-100-7.eu-west-1.compute.amazonaws.com"},
		{"198.51.100.7", "us-east-2", "ec2-198-51-100-7.us-east-2.compute.amazonaws.com"},
		{"198.51.100.7", "ap-southeast-2", "ec2-198-51-100-7.ap-southeast-2.compute.amazonaws.com"},
		{"198.51.100.7", "us-gov-west-1", "ec2-198-51-100-7.us-gov-west-1.compute.amazonaws.com"},
		{"52.80.1.2", "cn-north-1", "ec2-52-80-1-2.cn-north-1.compute.amazonaws.com.cn"},
		{"52.82.1.2", "cn-northwest-1", "ec2-52-82-1-2.cn-northwest-1.compute.amazonaws.com.cn"},
		{"::ffff:203.0.113.10", "eu-west-1", "ec2-203-0-113-10.eu-west-1.compute.amazonaws.com"},
		{"2001:db8::1", "eu-west-1", ""},
		{"203.0.113.10", "", ""},
		{"203.0.113.10", "eu-west-1.evil.example", ""},
		{"203.0.113.10", "eu west", ""},
	}
	for _, tc := range tests {
		t.Run(tc.ip+"/"+tc.region, func(t *testing.T) {
			if got := PublicDNSName(netip.MustParseAddr(tc.ip), tc.region); got != tc.want {
				t.Errorf("PublicDNSName(%s, %q): got %q, want %q", tc.ip, tc.region, got, tc.want)
			}
		})
	}
	if got := PublicDNSName(netip.Addr{}, "eu-west-1"); got != "" {
		t.Errorf("PublicDNSName of the zero address: got %q, want \"\"", got)
	}
}

func ptr[T any](v T) *T { return &v }

const (
	publicID  = "Z0PUBLIC0000001"
	privateID = "Z0PRIVATE000001"
	otherID   = "Z0OTHER00000001"
)

// zones is a public and a private zone of one name, and another zone.
func zones() *fakeRoute53 {
	return newFake(
		fakeZone{id: publicID, name: "example.internal."},
		fakeZone{id: privateID, name: "example.internal.", private: true},
		fakeZone{id: otherID, name: "corp.example."},
	)
}

func TestRoute53Zone(t *testing.T) {
	tests := []struct {
		name     string
		c        config.Route53
		pageSize int
		wantID   string
		wantName string
		wantErr  string // substring; "" for success
		wantCode int
	}{
		{name: "by id", c: config.Route53{ZoneID: otherID, Name: "db.corp.example"}, wantID: otherID, wantName: "corp.example."},
		{name: "by id with prefix", c: config.Route53{ZoneID: "/hostedzone/" + otherID, Name: "db.corp.example."}, wantID: otherID, wantName: "corp.example."},
		{name: "by id, private_zone agrees", c: config.Route53{ZoneID: privateID, PrivateZone: ptr(true), Name: "db.example.internal"}, wantID: privateID, wantName: "example.internal."},
		{name: "by id, private_zone disagrees", c: config.Route53{ZoneID: privateID, PrivateZone: ptr(false), Name: "db.example.internal"},
			wantErr: "route53 zone " + privateID + " (example.internal.) is private, but private_zone is false", wantCode: exitcode.Usage},
		{name: "by id not found", c: config.Route53{ZoneID: "Z0NOTHERE", Name: "db.example.internal"},
			wantErr: "get route53 zone Z0NOTHERE: zone not found", wantCode: exitcode.Usage},
		{name: "by name", c: config.Route53{Zone: "corp.example", Name: "db.corp.example"}, wantID: otherID, wantName: "corp.example."},
		{name: "by name, any case", c: config.Route53{Zone: "Corp.Example.", Name: "DB.corp.example"}, wantID: otherID, wantName: "corp.example."},
		{name: "by name, public and private", c: config.Route53{Zone: "example.internal", Name: "db.example.internal"},
			wantErr: "set private_zone: true or private_zone: false", wantCode: exitcode.Usage},
		{name: "by name, private", c: config.Route53{Zone: "example.internal", PrivateZone: ptr(true), Name: "db.example.internal"}, wantID: privateID, wantName: "example.internal."},
		{name: "by name, public", c: config.Route53{Zone: "example.internal", PrivateZone: ptr(false), Name: "db.example.internal"}, wantID: publicID, wantName: "example.internal."},
		{name: "by name, public, one zone a page", pageSize: 1, c: config.Route53{Zone: "example.internal", PrivateZone: ptr(false), Name: "db.example.internal"}, wantID: publicID, wantName: "example.internal."},
		{name: "by name, ambiguous across pages", pageSize: 1, c: config.Route53{Zone: "example.internal", Name: "db.example.internal"},
			wantErr: "2 hosted zones have this name (" + privateID + " private, " + publicID + " public)", wantCode: exitcode.Usage},
		{name: "by name, not found", c: config.Route53{Zone: "nothere.example", Name: "db.nothere.example"},
			wantErr: "route53 zone nothere.example. not found", wantCode: exitcode.Usage},
		{name: "by name, no private one", c: config.Route53{Zone: "corp.example", PrivateZone: ptr(true), Name: "db.corp.example"},
			wantErr: "not found among the private zones (there is " + otherID + " public): check private_zone", wantCode: exitcode.Usage},
		{name: "apex", c: config.Route53{ZoneID: otherID, Name: "corp.example."},
			wantErr: "is the apex of zone corp.example.", wantCode: exitcode.Usage},
		{name: "outside the zone", c: config.Route53{ZoneID: otherID, Name: "db.example.internal"},
			wantErr: "route53 name db.example.internal. is not inside zone corp.example. (" + otherID + ")", wantCode: exitcode.Usage},
		{name: "suffix is not inside", c: config.Route53{ZoneID: otherID, Name: "notcorp.example"},
			wantErr: "is not inside zone corp.example.", wantCode: exitcode.Usage},
		{name: "no zone", c: config.Route53{Name: "db.corp.example"}, wantErr: "want zone_id or zone", wantCode: exitcode.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := zones()
			f.pageSize = tc.pageSize
			p := &Route53{API: f}
			id, name, err := p.Zone(t.Context(), &tc.c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %q, %v; want an error containing %q", id, name, err, tc.wantErr)
				}
				if got := exitcode.Of(err); got != tc.wantCode {
					t.Errorf("exit code: got %d, want %d (%v)", got, tc.wantCode, err)
				}
				return
			}
			if err != nil || id != tc.wantID || name != tc.wantName {
				t.Fatalf("got %q, %q, %v; want %q, %q", id, name, err, tc.wantID, tc.wantName)
			}
		})
	}
}

const target = "ec2-203-0-113-10.compute-1.amazonaws.com"

// wantCNAME fails unless name is exactly one CNAME to value with ttl.
func wantCNAME(t *testing.T, f *fakeRoute53, zoneID, name, value string, ttl int64) {
	t.Helper()
	sets := f.at(zoneID, name)
	if len(sets) != 1 || sets[0].Type != types.RRTypeCname || len(sets[0].ResourceRecords) != 1 ||
		dnsname.Route53(aws.ToString(sets[0].ResourceRecords[0].Value)) != dnsname.Canonical(value) || aws.ToInt64(sets[0].TTL) != ttl {
		t.Fatalf("records at %s: got %s, want CNAME %s TTL %d", name, describe(sets), value, ttl)
	}
}

func TestPublishCNAME(t *testing.T) {
	ctx := t.Context()
	f := zones()
	p := &Route53{API: f}
	c := &config.Route53{ZoneID: otherID, Name: "Master-DB.corp.example"}

	res, err := p.PublishCNAME(ctx, c, target)
	if err != nil {
		t.Fatal(err)
	}
	want := CNAMEResult{Record: "master-db.corp.example.", Value: target + ".", ZoneID: otherID, Changed: true, ChangeID: "C0001"}
	if res != want {
		t.Errorf("first publish: got %+v, want %+v", res, want)
	}
	wantCNAME(t, f, otherID, c.Name, target, config.DefaultTTL)

	// No churn: the same publication changes nothing.
	res, err = p.PublishCNAME(ctx, c, strings.ToUpper(target)+".")
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.ChangeID != "" || f.changeCount() != 1 {
		t.Errorf("second publish: got %+v and %d changes, want no change", res, f.changeCount())
	}

	// A new TTL is a change.
	c.TTL = 300
	if res, err = p.PublishCNAME(ctx, c, target); err != nil || !res.Changed {
		t.Fatalf("new TTL: got %+v, %v; want a change", res, err)
	}
	wantCNAME(t, f, otherID, c.Name, target, 300)

	// The role moves: the CNAME follows.
	moved := "ec2-203-0-113-99.compute-1.amazonaws.com"
	if res, err = p.PublishCNAME(ctx, c, moved); err != nil || !res.Changed {
		t.Fatalf("moved: got %+v, %v; want a change", res, err)
	}
	wantCNAME(t, f, otherID, c.Name, moved, 300)
	if n := f.changeCount(); n != 3 {
		t.Errorf("changes: got %d, want 3", n)
	}
}

func TestPublishCNAMERefusals(t *testing.T) {
	accessDenied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::123456789012:assumed-role/db/i-0abc is not authorized to perform: route53:ChangeResourceRecordSets"}
	tests := []struct {
		name     string
		setup    func(f *fakeRoute53)
		c        config.Route53
		target   string
		wantErr  string
		wantIs   error
		wantCode int
	}{
		{
			name: "A record at the name",
			setup: func(f *fakeRoute53) {
				f.seed(otherID, types.ResourceRecordSet{Name: aws.String("db.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(300),
					ResourceRecords: []types.ResourceRecord{{Value: aws.String("10.0.0.5")}}})
			},
			wantErr: "db.corp.example. already has A records", wantIs: ErrConflict, wantCode: exitcode.Failed,
		},
		{
			name: "A and AAAA records at the name",
			setup: func(f *fakeRoute53) {
				for _, typ := range []types.RRType{types.RRTypeA, types.RRTypeAaaa} {
					f.seed(otherID, types.ResourceRecordSet{Name: aws.String("db.corp.example."), Type: typ, TTL: aws.Int64(300),
						ResourceRecords: []types.ResourceRecord{{Value: aws.String("x")}}})
				}
			},
			wantErr: "already has A, AAAA records", wantIs: ErrConflict, wantCode: exitcode.Failed,
		},
		{
			name: "weighted CNAME at the name",
			setup: func(f *fakeRoute53) {
				f.seed(otherID, types.ResourceRecordSet{Name: aws.String("db.corp.example."), Type: types.RRTypeCname, TTL: aws.Int64(60),
					SetIdentifier: aws.String("blue"), Weight: aws.Int64(10), ResourceRecords: []types.ResourceRecord{{Value: aws.String("x.example.")}}})
			},
			wantErr: `routing policy (set identifier "blue")`, wantIs: ErrConflict, wantCode: exitcode.Failed,
		},
		{
			// Publishing asks nothing about the zone (check does, Zone):
			// the apex is refused because its NS and SOA records are there.
			name:    "apex",
			c:       config.Route53{ZoneID: otherID, Name: "corp.example"},
			wantErr: "corp.example. already has NS, SOA records", wantIs: ErrConflict, wantCode: exitcode.Failed,
		},
		{
			name:    "negative TTL",
			c:       config.Route53{ZoneID: otherID, Name: "db.corp.example", TTL: -5},
			wantErr: "route53 db.corp.example: ttl -5: want seconds from 1 to 604800", wantCode: exitcode.Usage,
		},
		{
			name:    "bad target",
			target:  "not a name",
			wantErr: `CNAME target "not a name" is not a DNS name`, wantCode: exitcode.Failed,
		},
		{
			name:    "empty target",
			target:  "-",
			wantErr: `CNAME target "" is not a DNS name`, wantCode: exitcode.Failed,
		},
		{
			name:    "access denied on change",
			setup:   func(f *fakeRoute53) { f.errs["ChangeResourceRecordSets"] = accessDenied },
			wantErr: "upsert CNAME db.corp.example. -> " + target + ". in route53 zone " + otherID + ": not permitted: grant route53:ChangeResourceRecordSets",
			wantIs:  accessDenied, wantCode: exitcode.Denied,
		},
		{
			name:    "access denied on list",
			setup:   func(f *fakeRoute53) { f.errs["ListResourceRecordSets"] = accessDenied },
			wantErr: "read db.corp.example. in route53 zone " + otherID + ": not permitted: grant route53:ListResourceRecordSets", wantCode: exitcode.Denied,
		},
		{
			name: "invalid change batch",
			setup: func(f *fakeRoute53) {
				f.errs["ChangeResourceRecordSets"] = &types.InvalidChangeBatch{Messages: []string{"RRSet with DNS name db.corp.example. is not permitted in zone corp.example."}}
			},
			wantErr: "route 53 rejected the change (RRSet with DNS name db.corp.example. is not permitted in zone corp.example.)", wantCode: exitcode.Failed,
		},
		{
			name:    "change not visible on read back",
			setup:   func(f *fakeRoute53) { f.dropChanges = true },
			wantErr: "read back db.corp.example. in route53 zone " + otherID + " after change C0001: want CNAME " + target + ". TTL 60, found no record", wantCode: exitcode.Failed,
		},
		{
			name:    "change answer without change info",
			setup:   func(f *fakeRoute53) { f.noChangeInfo = true },
			wantErr: "the answer has no change id", wantCode: exitcode.Failed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := zones()
			if tc.setup != nil {
				tc.setup(f)
			}
			if tc.c.Name == "" {
				tc.c = config.Route53{ZoneID: otherID, Name: "db.corp.example"}
			}
			if tc.target == "" {
				tc.target = target
			} else if tc.target == "-" {
				tc.target = ""
			}
			before := describe(f.at(otherID, tc.c.Name))
			_, err := (&Route53{API: f}).PublishCNAME(t.Context(), &tc.c, tc.target)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.wantIs)
			}
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code: got %d, want %d", got, tc.wantCode)
			}
			if after := describe(f.at(otherID, tc.c.Name)); after != before && !f.dropChanges && !f.noChangeInfo {
				t.Errorf("records at %s: got %s, want them unchanged: %s", tc.c.Name, after, before)
			}
		})
	}
}

func TestPublishCNAMEWait(t *testing.T) {
	f := zones()
	f.pendingPolls = 3
	p := &Route53{API: f, Wait: true, Poll: time.Millisecond}
	res, err := p.PublishCNAME(t.Context(), &config.Route53{ZoneID: otherID, Name: "db.corp.example"}, target)
	if err != nil || !res.Changed {
		t.Fatalf("got %+v, %v; want a change", res, err)
	}
	if !f.insync(res.ChangeID) {
		t.Errorf("change %s: PublishCNAME returned before it was INSYNC", res.ChangeID)
	}

	// Without Wait, nothing waits.
	f = zones()
	f.pendingPolls = 3
	p = &Route53{API: f, Poll: time.Hour}
	if res, err = p.PublishCNAME(t.Context(), &config.Route53{ZoneID: otherID, Name: "db.corp.example"}, target); err != nil {
		t.Fatal(err)
	}
	if f.insync(res.ChangeID) {
		t.Errorf("change %s: INSYNC without Wait", res.ChangeID)
	}
}

func TestPublishCNAMEWaitDeadline(t *testing.T) {
	f := zones()
	f.pendingPolls = 1 << 30
	p := &Route53{API: f, Wait: true, Poll: time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	res, err := p.PublishCNAME(ctx, &config.Route53{ZoneID: otherID, Name: "db.corp.example"}, target)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "wait for change C0001 in route53 zone "+otherID+": still PENDING") {
		t.Fatalf("got %v, want a deadline error naming the change", err)
	}
	if !res.Changed || res.ChangeID != "C0001" {
		t.Errorf("result: got %+v, want the change made", res)
	}
	wantCNAME(t, f, otherID, "db.corp.example", target, config.DefaultTTL)
}

func TestPublishCNAMEWaitError(t *testing.T) {
	f := zones()
	f.errs["GetChange"] = &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}
	p := &Route53{API: f, Wait: true, Poll: time.Millisecond}
	_, err := p.PublishCNAME(t.Context(), &config.Route53{ZoneID: otherID, Name: "db.corp.example"}, target)
	if exitcode.Of(err) != exitcode.Denied || !strings.Contains(err.Error(), "grant route53:GetChange") {
		t.Fatalf("got %v (exit %d), want exit 3 naming route53:GetChange", err, exitcode.Of(err))
	}
}

// TestPublishCNAMEPaging reads a name whose record sets span pages, with
// other names around it.
func TestPublishCNAMEPaging(t *testing.T) {
	f := zones()
	f.pageSize = 1
	for _, n := range []string{"a.corp.example.", "db.corp.example.", "z.corp.example.", "x.db.corp.example."} {
		f.seed(otherID, types.ResourceRecordSet{Name: aws.String(n), Type: types.RRTypeTxt, TTL: aws.Int64(60),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String(`"x"`)}}})
	}
	f.seed(otherID, types.ResourceRecordSet{Name: aws.String("db.corp.example."), Type: types.RRTypeAaaa, TTL: aws.Int64(60),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("2001:db8::1")}}})
	_, err := (&Route53{API: f}).PublishCNAME(t.Context(), &config.Route53{ZoneID: otherID, Name: "db.corp.example"}, target)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already has AAAA, TXT records") {
		t.Fatalf("got %v, want a conflict naming AAAA and TXT", err)
	}
	if _, err := (&Route53{API: f}).PublishCNAME(t.Context(), &config.Route53{ZoneID: otherID, Name: "new.corp.example"}, target); err != nil {
		t.Fatal(err)
	}
	wantCNAME(t, f, otherID, "new.corp.example", target, config.DefaultTTL)
}

func TestAPIError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string
	}{
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied", Message: "m"}, exitcode.Denied, "op: not permitted: grant route53:X to the instance role (see docs/iam-policy.json): api error AccessDenied: m"},
		{"bad credentials", &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "m"}, exitcode.Denied, "op: the AWS credentials were not accepted"},
		{"no such zone", &types.NoSuchHostedZone{Message: aws.String("No hosted zone found with ID: Z1")}, exitcode.Usage, "op: zone not found: check zone_id: NoSuchHostedZone: No hosted zone found with ID: Z1"},
		{"invalid change batch, message", &types.InvalidChangeBatch{Message: aws.String("bad CNAME")}, exitcode.Failed, "op: route 53 rejected the change: InvalidChangeBatch: bad CNAME"},
		{"throttled", &smithy.GenericAPIError{Code: "Throttling", Message: "slow down"}, exitcode.Failed, "op: api error Throttling: slow down"},
		{"network", errors.New("dial tcp: connection refused"), exitcode.Failed, "op: dial tcp: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := apiError("route53:X", "op", tc.err)
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code: got %d, want %d", got, tc.wantCode)
			}
			if !strings.HasPrefix(err.Error(), tc.wantMsg) {
				t.Errorf("message: got %q, want it to start with %q", err.Error(), tc.wantMsg)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("the error does not wrap %v", tc.err)
			}
		})
	}
}
