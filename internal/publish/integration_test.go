package publish_test

// Integration tests: Route 53 against moto's server, RFC 2136 against BIND's
// named, both started by internal/testenv.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/dnsname"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testLogger sends the publishers' logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// --- Route 53 against moto ---

// motoWorld returns the emulated world of a freshly reset shared moto (the
// test's view: seeding and inspection), and the Route 53 client of the
// publisher under test, an instance's: the IAM gate judges its requests
// with docs/iam-policy.json.
func motoWorld(t *testing.T) (*testenv.TestWorld, *route53.Client) {
	t.Helper()
	moto := testenv.SharedMoto(t)
	return testenv.NewTestWorld(t, moto.Config()), route53.NewFromConfig(moto.ConfigAs(testenv.CallerInstance))
}

// recordSets returns every record set of the zone.
func recordSets(t *testing.T, api *route53.Client, zoneID string) []types.ResourceRecordSet {
	t.Helper()
	out, err := api.ListResourceRecordSets(t.Context(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if err != nil {
		t.Fatalf("list record sets of %s: %v", zoneID, err)
	}
	return out.ResourceRecordSets
}

// recordAt returns the zone's record sets named name.
func recordAt(t *testing.T, api *route53.Client, zoneID, name string) []types.ResourceRecordSet {
	t.Helper()
	var at []types.ResourceRecordSet
	for _, s := range recordSets(t, api, zoneID) {
		if dnsname.Canonical(aws.ToString(s.Name)) == dnsname.Canonical(name) {
			at = append(at, s)
		}
	}
	return at
}

func wantCNAME(t *testing.T, sets []types.ResourceRecordSet, target string, ttl int64) {
	t.Helper()
	if len(sets) != 1 || sets[0].Type != types.RRTypeCname || len(sets[0].ResourceRecords) != 1 {
		t.Fatalf("record sets at the name: got %+v, want one CNAME", sets)
	}
	if got := dnsname.Canonical(aws.ToString(sets[0].ResourceRecords[0].Value)); got != dnsname.Canonical(target) {
		t.Errorf("CNAME value: got %s, want %s", got, target)
	}
	if got := aws.ToInt64(sets[0].TTL); got != ttl {
		t.Errorf("CNAME TTL: got %d, want %d", got, ttl)
	}
}

func TestRoute53PublishCNAMEMoto(t *testing.T) {
	ctx := testContext(t)
	w, instance := motoWorld(t)
	api := w.Route53
	zoneID := w.NewZone("example.internal.", false)
	p := &publish.Route53{API: instance, Log: testLogger(t)}
	c := &config.Route53{ZoneID: zoneID, Name: "master-db.example.internal", TTL: 120}
	target := publish.PublicDNSName(netip.MustParseAddr("127.0.0.5"), "us-east-1")

	res, err := p.PublishCNAME(ctx, c, target)
	if err != nil {
		t.Fatalf("first PublishCNAME: %v", err)
	}
	if !res.Changed || res.ChangeID == "" || res.ZoneID != zoneID || res.Record != "master-db.example.internal." {
		t.Errorf("first PublishCNAME: got %+v, want Changed with a change id in zone %s", res, zoneID)
	}
	wantCNAME(t, recordAt(t, api, zoneID, c.Name), target, 120)
	before := len(recordSets(t, api, zoneID))

	res, err = p.PublishCNAME(ctx, c, target)
	if err != nil {
		t.Fatalf("second PublishCNAME: %v", err)
	}
	if res.Changed || res.ChangeID != "" {
		t.Errorf("second PublishCNAME: got %+v, want no change", res)
	}
	if after := len(recordSets(t, api, zoneID)); after != before {
		t.Errorf("record sets after the second publish: got %d, want %d", after, before)
	}

	// The role moves: the CNAME follows, still one record.
	moved := publish.PublicDNSName(netip.MustParseAddr("127.0.0.9"), "us-east-1")
	res, err = p.PublishCNAME(ctx, c, moved)
	if err != nil || !res.Changed {
		t.Fatalf("PublishCNAME to the new holder: got %+v, %v; want a change", res, err)
	}
	wantCNAME(t, recordAt(t, api, zoneID, c.Name), moved, 120)
}

func TestRoute53ByNameAndWaitMoto(t *testing.T) {
	ctx := testContext(t)
	w, instance := motoWorld(t)
	api := w.Route53
	publicID := w.NewZone("example.internal.", false)
	privateID := w.NewZone("example.internal.", true)
	p := &publish.Route53{API: instance, Log: testLogger(t), Wait: true, Poll: 10 * time.Millisecond}
	target := "ec2-127-0-0-5.compute-1.amazonaws.com"

	ambiguous := &config.Route53{Zone: "example.internal", Name: "db.example.internal"}
	if _, err := p.PublishCNAME(ctx, ambiguous, target); err == nil || !strings.Contains(err.Error(), "private_zone") || exitcode.Of(err) != exitcode.Usage {
		t.Errorf("public and private zones of one name: got %v (exit %d), want an exit 2 error naming private_zone", err, exitcode.Of(err))
	}

	for _, private := range []bool{true, false} {
		wantID := map[bool]string{true: privateID, false: publicID}[private]
		c := &config.Route53{Zone: "example.internal", PrivateZone: &private, Name: "db.example.internal"}
		res, err := p.PublishCNAME(ctx, c, target)
		if err != nil {
			t.Fatalf("private_zone %t: %v", private, err)
		}
		if res.ZoneID != wantID || !res.Changed {
			t.Errorf("private_zone %t: got %+v, want a change in zone %s", private, res, wantID)
		}
		wantCNAME(t, recordAt(t, api, wantID, c.Name), target, config.DefaultTTL)
	}
}

func TestRoute53RefusalsMoto(t *testing.T) {
	ctx := testContext(t)
	w, instance := motoWorld(t)
	api := w.Route53
	zoneID := w.NewZone("example.internal.", false)
	_, err := api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{
			Action: types.ChangeActionCreate,
			ResourceRecordSet: &types.ResourceRecordSet{
				Name: aws.String("web.example.internal."), Type: types.RRTypeA, TTL: aws.Int64(300),
				ResourceRecords: []types.ResourceRecord{{Value: aws.String("10.0.0.7")}},
			},
		}}},
	})
	if err != nil {
		t.Fatalf("seed an A record: %v", err)
	}
	p := &publish.Route53{API: instance, Log: testLogger(t)}
	target := "ec2-127-0-0-5.compute-1.amazonaws.com"

	t.Run("other type at the name", func(t *testing.T) {
		_, err := p.PublishCNAME(ctx, &config.Route53{ZoneID: zoneID, Name: "web.example.internal"}, target)
		t.Logf("error: %v", err)
		if !errors.Is(err, publish.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
		sets := recordAt(t, api, zoneID, "web.example.internal")
		if len(sets) != 1 || sets[0].Type != types.RRTypeA {
			t.Errorf("the A record: got %+v, want it untouched", sets)
		}
	})
	t.Run("apex", func(t *testing.T) {
		// Publishing does not read the zone (check does): the apex is
		// refused for the NS and SOA records there, and check names it.
		_, err := p.PublishCNAME(ctx, &config.Route53{ZoneID: zoneID, Name: "example.internal."}, target)
		if !errors.Is(err, publish.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
		_, _, err = p.Zone(ctx, &config.Route53{ZoneID: zoneID, Name: "example.internal."})
		if err == nil || !strings.Contains(err.Error(), "apex") || exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("check: got %v, want an exit 2 error about the apex", err)
		}
	})
	t.Run("zone id not found", func(t *testing.T) {
		_, err := p.PublishCNAME(ctx, &config.Route53{ZoneID: "Z0000000000000NOTHERE", Name: "db.example.internal"}, target)
		if err == nil || !strings.Contains(err.Error(), "Z0000000000000NOTHERE") || exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("got %v (exit %d), want an exit 2 error naming the zone", err, exitcode.Of(err))
		}
	})
	t.Run("zone name not found", func(t *testing.T) {
		_, err := p.PublishCNAME(ctx, &config.Route53{Zone: "nothere.internal", Name: "db.nothere.internal"}, target)
		if err == nil || !strings.Contains(err.Error(), "nothere.internal") || exitcode.Of(err) != exitcode.Usage {
			t.Fatalf("got %v (exit %d), want an exit 2 error naming the zone", err, exitcode.Of(err))
		}
	})
	if n := len(recordSets(t, api, zoneID)); n != 3 { // SOA, NS, A
		t.Errorf("record sets after the refusals: got %d, want 3 (nothing created)", n)
	}
}

// --- RFC 2136 against BIND ---

// query asks b for name's records of type t, unsigned, and returns the
// ones owned by name.
func query(t *testing.T, b *testenv.BIND, name string, qtype uint16) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, b.Addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	var rrs []dns.RR
	for _, rr := range r.Answer {
		if dns.CanonicalName(rr.Header().Name) == dns.CanonicalName(name) && (qtype == dns.TypeANY || rr.Header().Rrtype == qtype) {
			rrs = append(rrs, rr)
		}
	}
	return rrs
}

func wantA(t *testing.T, rrs []dns.RR, ip string, ttl uint32) {
	t.Helper()
	if len(rrs) != 1 {
		t.Fatalf("A records: got %v, want exactly one %s", rrs, ip)
	}
	a, ok := rrs[0].(*dns.A)
	if !ok || a.A.String() != ip || a.Hdr.Ttl != ttl {
		t.Fatalf("A record: got %v, want %s with TTL %d", rrs[0], ip, ttl)
	}
}

// update sends a signed update to b, to seed records publish must respect.
func update(t *testing.T, b *testenv.BIND, rrs ...string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(b.Zone)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Insert([]dns.RR{rr})
	}
	m.SetTsig(b.KeyName, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{b.KeyName: b.Secret}}
	r, _, err := c.Exchange(m, b.Addr)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("seed update: %v %v", r, err)
	}
}

func bindConfig(b *testenv.BIND, name string) *config.RFC2136 {
	return &config.RFC2136{
		Server:         b.Addr,
		Zone:           b.Zone,
		Name:           name,
		TSIGName:       b.KeyName,
		TSIGAlgorithm:  b.KeyAlgorithm,
		TSIGSecretFile: b.KeyFile,
	}
}

func TestRFC2136BIND(t *testing.T) {
	b := testenv.StartBIND(t, "example.internal.")
	p := &publish.RFC2136{Log: testLogger(t)}

	t.Run("A record", func(t *testing.T) {
		ctx := testContext(t)
		c := bindConfig(b, "master-db.example.internal.")
		changed, err := p.Publish(ctx, c, netip.MustParseAddr("10.0.1.5"), "")
		if err != nil || !changed {
			t.Fatalf("first publish: got %t, %v; want a change", changed, err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.1.5", config.DefaultTTL)

		changed, err = p.Publish(ctx, c, netip.MustParseAddr("10.0.1.5"), "")
		if err != nil || changed {
			t.Fatalf("same publish again: got %t, %v; want no change", changed, err)
		}

		changed, err = p.Publish(ctx, c, netip.MustParseAddr("10.0.2.9"), "")
		if err != nil || !changed {
			t.Fatalf("publish the new holder: got %t, %v; want a change", changed, err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.2.9", config.DefaultTTL)

		c.TTL = 30
		changed, err = p.Publish(ctx, c, netip.MustParseAddr("10.0.2.9"), "")
		if err != nil || !changed {
			t.Fatalf("publish with a new TTL: got %t, %v; want a change", changed, err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.2.9", 30)
	})

	t.Run("wrong secret", func(t *testing.T) {
		ctx := testContext(t)
		c := bindConfig(b, "wrong.example.internal.")
		if _, err := p.Publish(ctx, c, netip.MustParseAddr("10.0.1.5"), ""); err != nil {
			t.Fatalf("publish with the right secret: %v", err)
		}
		c.TSIGSecretFile = filepath.Join(t.TempDir(), "wrong.key")
		if err := os.WriteFile(c.TSIGSecretFile, []byte("c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := p.Publish(ctx, c, netip.MustParseAddr("10.9.9.9"), "")
		t.Logf("error: %v", err)
		if exitcode.Of(err) != exitcode.Denied {
			t.Fatalf("got %v (exit %d), want exit %d", err, exitcode.Of(err), exitcode.Denied)
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), b.Secret) {
			t.Errorf("the error quotes a secret: %v", err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.1.5", config.DefaultTTL)
	})

	t.Run("unknown key name", func(t *testing.T) {
		c := bindConfig(b, "nokey.example.internal.")
		c.TSIGName = "someone-else."
		_, err := p.Publish(testContext(t), c, netip.MustParseAddr("10.0.1.5"), "")
		t.Logf("error: %v", err)
		if exitcode.Of(err) != exitcode.Denied {
			t.Fatalf("got %v (exit %d), want exit %d", err, exitcode.Of(err), exitcode.Denied)
		}
		if rrs := query(t, b, c.Name, dns.TypeA); len(rrs) != 0 {
			t.Errorf("records: got %v, want none", rrs)
		}
	})

	t.Run("CNAME record", func(t *testing.T) {
		ctx := testContext(t)
		c := bindConfig(b, "vpn.example.internal.")
		c.Record = "CNAME"
		target := "ec2-127-0-0-5.compute-1.amazonaws.com"
		changed, err := p.Publish(ctx, c, netip.Addr{}, target)
		if err != nil || !changed {
			t.Fatalf("first publish: got %t, %v; want a change", changed, err)
		}
		changed, err = p.Publish(ctx, c, netip.Addr{}, target)
		if err != nil || changed {
			t.Fatalf("same publish again: got %t, %v; want no change", changed, err)
		}
		moved := "ec2-127-0-0-9.compute-1.amazonaws.com"
		if changed, err = p.Publish(ctx, c, netip.Addr{}, moved); err != nil || !changed {
			t.Fatalf("publish the new holder: got %t, %v; want a change", changed, err)
		}
		rrs := query(t, b, c.Name, dns.TypeCNAME)
		if len(rrs) != 1 || rrs[0].(*dns.CNAME).Target != moved+"." || rrs[0].Header().Ttl != config.DefaultTTL {
			t.Fatalf("CNAME records: got %v, want one to %s", rrs, moved)
		}
	})

	t.Run("CNAME where other data is", func(t *testing.T) {
		update(t, b, "mail.example.internal. 300 IN A 10.0.0.25", "mail.example.internal. 300 IN TXT \"v=spf1 -all\"")
		c := bindConfig(b, "mail.example.internal.")
		c.Record = "CNAME"
		_, err := p.Publish(testContext(t), c, netip.Addr{}, "ec2-127-0-0-5.compute-1.amazonaws.com")
		t.Logf("error: %v", err)
		if !errors.Is(err, publish.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.0.25", 300)
	})

	t.Run("A where a CNAME is", func(t *testing.T) {
		update(t, b, "alias.example.internal. 300 IN CNAME elsewhere.example.net.")
		_, err := p.Publish(testContext(t), bindConfig(b, "alias.example.internal."), netip.MustParseAddr("10.0.1.5"), "")
		t.Logf("error: %v", err)
		if !errors.Is(err, publish.ErrConflict) {
			t.Fatalf("got %v, want ErrConflict", err)
		}
		if rrs := query(t, b, "alias.example.internal.", dns.TypeCNAME); len(rrs) != 1 {
			t.Errorf("the CNAME: got %v, want it untouched", rrs)
		}
	})

	t.Run("BIND key file", func(t *testing.T) {
		c := bindConfig(b, "keyfile.example.internal.")
		c.TSIGAlgorithm = "" // taken from the file
		c.TSIGSecretFile = filepath.Join(t.TempDir(), "eipclaim.key")
		stmt := fmt.Sprintf("# made by tsig-keygen\nkey \"%s\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n", strings.TrimSuffix(b.KeyName, "."), b.KeyAlgorithm, b.Secret)
		if err := os.WriteFile(c.TSIGSecretFile, []byte(stmt), 0o600); err != nil {
			t.Fatal(err)
		}
		if changed, err := p.Publish(testContext(t), c, netip.MustParseAddr("10.0.3.3"), ""); err != nil || !changed {
			t.Fatalf("got %t, %v; want a change", changed, err)
		}
		wantA(t, query(t, b, c.Name, dns.TypeA), "10.0.3.3", config.DefaultTTL)
	})

	t.Run("check", func(t *testing.T) {
		ctx := testContext(t)
		if err := p.Check(ctx, bindConfig(b, "db.example.internal.")); err != nil {
			t.Errorf("check with the right key: %v", err)
		}
		c := bindConfig(b, "db.example.internal.")
		c.TSIGSecretFile = filepath.Join(t.TempDir(), "wrong.key")
		if err := os.WriteFile(c.TSIGSecretFile, []byte("c2VjcmV0LWJ1dC1ub3QtdGhlLXJpZ2h0LW9uZQ==\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.Check(ctx, c); exitcode.Of(err) != exitcode.Denied {
			t.Errorf("check with a wrong secret: got %v (exit %d), want exit 3", err, exitcode.Of(err))
		}
		c = bindConfig(b, "db.sub.example.internal.")
		c.Zone = "sub.example.internal."
		if err := p.Check(ctx, c); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "sub.example.internal. is not a zone on the server") {
			t.Errorf("check of a name that is not a zone: got %v (exit %d), want exit 2", err, exitcode.Of(err))
		}
		c = bindConfig(b, "db.other.internal.")
		c.Zone = "other.internal."
		if err := p.Check(ctx, c); exitcode.Of(err) != exitcode.Denied {
			t.Errorf("check of a zone the server does not serve: got %v (exit %d), want exit 3", err, exitcode.Of(err))
		}
	})

	t.Run("zone the server does not serve", func(t *testing.T) {
		c := bindConfig(b, "db.other.internal.")
		c.Zone = "other.internal."
		_, err := p.Publish(testContext(t), c, netip.MustParseAddr("10.0.1.5"), "")
		// named refuses queries for zones it does not serve.
		if exitcode.Of(err) != exitcode.Denied || !strings.Contains(err.Error(), "check that it serves zone other.internal.") {
			t.Fatalf("got %v (exit %d), want exit 3 naming the zone", err, exitcode.Of(err))
		}
	})
}
