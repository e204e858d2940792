package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestOverlayCommands: a role with only an overlay address, end to end
// through the commands: the claim writes the role table (the arbiter) and
// routes both tables here, check asks its calls, status shows the entry
// and the routes, release
// deletes the routes and frees the entry, and the next claim counts its
// epoch from it.
func TestOverlayCommands(t *testing.T) {
	moto := testenv.SharedMoto(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("EIPCLAIM_ROLE", "")
	t.Setenv("EIPCLAIM_CONFIG", "")
	tw := testenv.NewTestWorld(t, moto.Config())
	is, err := tw.World.NewLoopbackInstances(t.Context(), "127.0.1.91")
	if err != nil {
		t.Fatal(err)
	}
	self := is[0]
	n, err := tw.EC2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for range 2 {
		rt, err := tw.EC2.CreateRouteTable(t.Context(), &ec2.CreateRouteTableInput{VpcId: n.NetworkInterfaces[0].VpcId})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, aws.ToString(rt.RouteTable.RouteTableId))
	}
	if _, err := tw.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: tables, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("vpn")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.EC2.ModifyNetworkInterfaceAttribute(t.Context(), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(self.ENI), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.NewFromConfig(moto.Config(), func(o *s3.Options) { o.UsePathStyle = true }).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	const addr = "192.168.100.10"
	md := tw.IMDSFor(self, "role: vpn\nrepository: s3://fleet-config/roles.json\nroles:\n  vpn:\n    overlay: {address: "+addr+", route_tables: ["+strings.Join(tables, ", ")+"]}\n")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md.Endpoint)

	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "vpn: claimed overlay address "+addr+" routed to "+self.ID+" "+self.ENI+" in "+strings.Join(tables, ", ")+", epoch 1") {
		t.Fatalf("claim: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "table: s3://fleet-config/roles.json -> private "+addr) {
		t.Errorf("claim's publication of the table lacks the overlay address:\n%s", out)
	}

	out, errs, code = eipclaim(t, "check", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"ok      vpn        ec2:CreateRoute", "ok      vpn        ec2:ReplaceRoute", "ok      vpn        ec2:DeleteRoute", "ok      vpn        overlay address " + addr + " routable to " + self.ENI} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}

	out, errs, code = eipclaim(t, "status", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{`"overlay": {`, `"address": "` + addr + `"`, `"holder": "` + self.ID + `"`, `"epoch": 1`, `"route_table": "` + tables[1] + `"`, `"eni_id": "` + self.ENI + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("status --json lacks %s:\n%s", want, out)
		}
	}
	checkSnakeCase(t, out)

	out, errs, code = eipclaim(t, "release", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "released the overlay address "+addr+": deleted its routes in "+strings.Join(tables, ", ")) {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = eipclaim(t, "status", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "overlay "+addr) || !strings.Contains(out, tables[0]+"->-") {
		t.Errorf("status after the release: exit %d, want the overlay free, no routes\n%s\n%s", code, out, errs)
	}
	out, errs, code = eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "vpn: claimed overlay address "+addr) || !strings.Contains(out, "epoch 2") {
		t.Fatalf("claim after the release: exit %d\n%s\n%s", code, out, errs)
	}
}
