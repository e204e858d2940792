package testenv

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// World is the emulated AWS account that the tests, the demo and the
// benchmark seed: instances with their interfaces, Elastic IPs with their
// tags and Route 53 hosted zones, all in moto, and for any of its instances
// the IMDS options that say "you are this instance".
//
// Programs use World, whose methods return errors; tests use [TestWorld],
// whose methods of the same names (without the context) fail the test
// instead. An instance with an Elastic IP, in a test:
//
//	moto := testenv.SharedMoto(t)
//	w := testenv.NewTestWorld(t, moto.Config())
//	inst := w.NewInstance()
//	eip := w.NewEIP(map[string]string{"eip-pool": "web"}) // nil: no tags
//	w.Associate(eip.AllocationID, inst.ID)
//	zoneID := w.NewZone("example.internal", true)         // private
//	md := w.IMDSFor(inst, "role: db\n...")                // its user-data
//	// eipclaim runs as inst with moto.Env() and md.Env().
type World struct {
	EC2     *ec2.Client
	Route53 *route53.Client
}

// NewWorld returns the world seen through cfg, usually [Moto.Config].
func NewWorld(cfg aws.Config) *World {
	return &World{EC2: ec2.NewFromConfig(cfg), Route53: route53.NewFromConfig(cfg)}
}

// Instance is an instance in moto, with its primary interface (the one at
// device index 0).
type Instance struct {
	ID        string
	ENI       string // the primary interface, eni-...
	PrivateIP string // its primary private IP (10.x in moto)
	SubnetID  string
}

// IMDSOptions is what the IMDS emulator of this instance says: its id, the
// world's region, and userData ("" for none).
func (i Instance) IMDSOptions(userData string) IMDSOptions {
	return IMDSOptions{InstanceID: i.ID, Region: MotoRegion, UserData: []byte(userData)}
}

// EIP is an Elastic IP in moto.
type EIP struct {
	AllocationID string
	PublicIP     string // 127.x in moto
}

// NewInstances runs n instances in one RunInstances call.
func (w *World) NewInstances(ctx context.Context, n int) ([]Instance, error) {
	out, err := w.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
	})
	if err != nil {
		return nil, fmt.Errorf("RunInstances: %w", err)
	}
	if len(out.Instances) != n {
		return nil, fmt.Errorf("RunInstances: %d instances, want %d", len(out.Instances), n)
	}
	is := make([]Instance, 0, n)
	for _, i := range out.Instances {
		in := Instance{ID: aws.ToString(i.InstanceId), SubnetID: aws.ToString(i.SubnetId)}
		for _, ni := range i.NetworkInterfaces {
			if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
				in.ENI, in.PrivateIP = aws.ToString(ni.NetworkInterfaceId), aws.ToString(ni.PrivateIpAddress)
			}
		}
		if in.ENI == "" {
			return nil, fmt.Errorf("RunInstances: instance %s has no interface at device index 0", in.ID)
		}
		is = append(is, in)
	}
	return is, nil
}

// NewInstance runs one instance.
func (w *World) NewInstance(ctx context.Context) (Instance, error) {
	is, err := w.NewInstances(ctx, 1)
	if err != nil {
		return Instance{}, err
	}
	return is[0], nil
}

// NewEIP allocates an Elastic IP (VPC) tagged with tags, free.
func (w *World) NewEIP(ctx context.Context, tags map[string]string) (EIP, error) {
	in := &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}
	if len(tags) > 0 {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeElasticIp}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
		in.TagSpecifications = []types.TagSpecification{spec}
	}
	out, err := w.EC2.AllocateAddress(ctx, in)
	if err != nil {
		return EIP{}, fmt.Errorf("AllocateAddress: %w", err)
	}
	return EIP{AllocationID: aws.ToString(out.AllocationId), PublicIP: aws.ToString(out.PublicIp)}, nil
}

// Associate puts the Elastic IP on the instance (its primary interface), as
// a previous claim would have.
func (w *World) Associate(ctx context.Context, allocationID, instanceID string) error {
	_, err := w.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(allocationID), InstanceId: aws.String(instanceID)})
	if err != nil {
		return fmt.Errorf("AssociateAddress %s to %s: %w", allocationID, instanceID, err)
	}
	return nil
}

// zoneRefs makes the hosted zones' caller references unique.
var zoneRefs atomic.Int64

// NewZone creates a hosted zone and returns its id, without /hostedzone/.
// A private zone is associated with the region's default VPC, where the
// instances run.
func (w *World) NewZone(ctx context.Context, name string, private bool) (string, error) {
	in := &route53.CreateHostedZoneInput{
		Name:            aws.String(name),
		CallerReference: aws.String(fmt.Sprintf("testenv-%d-%d", time.Now().UnixNano(), zoneRefs.Add(1))),
	}
	if private {
		vpcs, err := w.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
		if err != nil {
			return "", fmt.Errorf("DescribeVpcs: %w", err)
		}
		if len(vpcs.Vpcs) == 0 {
			return "", fmt.Errorf("private zone %s: no default VPC", name)
		}
		in.HostedZoneConfig = &r53types.HostedZoneConfig{PrivateZone: true}
		in.VPC = &r53types.VPC{VPCId: vpcs.Vpcs[0].VpcId, VPCRegion: r53types.VPCRegion(w.EC2.Options().Region)}
	}
	out, err := w.Route53.CreateHostedZone(ctx, in)
	if err != nil {
		return "", fmt.Errorf("CreateHostedZone %s: %w", name, err)
	}
	return strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/"), nil
}

// Address returns the Elastic IP as EC2 reports it (DescribeAddresses is
// the truth about who holds it).
func (w *World) Address(ctx context.Context, allocationID string) (types.Address, error) {
	out, err := w.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{allocationID}})
	if err != nil {
		return types.Address{}, fmt.Errorf("DescribeAddresses %s: %w", allocationID, err)
	}
	if len(out.Addresses) != 1 {
		return types.Address{}, fmt.Errorf("DescribeAddresses %s: %d addresses, want 1", allocationID, len(out.Addresses))
	}
	return out.Addresses[0], nil
}

// Addresses returns every Elastic IP by allocation id.
func (w *World) Addresses(ctx context.Context) (map[string]types.Address, error) {
	out, err := w.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return nil, fmt.Errorf("DescribeAddresses: %w", err)
	}
	m := make(map[string]types.Address, len(out.Addresses))
	for _, a := range out.Addresses {
		m[aws.ToString(a.AllocationId)] = a
	}
	return m, nil
}

// TestWorld is a [World] for one test: its methods fail the test at the
// first error, and IMDSFor's emulator stops when the test ends.
type TestWorld struct {
	*World
	t testing.TB
}

// NewTestWorld returns the world seen through cfg, usually [Moto.Config],
// for t.
func NewTestWorld(t testing.TB, cfg aws.Config) *TestWorld {
	return &TestWorld{World: NewWorld(cfg), t: t}
}

// check fails the test if err is not nil.
func (w *TestWorld) check(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("testenv: %v", err)
	}
}

// NewInstances runs n instances in one RunInstances call.
func (w *TestWorld) NewInstances(n int) []Instance {
	w.t.Helper()
	v, err := w.World.NewInstances(w.t.Context(), n)
	w.check(err)
	return v
}

// NewInstance runs one instance.
func (w *TestWorld) NewInstance() Instance {
	w.t.Helper()
	v, err := w.World.NewInstance(w.t.Context())
	w.check(err)
	return v
}

// NewEIP allocates an Elastic IP tagged with tags, free.
func (w *TestWorld) NewEIP(tags map[string]string) EIP {
	w.t.Helper()
	v, err := w.World.NewEIP(w.t.Context(), tags)
	w.check(err)
	return v
}

// Associate puts the Elastic IP on the instance.
func (w *TestWorld) Associate(allocationID, instanceID string) {
	w.t.Helper()
	w.check(w.World.Associate(w.t.Context(), allocationID, instanceID))
}

// NewZone creates a hosted zone and returns its id, without /hostedzone/.
func (w *TestWorld) NewZone(name string, private bool) string {
	w.t.Helper()
	v, err := w.World.NewZone(w.t.Context(), name, private)
	w.check(err)
	return v
}

// Address returns the Elastic IP as EC2 reports it.
func (w *TestWorld) Address(allocationID string) types.Address {
	w.t.Helper()
	v, err := w.World.Address(w.t.Context(), allocationID)
	w.check(err)
	return v
}

// Addresses returns every Elastic IP by allocation id.
func (w *TestWorld) Addresses() map[string]types.Address {
	w.t.Helper()
	v, err := w.World.Addresses(w.t.Context())
	w.check(err)
	return v
}

// IMDSFor starts an IMDS emulator that says it is the instance i and serves
// userData ("" for none); it stops when the test ends. Point eipclaim at it
// with its Env. (Programs: Emulators.IMDS(i.IMDSOptions(userData)).)
func (w *TestWorld) IMDSFor(i Instance, userData string) *IMDS {
	w.t.Helper()
	return StartIMDS(w.t, i.IMDSOptions(userData))
}
