package observe

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// fakeEC2 is an in-memory EC2 of addresses and instances that answers the
// three reads as EC2 does: filters ANDed, a filter's values ORed, * and ?
// wildcards in values, pages of MaxResults, at most 100 ids named in a
// DescribeInstanceStatus, an unknown id named there an error.
type fakeEC2 struct {
	mu        sync.Mutex
	addresses []types.Address
	instances []types.Instance
	enis      []types.NetworkInterface
	tables    []types.RouteTable
	status    map[string][2]types.SummaryStatus // by instance; absent: ok, ok
	calls     map[string]int
	hideFrom  map[string]bool // instance ids DescribeInstanceStatus does not know yet when named
	fail      error           // every call fails with it
}

var _ EC2API = (*fakeEC2)(nil)

func (f *fakeEC2) count(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	return f.fail
}

func match(pattern, value string) bool {
	ok, err := path.Match(pattern, value) // * and ? as EC2's filters treat them
	return err == nil && ok
}

func anyMatch(values []string, v string) bool {
	return slices.ContainsFunc(values, func(p string) bool { return match(p, v) })
}

func tagMatch(tags []types.Tag, key string, values []string) bool {
	return slices.ContainsFunc(tags, func(t types.Tag) bool { return aws.ToString(t.Key) == key && anyMatch(values, aws.ToString(t.Value)) })
}

func (f *fakeEC2) DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	if err := f.count("DescribeAddresses"); err != nil {
		return nil, err
	}
	if len(in.AllocationIds) > 0 || len(in.PublicIps) > 0 {
		return nil, fmt.Errorf("the observer names EIPs by filter only")
	}
	out := &ec2.DescribeAddressesOutput{}
	for _, a := range f.addresses {
		ok := true
		for _, fl := range in.Filters {
			name := aws.ToString(fl.Name)
			switch {
			case name == "allocation-id":
				ok = ok && anyMatch(fl.Values, aws.ToString(a.AllocationId))
			case name == "public-ip":
				ok = ok && anyMatch(fl.Values, aws.ToString(a.PublicIp))
			case name == "domain":
				ok = ok && anyMatch(fl.Values, "vpc")
			case len(name) > 4 && name[:4] == "tag:":
				ok = ok && tagMatch(a.Tags, name[4:], fl.Values)
			default:
				return nil, fmt.Errorf("fake: filter %s", name)
			}
		}
		if ok {
			out.Addresses = append(out.Addresses, a)
		}
	}
	return out, nil
}

func (f *fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.count("DescribeInstances"); err != nil {
		return nil, err
	}
	var hits []types.Instance
	for _, i := range f.instances {
		ok := true
		for _, fl := range in.Filters {
			switch name := aws.ToString(fl.Name); name {
			case "tag-key":
				ok = ok && slices.ContainsFunc(i.Tags, func(t types.Tag) bool { return anyMatch(fl.Values, aws.ToString(t.Key)) })
			case "instance-id":
				ok = ok && anyMatch(fl.Values, aws.ToString(i.InstanceId))
			case "network-interface.network-interface-id":
				ok = ok && slices.ContainsFunc(i.NetworkInterfaces, func(n types.InstanceNetworkInterface) bool {
					return anyMatch(fl.Values, aws.ToString(n.NetworkInterfaceId))
				})
			default:
				return nil, fmt.Errorf("fake: filter %s", name)
			}
		}
		if ok {
			hits = append(hits, i)
		}
	}
	page, next, err := paginate(hits, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: page}}, NextToken: next}, nil
}

func (f *fakeEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if err := f.count("DescribeNetworkInterfaces"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeNetworkInterfacesOutput{}
	for _, n := range f.enis {
		ok := true
		for _, fl := range in.Filters {
			switch name := aws.ToString(fl.Name); name {
			case "addresses.private-ip-address":
				// Every private address of the interface, as EC2 matches it.
				ok = ok && slices.ContainsFunc(privateAddresses(n), func(a string) bool { return anyMatch(fl.Values, a) })
			default:
				return nil, fmt.Errorf("fake: filter %s", name)
			}
		}
		if ok {
			out.NetworkInterfaces = append(out.NetworkInterfaces, n)
		}
	}
	return out, nil
}

func (f *fakeEC2) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := f.count("DescribeRouteTables"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeRouteTablesOutput{}
	for _, rt := range f.tables {
		ok := true
		for _, fl := range in.Filters {
			switch name := aws.ToString(fl.Name); name {
			case "route-table-id":
				ok = ok && anyMatch(fl.Values, aws.ToString(rt.RouteTableId))
			default:
				return nil, fmt.Errorf("fake: filter %s", name)
			}
		}
		if ok {
			out.RouteTables = append(out.RouteTables, rt)
		}
	}
	return out, nil
}

func (f *fakeEC2) DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	if err := f.count("DescribeInstanceStatus"); err != nil {
		return nil, err
	}
	if !aws.ToBool(in.IncludeAllInstances) {
		return nil, fmt.Errorf("fake: the observer asks IncludeAllInstances")
	}
	if len(in.InstanceIds) > 100 || (len(in.InstanceIds) > 0 && in.MaxResults != nil) {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterCombination", Message: "at most 100 ids, and no MaxResults with ids"}
	}
	var sts []types.InstanceStatus
	for _, i := range f.instances {
		id := aws.ToString(i.InstanceId)
		if len(in.InstanceIds) > 0 && !slices.Contains(in.InstanceIds, id) {
			continue
		}
		st := f.status[id]
		if st[0] == "" {
			st = [2]types.SummaryStatus{types.SummaryStatusOk, types.SummaryStatusOk}
		}
		sts = append(sts, types.InstanceStatus{InstanceId: i.InstanceId,
			InstanceStatus: &types.InstanceStatusSummary{Status: st[0]}, SystemStatus: &types.InstanceStatusSummary{Status: st[1]}})
	}
	for _, id := range in.InstanceIds {
		if f.hideFrom[id] || !slices.ContainsFunc(f.instances, func(i types.Instance) bool { return aws.ToString(i.InstanceId) == id }) {
			return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID '" + id + "' does not exist"}
		}
	}
	if len(in.InstanceIds) > 0 {
		return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: sts}, nil
	}
	page, next, err := paginate(sts, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: page, NextToken: next}, nil
}

func paginate[T any](all []T, max *int32, token *string) ([]T, *string, error) {
	size := int(aws.ToInt32(max))
	if size == 0 {
		size = len(all) + 1
	}
	if size < 5 || size > 1000 {
		return nil, nil, &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "MaxResults from 5 to 1000"}
	}
	from := 0
	if t := aws.ToString(token); t != "" {
		from, _ = strconv.Atoi(t)
	}
	to := min(from+size, len(all))
	var next *string
	if to < len(all) {
		next = aws.String(strconv.Itoa(to))
	}
	return all[from:to], next, nil
}

// world builds the fake's contents.
type world struct {
	f *fakeEC2
	n int
}

func newWorld() *world {
	return &world{f: &fakeEC2{status: map[string][2]types.SummaryStatus{}, hideFrom: map[string]bool{}}}
}

// instance adds an instance; role "" for none. It returns its id and ENI.
func (w *world) instance(role string, state types.InstanceStateName) (id, eni string) {
	w.n++
	id, eni = fmt.Sprintf("i-%04d", w.n), fmt.Sprintf("eni-%04d", w.n)
	i := types.Instance{
		InstanceId: aws.String(id), State: &types.InstanceState{Name: state},
		PrivateIpAddress:  aws.String(fmt.Sprintf("10.0.%d.%d", w.n/250, w.n%250+1)),
		LaunchTime:        aws.Time(time.Date(2026, 1, 1, 0, w.n, 0, 0, time.UTC)),
		NetworkInterfaces: []types.InstanceNetworkInterface{{NetworkInterfaceId: aws.String(eni)}},
	}
	if role != "" {
		i.Tags = []types.Tag{{Key: aws.String(TagRole), Value: aws.String(role)}}
	}
	w.f.instances = append(w.f.instances, i)
	return id, eni
}

// eip adds an address held through eni (by instance id too when byID),
// "" for free, with tags.
func (w *world) eip(n int, eni, instance string, tags map[string]string) (alloc, ip string) {
	alloc, ip = fmt.Sprintf("eipalloc-%04d", n), fmt.Sprintf("198.51.%d.%d", n/250, n%250+1)
	a := types.Address{AllocationId: aws.String(alloc), PublicIp: aws.String(ip), Domain: types.DomainTypeVpc}
	if eni != "" {
		a.NetworkInterfaceId, a.AssociationId = aws.String(eni), aws.String("eipassoc-"+alloc[9:])
		a.PrivateIpAddress = aws.String("10.9.9.9")
		for _, i := range w.f.instances {
			if aws.ToString(i.NetworkInterfaces[0].NetworkInterfaceId) == eni {
				a.PrivateIpAddress = i.PrivateIpAddress
			}
		}
	}
	if instance != "" {
		a.InstanceId = aws.String(instance)
	}
	for k, v := range tags {
		a.Tags = append(a.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	w.f.addresses = append(w.f.addresses, a)
	return alloc, ip
}
