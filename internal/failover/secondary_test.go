package failover_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestStepPrivateAddress: a role with only private_address claims it
// (no EIP), publishes it (the placement's Private address), and tells the
// hook EIPCLAIM_PRIVATE_ADDRESS; a role with an EIP and private_address
// claims both, the EIP first, under one epoch (the greater of the two
// claims') tagged on both.
func TestStepPrivateAddress(t *testing.T) {
	moto := testenv.SharedMoto(t)
	admin := ec2.NewFromConfig(moto.Config())
	is, err := testenv.NewWorld(moto.Config()).NewLoopbackInstances(t.Context(), "127.0.1.71", "127.0.1.72")
	if err != nil {
		t.Fatal(err)
	}
	self, other := is[0], is[1]
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI, other.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: self.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1",
	}
	env := filepath.Join(t.TempDir(), "env")
	hooks := &failover.Hooks{Role: "db", OnHolder: []string{"/bin/sh", "-c", "env | grep ^EIPCLAIM_ > " + env}}
	rec := &recorder{}
	spec := &config.Role{Name: "db", PrivateAddress: "127.0.1.210"}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: spec, Publishers: []publish.Publisher{rec}, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != "claimed" || o.PrivateAddressAction != "claimed" || o.PrivateAddress != "127.0.1.210" || o.PrivateAddressENI != self.ENI || o.AllocationID != "" || o.PublicIP != "" || o.Epoch != 1 {
		t.Errorf("private-only outcome %+v, want claimed 127.0.1.210 on %s, no EIP, epoch 1", o, self.ENI)
	}
	f := rec.facts.Load()
	if f == nil || f.Private().String() != "127.0.1.210" || f.PublicIP.IsValid() || f.InstanceID != self.ID {
		t.Errorf("published %+v, want the private address 127.0.1.210 on %s, no public IP", f, self.ID)
	}
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EIPCLAIM_PRIVATE_ADDRESS=127.0.1.210\n", "EIPCLAIM_EPOCH=1\n", "EIPCLAIM_PUBLIC_IP=\n", "EIPCLAIM_HOLDER=" + self.ID + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("hook env lacks %q:\n%s", want, b)
		}
	}
	_, _, ek := claim.SecondaryTagKeys("db")
	out, err := admin.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	if got := claim.TagValue(out.NetworkInterfaces[0].TagSet, ek); got != "1" {
		t.Errorf("the interface's %s = %q, want 1", ek, got)
	}

	// An EIP beside it: the EIP's first move is epoch 1, the address
	// stays at its interface's 5 (set here): one epoch, 5, on both.
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI}, Tags: []types.Tag{{Key: aws.String(ek), Value: aws.String("5")}}}); err != nil {
		t.Fatal(err)
	}
	eip, err := testenv.NewWorld(moto.Config()).NewEIP(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	both := &config.Role{Name: "db", AllocationID: eip.AllocationID, PrivateAddress: "127.0.1.210"}
	o, err = step.Run(t.Context(), failover.Request{Role: "db", Spec: both, Publishers: []publish.Publisher{rec}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != "claimed" || o.PrivateAddressAction != "already held" || o.PublicIP != eip.PublicIP || o.PrivateAddress != "127.0.1.210" {
		t.Errorf("EIP and private address: %+v, want the EIP claimed, the address already held", o)
	}
	a, err := admin.DescribeAddresses(t.Context(), &ec2.DescribeAddressesInput{AllocationIds: []string{eip.AllocationID}})
	if err != nil {
		t.Fatal(err)
	}
	out, err = admin.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{self.ENI}})
	if err != nil {
		t.Fatal(err)
	}
	eipEpoch, eniEpoch := claim.TagValue(a.Addresses[0].Tags, claim.TagEpoch), claim.TagValue(out.NetworkInterfaces[0].TagSet, ek)
	if eipEpoch != "5" || eniEpoch != "5" || o.Epoch != 5 {
		t.Errorf("epochs: outcome %d, the EIP's tag %q, the interface's %q; want one epoch, 5 (the greater of the EIP's 1 and the address's 5)", o.Epoch, eipEpoch, eniEpoch)
	}
	if f := rec.facts.Load(); f == nil || f.Private().String() != "127.0.1.210" || f.PublicIP.String() != eip.PublicIP {
		t.Errorf("published %+v, want the private address and the EIP", f)
	}
}

// TestStepPrivateAddressRefused: a role with an EIP and a private address
// held by a healthy instance: the EIP is claimed (and tagged), the
// private address refused; the step fails with exit 4 saying both.
func TestStepPrivateAddressRefused(t *testing.T) {
	moto := testenv.SharedMoto(t)
	admin := ec2.NewFromConfig(moto.Config())
	w := testenv.NewWorld(moto.Config())
	is, err := w.NewLoopbackInstances(t.Context(), "127.0.1.75", "127.0.1.76")
	if err != nil {
		t.Fatal(err)
	}
	self, other := is[0], is[1]
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{self.ENI, other.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AssignPrivateIpAddresses(t.Context(), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(other.ENI), PrivateIpAddresses: []string{"127.0.1.211"}}); err != nil {
		t.Fatal(err)
	}
	eip, err := w.NewEIP(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: self.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1",
	}
	rec := &recorder{}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: &config.Role{Name: "db", AllocationID: eip.AllocationID, PrivateAddress: "127.0.1.211"}, Publishers: []publish.Publisher{rec}})
	if o != nil || exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), "the EIP "+eip.PublicIP+" is claimed on "+self.ID+", but the private address 127.0.1.211 is not") || !strings.Contains(err.Error(), other.ID) {
		t.Fatalf("step: %+v, %v (exit %d); want exit 4 saying the EIP is claimed and the address held by %s", o, err, exitcode.Of(err), other.ID)
	}
	a, err := admin.DescribeAddresses(t.Context(), &ec2.DescribeAddressesInput{AllocationIds: []string{eip.AllocationID}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.Addresses[0].NetworkInterfaceId) != self.ENI || claim.TagValue(a.Addresses[0].Tags, claim.TagEpoch) != "1" {
		t.Errorf("the EIP %+v: want on %s, tagged epoch 1 (its claim stands)", a.Addresses[0], self.ENI)
	}
	if rec.facts.Load() != nil {
		t.Errorf("a step whose private address was refused published")
	}
}
