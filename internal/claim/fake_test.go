package claim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeEC2 is a small stateful stand-in for the part of EC2 the engine
// uses, for unit tests only (integration tests run against moto).
type fakeEC2 struct {
	mu        sync.Mutex
	instances map[string]*fakeInstance
	addrs     []*types.Address
	// fail, keyed by action, returns an error for the next calls.
	fail       map[string][]error
	associates int // AssociateAddress calls that changed something
	// beforeAssociate runs inside AssociateAddress before the check, to
	// simulate another claimer winning a race.
	beforeAssociate func()
	// beforeDisassociate runs before DisassociateAddress, likewise.
	beforeDisassociate func()
	// afterAssociate and afterDisassociate run once the call has changed
	// the state; an error they return is the call's answer, as when a
	// request was carried out but the caller was cancelled before the
	// answer came (the answer is lost).
	afterAssociate, afterDisassociate func() error
	createTags, deleteTags            int // calls
	// stops are the StopInstances calls, by instance, and forced whether
	// each asked Force; stuck keeps a stopped instance running (a stop
	// that does not take).
	stops  map[string]int
	forced []bool
	stuck  bool
	// stale are older states DescribeAddresses answers from, the first
	// one next, before the current state (EC2's eventual consistency);
	// see snapshot.
	stale [][]*types.Address
}

// snapshot copies the addresses' current state, for stale.
func (f *fakeEC2) snapshot() []*types.Address {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []*types.Address
	for _, a := range f.addrs {
		c := *a
		c.Tags = slices.Clone(a.Tags)
		s = append(s, &c)
	}
	return s
}

type fakeInstance struct {
	state  types.InstanceStateName
	status types.SummaryStatus
	nics   []types.InstanceNetworkInterface
}

var _ EC2API = (*fakeEC2)(nil)

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "injected " + code}
}

func (f *fakeEC2) injected(action string) error {
	if errs := f.fail[action]; len(errs) > 0 {
		f.fail[action] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeEC2) DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DescribeAddresses"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeAddressesOutput{}
	addrs := f.addrs
	if len(f.stale) > 0 {
		addrs, f.stale = f.stale[0], f.stale[1:]
	}
	for _, a := range addrs {
		if len(in.AllocationIds) > 0 && aws.ToString(a.AllocationId) != in.AllocationIds[0] {
			continue
		}
		if len(in.PublicIps) > 0 && aws.ToString(a.PublicIp) != in.PublicIps[0] {
			continue
		}
		if !matchTags(a, in.Filters) {
			continue
		}
		out.Addresses = append(out.Addresses, *a)
	}
	if len(in.AllocationIds) > 0 && len(out.Addresses) == 0 {
		return nil, apiErr("InvalidAllocationID.NotFound")
	}
	if len(in.PublicIps) > 0 && len(out.Addresses) == 0 {
		return nil, apiErr("InvalidAddress.NotFound")
	}
	return out, nil
}

func matchTags(a *types.Address, filters []types.Filter) bool {
	for _, f := range filters {
		key, ok := strings.CutPrefix(aws.ToString(f.Name), "tag:")
		if !ok {
			continue
		}
		found := false
		for _, t := range a.Tags {
			if aws.ToString(t.Key) == key && aws.ToString(t.Value) == f.Values[0] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (f *fakeEC2) eniOwner(eni string) (string, *types.InstanceNetworkInterface) {
	for id, inst := range f.instances {
		for i := range inst.nics {
			if aws.ToString(inst.nics[i].NetworkInterfaceId) == eni {
				return id, &inst.nics[i]
			}
		}
	}
	return "", nil
}

func (f *fakeEC2) AssociateAddress(ctx context.Context, in *ec2.AssociateAddressInput, _ ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	if f.beforeAssociate != nil {
		f.beforeAssociate()
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("AssociateAddress"); err != nil {
		return nil, err
	}
	for _, a := range f.addrs {
		if aws.ToString(a.AllocationId) != aws.ToString(in.AllocationId) {
			continue
		}
		if aws.ToString(a.NetworkInterfaceId) != "" && !aws.ToBool(in.AllowReassociation) {
			return nil, apiErr("Resource.AlreadyAssociated")
		}
		owner, nic := f.eniOwner(aws.ToString(in.NetworkInterfaceId))
		if nic == nil {
			return nil, apiErr("InvalidNetworkInterfaceID.NotFound")
		}
		f.associates++
		a.AssociationId = aws.String(fmt.Sprintf("eipassoc-%08d", f.associates))
		a.NetworkInterfaceId = in.NetworkInterfaceId
		a.InstanceId = aws.String(owner)
		a.PrivateIpAddress = nic.PrivateIpAddress
		if in.PrivateIpAddress != nil {
			a.PrivateIpAddress = in.PrivateIpAddress
		}
		if h := f.afterAssociate; h != nil {
			f.afterAssociate = nil
			if err := h(); err != nil {
				return nil, err
			}
		}
		return &ec2.AssociateAddressOutput{AssociationId: a.AssociationId}, nil
	}
	return nil, apiErr("InvalidAllocationID.NotFound")
}

func (f *fakeEC2) DisassociateAddress(ctx context.Context, in *ec2.DisassociateAddressInput, _ ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error) {
	if h := f.beforeDisassociate; h != nil {
		f.beforeDisassociate = nil
		h()
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.addrs {
		if aws.ToString(a.AssociationId) == aws.ToString(in.AssociationId) {
			a.AssociationId, a.NetworkInterfaceId, a.InstanceId, a.PrivateIpAddress = nil, nil, aws.String(""), nil
			if h := f.afterDisassociate; h != nil {
				f.afterDisassociate = nil
				if err := h(); err != nil {
					return nil, err
				}
			}
			return &ec2.DisassociateAddressOutput{}, nil
		}
	}
	return nil, apiErr("InvalidAssociationID.NotFound")
}

func (f *fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DescribeInstances"); err != nil {
		return nil, err
	}
	inst, ok := f.instances[in.InstanceIds[0]]
	if !ok {
		return nil, apiErr("InvalidInstanceID.NotFound")
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{{
		InstanceId:        aws.String(in.InstanceIds[0]),
		State:             &types.InstanceState{Name: inst.state},
		NetworkInterfaces: inst.nics,
		PrivateIpAddress:  inst.nics[0].PrivateIpAddress,
	}}}}}, nil
}

func (f *fakeEC2) DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	inst := f.instances[in.InstanceIds[0]]
	st := inst.status
	if st == "" {
		st = types.SummaryStatusOk
	}
	return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: []types.InstanceStatus{{
		InstanceId:     aws.String(in.InstanceIds[0]),
		InstanceStatus: &types.InstanceStatusSummary{Status: st},
		SystemStatus:   &types.InstanceStatusSummary{Status: types.SummaryStatusOk},
	}}}, nil
}

func (f *fakeEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	owner, nic := f.eniOwner(in.NetworkInterfaceIds[0])
	if nic == nil {
		return nil, apiErr("InvalidNetworkInterfaceID.NotFound")
	}
	return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: []types.NetworkInterface{{
		NetworkInterfaceId: nic.NetworkInterfaceId,
		Attachment:         &types.NetworkInterfaceAttachment{InstanceId: aws.String(owner)},
	}}}, nil
}

func (f *fakeEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the SDK sends nothing on a done context
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createTags++
	for _, a := range f.addrs {
		if aws.ToString(a.AllocationId) != in.Resources[0] {
			continue
		}
		for _, t := range in.Tags {
			a.Tags = setTag(a.Tags, aws.ToString(t.Key), aws.ToString(t.Value))
		}
	}
	return &ec2.CreateTagsOutput{}, nil
}

// DeleteTags deletes a tag given with a value only when its value is that
// one, as EC2 does.
func (f *fakeEC2) StopInstances(ctx context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("StopInstances"); err != nil {
		return nil, err
	}
	out := &ec2.StopInstancesOutput{}
	for _, id := range in.InstanceIds {
		inst, ok := f.instances[id]
		if !ok {
			return nil, apiErr("InvalidInstanceID.NotFound")
		}
		if f.stops == nil {
			f.stops = map[string]int{}
		}
		f.stops[id]++
		f.forced = append(f.forced, aws.ToBool(in.Force))
		prev := inst.state
		if !f.stuck {
			inst.state = types.InstanceStateNameStopping
		}
		out.StoppingInstances = append(out.StoppingInstances, types.InstanceStateChange{
			InstanceId: aws.String(id), PreviousState: &types.InstanceState{Name: prev}, CurrentState: &types.InstanceState{Name: inst.state},
		})
	}
	return out, nil
}

func (f *fakeEC2) DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, _ ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteTags++
	for _, a := range f.addrs {
		if aws.ToString(a.AllocationId) != in.Resources[0] {
			continue
		}
		for _, t := range in.Tags {
			a.Tags = slices.DeleteFunc(a.Tags, func(have types.Tag) bool {
				return aws.ToString(have.Key) == aws.ToString(t.Key) && (t.Value == nil || aws.ToString(have.Value) == aws.ToString(t.Value))
			})
		}
	}
	return &ec2.DeleteTagsOutput{}, nil
}

func setTag(tags []types.Tag, k, v string) []types.Tag {
	for i := range tags {
		if aws.ToString(tags[i].Key) == k {
			tags[i].Value = aws.String(v)
			return tags
		}
	}
	return append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
}

// nic builds an interface at a device index with private IPs, the first primary.
func nic(eni string, index int32, ips ...string) types.InstanceNetworkInterface {
	n := types.InstanceNetworkInterface{
		NetworkInterfaceId: aws.String(eni),
		Attachment:         &types.InstanceNetworkInterfaceAttachment{DeviceIndex: aws.Int32(index)},
		PrivateIpAddress:   aws.String(ips[0]),
	}
	for i, ip := range ips {
		n.PrivateIpAddresses = append(n.PrivateIpAddresses, types.InstancePrivateIpAddress{PrivateIpAddress: aws.String(ip), Primary: aws.Bool(i == 0)})
	}
	return n
}

func (f *fakeEC2) addr(alloc string) *types.Address {
	for _, a := range f.addrs {
		if aws.ToString(a.AllocationId) == alloc {
			return a
		}
	}
	return nil
}

// claimTagged is what the failover step does with the engine: Claim, then
// Tag.
func (e *Engine) claimTagged(ctx context.Context, req Request) (*Result, error) {
	res, err := e.Claim(ctx, req)
	if err == nil {
		e.Tag(ctx, res)
	}
	return res, err
}

// The fake has no secondary private IPs: their claim is tested against
// moto behind the gate's strict layer (secondary_test.go), which answers as
// AWS does.
var errNoSecondary = apiErr("UnsupportedOperation")

func (f *fakeEC2) AssignPrivateIpAddresses(context.Context, *ec2.AssignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.AssignPrivateIpAddressesOutput, error) {
	return nil, errNoSecondary
}

func (f *fakeEC2) UnassignPrivateIpAddresses(context.Context, *ec2.UnassignPrivateIpAddressesInput, ...func(*ec2.Options)) (*ec2.UnassignPrivateIpAddressesOutput, error) {
	return nil, errNoSecondary
}

func (f *fakeEC2) DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return nil, errNoSecondary
}

// The overlay's calls are proven on moto (overlay_test.go): the fake has
// no route tables.
func (f *fakeEC2) DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	return nil, fmt.Errorf("fake: no route tables")
}

func (f *fakeEC2) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return nil, fmt.Errorf("fake: no VPCs")
}

func (f *fakeEC2) CreateRoute(context.Context, *ec2.CreateRouteInput, ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error) {
	return nil, fmt.Errorf("fake: no route tables")
}

func (f *fakeEC2) ReplaceRoute(context.Context, *ec2.ReplaceRouteInput, ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error) {
	return nil, fmt.Errorf("fake: no route tables")
}

func (f *fakeEC2) DeleteRoute(context.Context, *ec2.DeleteRouteInput, ...func(*ec2.Options)) (*ec2.DeleteRouteOutput, error) {
	return nil, fmt.Errorf("fake: no route tables")
}
