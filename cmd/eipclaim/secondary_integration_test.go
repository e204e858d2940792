package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestPrivateAddressCommands: a role with only private_address, end to
// end through the commands: check asks its calls, the claim assigns the
// address to this instance's interface (and the instance metadata's
// local-ipv4s shows it), status shows it, release unassigns it (and the
// metadata no longer shows it). (watch_secondary_integration_test.go
// watches it.)
func TestPrivateAddressCommands(t *testing.T) {
	moto := testenv.SharedMoto(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("EIPCLAIM_ROLE", "")
	t.Setenv("EIPCLAIM_CONFIG", "")
	tw := testenv.NewTestWorld(t, moto.Config())
	is, err := tw.World.NewLoopbackInstances(t.Context(), "127.0.1.81", "127.0.1.82")
	if err != nil {
		t.Fatal(err)
	}
	self, other := is[0], is[1]
	if _, err := tw.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI, other.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.1.220"
	md := tw.IMDSFor(self, "role: db\nroles:\n  db:\n    private_address: "+addr+"\n")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md.Endpoint)
	localIPv4s := func() string {
		t.Helper()
		c := awsimds.New(awsimds.Options{Endpoint: md.Endpoint})
		get := func(path string) string {
			out, err := c.GetMetadata(context.Background(), &awsimds.GetMetadataInput{Path: path})
			if err != nil {
				t.Fatalf("IMDS %s: %v", path, err)
			}
			defer out.Content.Close()
			b, _ := io.ReadAll(out.Content)
			return string(b)
		}
		return get("network/interfaces/macs/" + get("mac") + "/local-ipv4s")
	}

	out, errs, code := eipclaim(t, "check", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"ok      db         ec2:AssignPrivateIpAddresses", "ok      db         ec2:UnassignPrivateIpAddresses", "ok      db         private_address " + addr + " in the subnet of " + self.ENI} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}

	out, errs, code = eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "db: claimed private address "+addr+" on "+self.ID+" "+self.ENI+", epoch 1") {
		t.Fatalf("claim: exit %d\n%s\n%s", code, out, errs)
	}
	if got := localIPv4s(); got != self.PrivateIP+"\n"+addr {
		t.Errorf("local-ipv4s after the claim %q, want the primary and %s", got, addr)
	}

	out, errs, code = eipclaim(t, "status", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{`"private_address": {`, `"address": "` + addr + `"`, `"holder": "` + self.ID + `"`, `"eni_id": "` + self.ENI + `"`, `"epoch": "1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("status --json lacks %s:\n%s", want, out)
		}
	}
	checkSnakeCase(t, out)

	out, errs, code = eipclaim(t, "release", "--dry-run", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "would release the private address "+addr) {
		t.Errorf("release --dry-run: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = eipclaim(t, "release", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "released the private address "+addr) {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errs)
	}
	if got := localIPv4s(); got != self.PrivateIP {
		t.Errorf("local-ipv4s after the release %q, want the primary alone", got)
	}
}

// TestPrivateAddressLocalInterfaceFails: a claim whose address cannot be
// put on the local interface (here: local_interface lo, and the loopback
// VPC's address is one localaddr refuses, before any netlink call) keeps
// its claim and exits 5, its outcome saying why (--json local_interface);
// a release whose removal fails exits 1, the address released in EC2.
func TestPrivateAddressLocalInterfaceFails(t *testing.T) {
	moto := testenv.SharedMoto(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("EIPCLAIM_ROLE", "")
	t.Setenv("EIPCLAIM_CONFIG", "")
	tw := testenv.NewTestWorld(t, moto.Config())
	is, err := tw.World.NewLoopbackInstances(t.Context(), "127.0.1.84")
	if err != nil {
		t.Fatal(err)
	}
	self := is[0]
	if _, err := tw.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.1.221"
	md := tw.IMDSFor(self, "role: db\nroles:\n  db:\n    private_address: "+addr+"\n    local_interface: lo\n")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md.Endpoint)
	holds := func() bool {
		out, err := tw.EC2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range out.NetworkInterfaces[0].PrivateIpAddresses {
			if aws.ToString(p.PrivateIpAddress) == addr {
				return true
			}
		}
		return false
	}

	out, errs, code := eipclaim(t, "--json", "--timeout", "60s")
	if code != 5 || !strings.Contains(errs, "the private address is not on the local interface") {
		t.Errorf("claim: exit %d, want 5 naming the local interface\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{`"action": "claimed"`, `"local_interface": {`, `"op": "ensure"`, `"name": "lo"`, `"address": "` + addr + `"`, `"changed": false`, `a loopback address`} {
		if !strings.Contains(out, want) {
			t.Errorf("claim --json lacks %s:\n%s", want, out)
		}
	}
	checkSnakeCase(t, out)
	if !holds() {
		t.Errorf("%s does not hold %s: the local failure undid the claim", self.ENI, addr)
	}

	out, errs, code = eipclaim(t, "release", "--timeout", "60s")
	if code != 1 || !strings.Contains(out, "released the private address "+addr) || !strings.Contains(out, "could not be removed from lo") {
		t.Errorf("release: exit %d, want 1 saying it released the address and could not take it off lo\n%s\n%s", code, out, errs)
	}
	if holds() {
		t.Errorf("%s still holds %s after the release", self.ENI, addr)
	}
}
