package failover_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"log/slog"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/table"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestStepOverlay: a role with only an overlay address claims it through
// the role table (the arbiter), points both route tables here, publishes
// it (the placement's Private address: the table's private_ip), tells
// the hook EIPCLAIM_OVERLAY_ADDRESS, and the table publisher's entry
// keeps the arbiter's holder and epoch.
func TestStepOverlay(t *testing.T) {
	moto := testenv.SharedMoto(t)
	admin := ec2.NewFromConfig(moto.Config())
	is, err := testenv.NewWorld(moto.Config()).NewLoopbackInstances(t.Context(), "127.0.1.81")
	if err != nil {
		t.Fatal(err)
	}
	self := is[0]
	n, err := admin.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for range 2 {
		rt, err := admin.CreateRouteTable(t.Context(), &ec2.CreateRouteTableInput{VpcId: n.NetworkInterfaces[0].VpcId})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, aws.ToString(rt.RouteTable.RouteTableId))
	}
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: tables, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("vpn")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ModifyNetworkInterfaceAttribute(t.Context(), &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(self.ENI), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	admS3 := s3.NewFromConfig(moto.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admS3.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	store := &table.Store{API: s3.NewFromConfig(moto.ConfigAs(testenv.CallerInstance), func(o *s3.Options) { o.UsePathStyle = true }), Bucket: "fleet-config", Key: "roles.json"}
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: self.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1",
	}
	env := filepath.Join(t.TempDir(), "env")
	hooks := &failover.Hooks{Role: "vpn", OnHolder: []string{"/bin/sh", "-c", "env | grep ^EIPCLAIM_ > " + env}}
	spec := &config.Role{Name: "vpn", Overlay: &config.Overlay{Address: "192.168.100.10", RouteTables: tables},
		DNS: &config.DNS{RFC2136: &config.RFC2136{Name: "vpn.example.internal."}}}
	rec := &recorder{}
	pubs := append(publish.For("vpn", &config.Role{Name: "vpn", Overlay: spec.Overlay}, publish.Deps{Table: store}), rec)
	o, err := step.Run(t.Context(), failover.Request{Role: "vpn", Spec: spec, Publishers: pubs, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != "claimed" || o.OverlayAction != "claimed" || o.OverlayAddress != "192.168.100.10" || o.ENI != self.ENI || o.AllocationID != "" || o.Epoch != 1 || len(o.OverlayRouteTables) != 2 {
		t.Errorf("overlay outcome %+v, want claimed 192.168.100.10 on %s, no EIP, epoch 1, two tables", o, self.ENI)
	}
	for _, r := range o.OverlayRouteTables {
		if !r.Here || r.ENI != self.ENI {
			t.Errorf("outcome's route table %+v, want pointing here (%s)", r, self.ENI)
		}
	}
	if f := rec.facts.Load(); f == nil || f.Private().String() != "192.168.100.10" || f.InstanceID != self.ID {
		t.Errorf("published %+v, want the overlay address on %s", f, self.ID)
	}
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EIPCLAIM_OVERLAY_ADDRESS=192.168.100.10\n", "EIPCLAIM_PRIVATE_ADDRESS=\n", "EIPCLAIM_EPOCH=1\n", "EIPCLAIM_HOLDER=" + self.ID + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("hook env lacks %q:\n%s", want, b)
		}
	}
	d, err := (&table.Store{API: admS3, Bucket: "fleet-config", Key: "roles.json"}).Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Roles["vpn"]; e.Holder != self.ID || e.Epoch != 1 || e.PrivateIP != "192.168.100.10" {
		t.Errorf("the table's entry after the step %+v, want holder %s, epoch 1, private_ip 192.168.100.10", e, self.ID)
	}

	// An EIP beside it: the EIP's move goes above the table's epoch (2),
	// the overlay stays (already held, 1): one epoch, 2, which the table
	// publisher records over the arbiter's 1 with both addresses.
	eip, err := testenv.NewWorld(moto.Config()).NewEIP(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	both := &config.Role{Name: "vpn", AllocationID: eip.AllocationID, Overlay: spec.Overlay}
	pubs = publish.For("vpn", both, publish.Deps{Table: store})
	o, err = step.Run(t.Context(), failover.Request{Role: "vpn", Spec: both, Publishers: pubs})
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != "claimed" || o.OverlayAction != "already held" || o.PublicIP != eip.PublicIP || o.OverlayAddress != "192.168.100.10" || o.Epoch != 2 {
		t.Errorf("EIP and overlay: %+v, want the EIP claimed, the overlay already held, epoch 2", o)
	}
	d, err = (&table.Store{API: admS3, Bucket: "fleet-config", Key: "roles.json"}).Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Roles["vpn"]; e.Holder != self.ID || e.Epoch != 2 || e.PrivateIP != "192.168.100.10" || e.PublicIP != eip.PublicIP {
		t.Errorf("the table's entry with both %+v, want holder %s, epoch 2, the overlay and the EIP", e, self.ID)
	}
}
