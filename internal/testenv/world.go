package testenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
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
	moto    *Moto // the server behind cfg, if it is one of this process's
	// loopSubnet is NewLoopbackInstances' subnet, once made.
	loopSubnet string
}

// NewWorld returns the world seen through cfg, usually [Moto.Config]. When
// cfg points at a [Moto] of this process, its instances' IMDS answer the
// network paths from that server's state ([Instance.IMDSOptions]).
func NewWorld(cfg aws.Config) *World {
	return &World{EC2: ec2.NewFromConfig(cfg), Route53: route53.NewFromConfig(cfg), moto: motoAt(aws.ToString(cfg.BaseEndpoint))}
}

// Instance is an instance in moto, with its primary interface (the one at
// device index 0).
type Instance struct {
	ID        string
	ENI       string // the primary interface, eni-...
	PrivateIP string // its primary private IP (10.x in moto)
	SubnetID  string
	moto      *Moto // the server it runs in, nil when the world's is unknown
}

// IMDSOptions is what the IMDS emulator of this instance says: its id, the
// world's region, userData ("" for none), and, when the world is on a
// [Moto] of this process, its interfaces and addresses as moto has them at
// each request ([IMDSOptions.Moto]).
func (i Instance) IMDSOptions(userData string) IMDSOptions {
	return IMDSOptions{InstanceID: i.ID, Region: MotoRegion, UserData: []byte(userData), Moto: i.moto}
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
		in := Instance{ID: aws.ToString(i.InstanceId), SubnetID: aws.ToString(i.SubnetId), moto: w.moto}
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

// LoopbackCIDR is the VPC of NewLoopbackInstances, and LoopbackSubnet its
// subnet: moto accepts them, and this machine routes every 127.0.0.0/8
// address to its loopback interface.
const (
	LoopbackCIDR   = "127.0.0.0/16"
	LoopbackSubnet = "127.0.1.0/24"
)

// NewLoopbackInstances runs one instance per ip (each in LoopbackSubnet)
// in a VPC on LoopbackCIDR, made at the first call: their private IPs are
// loopback addresses, so a health_check of them dials a listener on this
// machine for real (never moto's default 10.x, which must not be dialled).
func (w *World) NewLoopbackInstances(ctx context.Context, ips ...string) ([]Instance, error) {
	if w.loopSubnet == "" {
		vpc, err := w.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(LoopbackCIDR)})
		if err != nil {
			return nil, fmt.Errorf("CreateVpc %s: %w", LoopbackCIDR, err)
		}
		sn, err := w.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(LoopbackSubnet)})
		if err != nil {
			return nil, fmt.Errorf("CreateSubnet %s: %w", LoopbackSubnet, err)
		}
		w.loopSubnet = aws.ToString(sn.Subnet.SubnetId)
	}
	var is []Instance
	for _, ip := range ips {
		out, err := w.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-12c6146b"), InstanceType: types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(w.loopSubnet), PrivateIpAddress: aws.String(ip),
		})
		if err != nil {
			return nil, fmt.Errorf("RunInstances at %s: %w", ip, err)
		}
		i := out.Instances[0]
		in := Instance{ID: aws.ToString(i.InstanceId), SubnetID: aws.ToString(i.SubnetId), moto: w.moto}
		for _, ni := range i.NetworkInterfaces {
			if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
				in.ENI, in.PrivateIP = aws.ToString(ni.NetworkInterfaceId), aws.ToString(ni.PrivateIpAddress)
			}
		}
		if in.PrivateIP != ip {
			return nil, fmt.Errorf("RunInstances at %s: the instance's primary private IP is %q", ip, in.PrivateIP)
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

// FleetOptions says what [World.SeedFleet] creates. testenv imports no
// package of eipclaim, so the product's rules (its tag names, the CNAME of
// an EIP) come in as values.
type FleetOptions struct {
	Roles int    // how many roles, named r0000, r0001, ...
	Zone  string // the public hosted zone of the roles' CNAMEs, e.g. fleet.example.internal
	// RoleTag is the tag key naming an instance's role (controller.TagRole),
	// set on each role's holder and standby.
	RoleTag string
	// HolderTags are the tags a claim by holder leaves on its EIP (claim's
	// holder and epoch tags).
	HolderTags func(holder string) map[string]string
	// CNAME is the target of a role's record for its EIP's public IP
	// (publish.PublicDNSName in moto's region).
	CNAME func(publicIP string) string
}

// Fleet is the off-box controller's fleet in moto: each role its own EIP
// on its holder, one standby, a CNAME in one zone.
type Fleet struct {
	ZoneID string // without /hostedzone/
	Roles  []FleetRole
	opts   FleetOptions
}

// FleetRole is one role of a [Fleet].
type FleetRole struct {
	Name            string
	EIP             EIP
	Holder, Standby Instance
}

// Host is the role's DNS name in the fleet's zone, without the final dot.
func (f *Fleet) Host(r FleetRole) string { return r.Name + "." + f.opts.Zone }

// SeedFleet creates a fleet: 2n instances (holder and standby of each role,
// tagged RoleTag = the role's name), n EIPs each on its holder (tagged as a
// claim leaves it), a hosted zone with each role's CNAME true.
func (w *World) SeedFleet(ctx context.Context, o FleetOptions) (*Fleet, error) {
	n := o.Roles
	var insts []Instance
	for left := 2 * n; left > 0; left -= min(left, 500) {
		is, err := w.NewInstances(ctx, min(left, 500))
		if err != nil {
			return nil, err
		}
		insts = append(insts, is...)
	}
	zoneID, err := w.NewZone(ctx, o.Zone, false)
	if err != nil {
		return nil, err
	}
	f := &Fleet{ZoneID: zoneID, Roles: make([]FleetRole, n), opts: o}
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		f.Roles[i] = FleetRole{Name: fmt.Sprintf("r%04d", i), Holder: insts[2*i], Standby: insts[2*i+1]}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = w.seedFleetRole(ctx, o, &f.Roles[i])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var changes []r53types.Change
	for _, r := range f.Roles {
		changes = append(changes, r53types.Change{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String(f.Host(r) + "."), Type: r53types.RRTypeCname, TTL: aws.Int64(60),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(o.CNAME(r.EIP.PublicIP))}},
		}})
	}
	for chunk := range slices.Chunk(changes, 500) {
		_, err := w.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID), ChangeBatch: &r53types.ChangeBatch{Changes: chunk}})
		if err != nil {
			return nil, fmt.Errorf("ChangeResourceRecordSets %s: %w", zoneID, err)
		}
	}
	return f, nil
}

func (w *World) seedFleetRole(ctx context.Context, o FleetOptions, r *FleetRole) error {
	_, err := w.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{r.Holder.ID, r.Standby.ID}, Tags: []types.Tag{{Key: aws.String(o.RoleTag), Value: aws.String(r.Name)}}})
	if err != nil {
		return fmt.Errorf("CreateTags %s %s: %w", r.Holder.ID, r.Standby.ID, err)
	}
	if r.EIP, err = w.NewEIP(ctx, o.HolderTags(r.Holder.ID)); err != nil {
		return err
	}
	return w.Associate(ctx, r.EIP.AllocationID, r.Holder.ID)
}

// Config is the fleet's roles table: each role's EIP and CNAME.
func (f *Fleet) Config() string {
	var b strings.Builder
	b.WriteString("roles:\n")
	for _, r := range f.Roles {
		fmt.Fprintf(&b, "  %s:\n    allocation_id: %s\n    dns:\n      route53: {zone_id: %s, name: %s, ttl: 60}\n", r.Name, r.EIP.AllocationID, f.ZoneID, f.Host(r))
	}
	return b.String()
}

// FleetState is where each role's EIP is and what its CNAME says.
type FleetState struct {
	// Holders maps a role to the instance its EIP is on ("" when free).
	Holders map[string]string
	// CNAMEs maps a role to its record's target, without the final dot.
	CNAMEs map[string]string
}

// FleetState reads where every EIP of f is and every CNAME of its zone.
func (w *World) FleetState(ctx context.Context, f *Fleet) (FleetState, error) {
	addrs, err := w.Addresses(ctx)
	if err != nil {
		return FleetState{}, err
	}
	// moto leaves InstanceId empty for an association made by interface.
	owner := map[string]string{}
	for _, r := range f.Roles {
		owner[r.Holder.ENI], owner[r.Standby.ENI] = r.Holder.ID, r.Standby.ID
	}
	records := map[string]string{}
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.ZoneID)}
	for {
		out, err := w.Route53.ListResourceRecordSets(ctx, in)
		if err != nil {
			return FleetState{}, fmt.Errorf("ListResourceRecordSets %s: %w", f.ZoneID, err)
		}
		for _, s := range out.ResourceRecordSets {
			if s.Type == r53types.RRTypeCname && len(s.ResourceRecords) == 1 {
				records[strings.TrimSuffix(aws.ToString(s.Name), ".")] = strings.TrimSuffix(aws.ToString(s.ResourceRecords[0].Value), ".")
			}
		}
		if !out.IsTruncated {
			break
		}
		in = &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.ZoneID), StartRecordName: out.NextRecordName, StartRecordType: out.NextRecordType}
	}
	st := FleetState{Holders: map[string]string{}, CNAMEs: map[string]string{}}
	for _, r := range f.Roles {
		a := addrs[r.EIP.AllocationID]
		inst := aws.ToString(a.InstanceId)
		if inst == "" {
			inst = owner[aws.ToString(a.NetworkInterfaceId)]
		}
		st.Holders[r.Name] = inst
		st.CNAMEs[r.Name] = records[f.Host(r)]
	}
	return st, nil
}

// Problems lists what is not right in st after the holders in stopped
// stopped: an EIP on a stopped holder or on no one, on an instance not of
// its role, a CNAME not naming its EIP, an instance holding two EIPs
// ("double holder: ..."), a healthy holder's EIP elsewhere ("moved
// healthy: ..."). None: every stopped holder's EIP is on its standby.
func (f *Fleet) Problems(st FleetState, stopped map[string]bool) []string {
	var problems []string
	held := map[string]string{}
	for _, r := range f.Roles {
		inst := st.Holders[r.Name]
		switch {
		case inst == "":
			problems = append(problems, fmt.Sprintf("role %s: %s is free", r.Name, r.EIP.AllocationID))
		case stopped[inst]:
			problems = append(problems, fmt.Sprintf("role %s: %s still on the stopped %s", r.Name, r.EIP.AllocationID, inst))
		case !stopped[r.Holder.ID] && inst != r.Holder.ID:
			problems = append(problems, fmt.Sprintf("moved healthy: role %s: %s moved from the healthy %s to %s", r.Name, r.EIP.AllocationID, r.Holder.ID, inst))
		case inst != r.Holder.ID && inst != r.Standby.ID:
			problems = append(problems, fmt.Sprintf("role %s: %s on %s, no instance of the role", r.Name, r.EIP.AllocationID, inst))
		}
		if other, ok := held[inst]; ok && inst != "" {
			problems = append(problems, fmt.Sprintf("double holder: %s holds %s and %s", inst, other, r.EIP.AllocationID))
		}
		held[inst] = r.EIP.AllocationID
		if want := f.opts.CNAME(r.EIP.PublicIP); st.CNAMEs[r.Name] != want {
			problems = append(problems, fmt.Sprintf("role %s: CNAME %q, want %q", r.Name, st.CNAMEs[r.Name], want))
		}
	}
	return problems
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
// userData ("" for none), and i's network paths from moto (see
// [Instance.IMDSOptions]); it stops when the test ends. Point eipclaim at it
// with its Env. (Programs: Emulators.IMDS(i.IMDSOptions(userData)).)
func (w *TestWorld) IMDSFor(i Instance, userData string) *IMDS {
	w.t.Helper()
	return StartIMDS(w.t, i.IMDSOptions(userData))
}
