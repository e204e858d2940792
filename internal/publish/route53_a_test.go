package publish_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/placement"
	"github.com/eipclaim/eipclaim/internal/publish"
)

func wantRoute53A(t *testing.T, sets []types.ResourceRecordSet, addr string, ttl int64) {
	t.Helper()
	if len(sets) != 1 || sets[0].Type != types.RRTypeA || len(sets[0].ResourceRecords) != 1 {
		t.Fatalf("record sets at the name: got %+v, want one A record", sets)
	}
	if got := aws.ToString(sets[0].ResourceRecords[0].Value); got != addr {
		t.Errorf("A value: got %s, want %s", got, addr)
	}
	if got := aws.ToInt64(sets[0].TTL); got != ttl {
		t.Errorf("A TTL: got %d, want %d", got, ttl)
	}
}

// TestRoute53ARecordMoto: a role with only private_address publishes, in a
// private hosted zone, an A record of its private address (the default of
// such a role), with the TTL configured, through the gate (the instance's
// policy allows UPSERT of A); a rerun changes nothing; a move to another
// holder keeps the address (the record is not changed); a role with both
// an EIP and a private address and record: A publishes the private
// address, not the holder's; the A record refuses a CNAME at the name.
func TestRoute53ARecordMoto(t *testing.T) {
	ctx := testContext(t)
	w, instance := motoWorld(t)
	zoneID := w.NewZone("example.internal.", true)
	deps := publish.Deps{Route53: instance, Log: testLogger(t)}
	only := &config.Role{PrivateAddress: "10.0.1.50", DNS: &config.DNS{Route53: &config.Route53{ZoneID: zoneID, Name: "db.example.internal", TTL: 30}}}
	pubs := publish.For("db", only, deps)
	at := func(addr, eni, instance string) placement.Placement {
		return placement.Placement{Role: "db", InstanceID: instance, ENI: eni, Epoch: 1, PrivateAddress: netip.MustParseAddr(addr), PrivateAddressENI: eni}
	}
	if got := publish.DryRun(pubs, at("10.0.1.50", "eni-1", "i-1")); len(got) != 1 || got[0].Value != "A 10.0.1.50" {
		t.Errorf("dry run: %+v, want A 10.0.1.50", got)
	}
	res, err := publish.All(ctx, pubs, at("10.0.1.50", "eni-1", "i-1"))
	if err != nil || len(res) != 1 || !res[0].Changed || res[0].Value != "A 10.0.1.50" {
		t.Fatalf("first publication: %+v, %v; want A 10.0.1.50 changed", res, err)
	}
	wantRoute53A(t, recordAt(t, w.Route53, zoneID, "db.example.internal"), "10.0.1.50", 30)
	res, err = publish.All(ctx, pubs, at("10.0.1.50", "eni-2", "i-2"))
	if err != nil || res[0].Changed {
		t.Errorf("after a move: %+v, %v; want no change (the record is the address, wherever it is)", res, err)
	}

	// A role with both, record: A: the private address, not the holder's IP.
	both := &config.Role{PublicIP: "127.0.0.5", PrivateAddress: "10.0.1.60",
		DNS: &config.DNS{Route53: &config.Route53{ZoneID: zoneID, Name: "web.example.internal", Record: "A"}}}
	f := placement.Placement{Role: "web", InstanceID: "i-1", ENI: "eni-1", PublicIP: netip.MustParseAddr("127.0.0.5"),
		PrivateIP: netip.MustParseAddr("10.0.1.11"), PrivateAddress: netip.MustParseAddr("10.0.1.60"), PrivateAddressENI: "eni-1",
		PublicDNSName: publish.PublicDNSName(netip.MustParseAddr("127.0.0.5"), "us-east-1")}
	if _, err := publish.All(ctx, publish.For("web", both, deps), f); err != nil {
		t.Fatal(err)
	}
	wantRoute53A(t, recordAt(t, w.Route53, zoneID, "web.example.internal"), "10.0.1.60", config.DefaultTTL)
	// An EIP-only role with record: A publishes the holder's private IP,
	// rewritten when the EIP moves.
	eipA := &config.Role{PublicIP: "127.0.0.6", DNS: &config.DNS{Route53: &config.Route53{ZoneID: zoneID, Name: "cache.example.internal", Record: "A"}}}
	for _, ip := range []string{"10.0.1.12", "10.0.1.13"} {
		f := placement.Placement{Role: "cache", InstanceID: "i-1", PublicIP: netip.MustParseAddr("127.0.0.6"), PrivateIP: netip.MustParseAddr(ip)}
		res, err := publish.All(ctx, publish.For("cache", eipA, deps), f)
		if err != nil || !res[0].Changed {
			t.Fatalf("cache at %s: %+v, %v; want the A record changed", ip, res, err)
		}
		wantRoute53A(t, recordAt(t, w.Route53, zoneID, "cache.example.internal"), ip, config.DefaultTTL)
	}

	// The name is a CNAME: refused, not replaced.
	cname := &config.Role{PublicIP: "127.0.0.7", DNS: &config.DNS{Route53: &config.Route53{ZoneID: zoneID, Name: "q.example.internal"}}}
	g := placement.Placement{Role: "q", PublicIP: netip.MustParseAddr("127.0.0.7"), PrivateIP: netip.MustParseAddr("10.0.1.14"), PublicDNSName: publish.PublicDNSName(netip.MustParseAddr("127.0.0.7"), "us-east-1")}
	if _, err := publish.All(ctx, publish.For("q", cname, deps), g); err != nil {
		t.Fatal(err)
	}
	cname.DNS.Route53.Record = "A"
	_, err = publish.All(ctx, publish.For("q", cname, deps), g)
	if !errors.Is(err, publish.ErrConflict) || !strings.Contains(err.Error(), "already has CNAME records") {
		t.Errorf("an A record over a CNAME: %v, want ErrConflict naming the CNAME", err)
	}
}
