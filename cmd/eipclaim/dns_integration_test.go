package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// zone creates a public hosted zone and returns its id.
func (w *world) zone(name string) (string, *route53.Client) {
	w.t.Helper()
	return w.tw.NewZone(name, false), w.tw.Route53
}

// cnames returns the zone's CNAME records, name -> value and TTL.
func cnames(t *testing.T, r53 *route53.Client, zoneID string) map[string]string {
	t.Helper()
	out, err := r53.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, rr := range out.ResourceRecordSets {
		if rr.Type == r53types.RRTypeCname {
			m[aws.ToString(rr.Name)] = fmt.Sprintf("%s ttl=%d", aws.ToString(rr.ResourceRecords[0].Value), aws.ToInt64(rr.TTL))
		}
	}
	return m
}

func TestRoute53CNAME(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	zoneID, r53 := w.zone("example.internal")
	w.withUserData(fixedRole(alloc, "    dns:\n      route53: {zone_id: "+zoneID+", name: master-db.example.internal, ttl: 45}\n"))
	out, errs, code := eipclaim(t, "--wait-dns", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// The value is the EIP's public DNS name by the partition's rule, as
	// AWS names it (moto's DescribeNetworkInterfaces says
	// ip-a-b-c-d.ec2.internal instead: eipclaim does not ask it).
	want := "ec2-" + strings.ReplaceAll(ip, ".", "-") + ".compute-1.amazonaws.com."
	got := cnames(t, r53, zoneID)
	if v := got["master-db.example.internal."]; !strings.HasPrefix(v, want) || !strings.HasSuffix(v, "ttl=45") {
		t.Fatalf("CNAME = %q, want %s with ttl=45 (all: %v)", v, want, got)
	}
	// A second claim changes nothing in Route 53.
	out, errs, code = eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("rerun: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "already published") {
		t.Errorf("rerun stdout does not say the CNAME was already published: %s", out)
	}
	out, errs, code = eipclaim(t, "status", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "route53 master-db.example.internal: CNAME "+want+" TTL 45") {
		t.Errorf("status (exit %d) does not show the published CNAME %s:\n%s\n%s", code, want, out, errs)
	}
	if strings.Contains(errs, "change submitted") || strings.Contains(out, "change ") {
		t.Errorf("rerun made a Route 53 change:\n%s\n%s", out, errs)
	}
}

func TestDNSFailureKeepsClaim(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	// A zone id that does not exist: the claim succeeds, DNS fails, exit 5.
	w.withUserData(fixedRole(alloc, "    dns:\n      route53: {zone_id: ZNOSUCHZONE1, name: master-db.example.internal}\n"))
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.DNSFailed {
		t.Fatalf("exit %d, want 5\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != w.primaryENI() {
		t.Errorf("the claim did not stand: EIP on %q", got)
	}
	if !strings.Contains(errs, "the claim stands") || !strings.Contains(errs, "ZNOSUCHZONE1") {
		t.Errorf("the message does not say the claim stands and what failed:\n%s", errs)
	}
}

func TestRFC2136ToBIND(t *testing.T) {
	b := testenv.StartBIND(t, "example.internal.")
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	dnsConf := fmt.Sprintf("    dns:\n      rfc2136: {server: %q, zone: example.internal., name: master-db.example.internal., ttl: 30, tsig_name: %q, tsig_algorithm: %s, tsig_secret_file: %q}\n",
		b.Addr, b.KeyName, b.KeyAlgorithm, b.KeyFile)
	w.withUserData(fixedRole(alloc, dnsConf))
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := queryA(t, b.Addr, "master-db.example.internal."); len(got) != 1 || got[0] != w.privateIP() {
		t.Fatalf("BIND answers %v for master-db, want [%s]", got, w.privateIP())
	}
	if strings.Contains(errs, b.Secret) || strings.Contains(out, b.Secret) {
		t.Error("the TSIG secret appears in the output")
	}
	// A rerun makes no update.
	out, _, code = eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "already published") {
		t.Errorf("rerun: exit %d, stdout %q; want already published", code, out)
	}
	out, errs, code = eipclaim(t, "status", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "rfc2136 master-db.example.internal.: A "+w.privateIP()+" TTL 30") {
		t.Errorf("status (exit %d) does not show the A record:\n%s\n%s", code, out, errs)
	}
}

// queryA asks server for name's A records.
func queryA(t *testing.T, server, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s at %s: %v", name, server, err)
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips
}
