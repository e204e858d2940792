// Package observe is a read-only view of EC2 for many roles at once: each
// role's Elastic IP(s) with their holder, association, interface, private
// address, tags and epoch, the holder's state, status checks and probe,
// and the role's candidates (the instances tagged eipclaim:role with the
// role's name), read in batched requests whose number grows only with
// pages, never with roles: one DescribeAddresses for the fixed EIPs (by
// filters, so that a missing EIP is absent for its role alone), one per
// pool, one DescribeNetworkInterfaces for the secondary private IPs
// (private_address) of every role that has one (by the
// addresses.private-ip-address filter, many values at once), one
// DescribeRouteTables for the overlay addresses' route tables (by the
// route-table-id filter) with one read of the role table, one
// DescribeInstances for the candidates (and one for holders that carry no
// tag, when there are any), one DescribeInstanceStatus.
//
// It decides nothing: internal/decide judges what it observed.
package observe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/decide"
	"github.com/eipclaim/eipclaim/internal/epoch"
	"github.com/eipclaim/eipclaim/internal/retry"
	"github.com/eipclaim/eipclaim/internal/table"
)

// TagRole is the instance tag that makes an instance a candidate of a
// role: its value is the role's name.
const TagRole = "eipclaim:role"

// EC2API is the part of the EC2 API an Observer reads; *ec2.Client has it.
type EC2API interface {
	DescribeAddresses(ctx context.Context, in *ec2.DescribeAddressesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
}

// TableReader reads the role table (the overlay's arbiter); *table.Store
// has it.
type TableReader interface {
	ReadSnapshot(ctx context.Context) (*table.Snapshot, error)
}

var _ EC2API = (*ec2.Client)(nil)

// Observer reads the state of roles.
type Observer struct {
	EC2 EC2API
	// Retry runs each request until it succeeds, fails for good or ctx
	// ends (retry.Retrier.Do); nil calls it once.
	Retry func(ctx context.Context, op string, fn func(context.Context) error) error
	// Dial runs the health_check probes; net.Dialer.DialContext when nil.
	Dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	HealthTimeout time.Duration // one probe; 3s when zero
	// Probes bounds the probes run at once; DefaultProbes when zero.
	Probes int
	Log    *slog.Logger // one Debug line per observation; nil: none
	// Table is the role table, read once per observation (an overlay
	// role's entry names its holder; the other roles' publications may
	// compare on the read: Fleet.Table); nil when the configuration has
	// no repository.
	Table TableReader
}

// DefaultProbes is how many probes an Observer runs at once by default.
const DefaultProbes = 64

// Limits of one request, as EC2 documents them: values of one filter
// (kept well under what EC2 accepts), instance ids of a
// DescribeInstanceStatus that names them, items of one page.
const (
	maxFilterValues = 200
	maxStatusIDs    = 100
	pageSize        = 1000
)

// Fleet is what was observed of every role asked for.
type Fleet struct {
	Roles map[string]*Role
	// Table is the role table as read once for the observation (Observer
	// Table set); nil when it was not read.
	Table *table.Snapshot
}

// Role is what was observed of one role.
type Role struct {
	Name string
	Spec *config.Role
	// Addresses are the role's EIP (one), or every EIP of its pool.
	Addresses []Address
	// Candidates are the instances tagged eipclaim:role with the role's
	// name (exactly), in no order: decide.Eligible and decide.Rank judge them.
	Candidates []decide.Candidate
	// Private is the role's secondary private IP (private_address) as
	// observed; nil when the role has none.
	Private *Private
	// Overlay is the role's overlay address (overlay) as observed; nil
	// when the role has none.
	Overlay *Overlay
	// Err says why the role could not be observed (its EIP does not
	// exist, its pool has none); the other roles are not concerned.
	Err error
}

// Private is a role's secondary private IP as observed: the interface
// that has it among its private addresses, in the VPC of the role's
// candidates.
type Private struct {
	Address string
	ENI     string // the interface holding it; "" when free
	// HolderIP is the holder interface's primary private IP (the health
	// check's target); Primary says the address is that primary address
	// itself (it cannot move: the step says so).
	HolderIP string
	Primary  bool
	// HolderTag and EpochTag are the holder interface's
	// eipclaim:holder:<role> and eipclaim:epoch:<role> tags; Epoch the
	// latter parsed (0 when absent), EpochErr why it is not an epoch.
	HolderTag, EpochTag string
	Epoch               int64
	EpochErr            error
	// Holder is what is known of the instance the interface is attached
	// to (Instance "" when free, or on an interface of no instance).
	Holder decide.Holder

	found []eniSeen // the interfaces that have the address, in any VPC
}

// Overlay is a role's overlay address as observed: the role table's
// entry (the arbiter of its compare-and-swap: the one home of its holder
// and epoch) and each listed route table's /32 route of it.
type Overlay struct {
	Address string
	// Entry is the role's entry in the role table (zero when none).
	Entry table.Entry
	// Routes are the listed tables' routes of the address, in the order
	// listed (ENI "" where a table has none; Instance filled from the
	// instances read when EC2 did not name it).
	Routes []claim.TableRoute
	// Holder is the instance the entry names, else the one the routes
	// point at (as the claim decides); Instance "" when neither names
	// one. ENI is the interface a route points at on it.
	Holder decide.Holder
	ENI    string
	// Drift lists the tables whose route does not point at the holder: a
	// claim by the holder repairs them (no new epoch).
	Drift []string
}

// Held reports whether the entry names a holder or a route points
// somewhere.
func (v *Overlay) Held() bool {
	return v.Entry.Holder != "" || slices.ContainsFunc(v.Routes, func(r claim.TableRoute) bool { return r.ENI != "" })
}

// eniSeen is an interface that has a role's private address.
type eniSeen struct {
	id, vpc, instance, primaryIP string
	tags                         map[string]string
}

// Address is one EIP as observed.
type Address struct {
	AllocationID  string
	PublicIP      string
	AssociationID string
	ENI           string // the interface holding it; "" when free
	PrivateIP     string // the private address it is associated with
	Tags          map[string]string
	// Epoch is the EIP's eipclaim:epoch, parsed once (0 when absent);
	// EpochErr says why the tag is not an epoch, nil when it is or is absent.
	Epoch    int64
	EpochErr error
	// Holder is what is known of the instance holding it (Instance "" when
	// free, or on an interface of no instance: see Free).
	Holder decide.Holder
}

// Free reports whether no one holds the address.
func (a *Address) Free() bool { return a.ENI == "" && a.Holder.Instance == "" }

// ErrNotFound marks a role whose EIP (or pool) EC2 does not show.
var ErrNotFound = errors.New("not found")

// instance is what one DescribeInstances gave of an instance.
type instance struct {
	id, state, privateIP, role, vpc string
	launch                          time.Time
	enis                            []string
}

// Fleet observes the roles named: the batched reads, then the probes.
// A request that fails for good fails the whole observation (every role
// needs it); a role whose EIP is absent is observed with Err set.
func (o *Observer) Fleet(ctx context.Context, roles map[string]*config.Role) (*Fleet, error) {
	f := &Fleet{Roles: map[string]*Role{}}
	for name, spec := range roles {
		if spec != nil {
			f.Roles[name] = &Role{Name: name, Spec: spec}
		}
	}
	if err := o.addresses(ctx, f); err != nil {
		return nil, err
	}
	if err := o.privates(ctx, f); err != nil {
		return nil, err
	}
	if err := o.overlays(ctx, f); err != nil {
		return nil, err
	}
	insts, err := o.instances(ctx, f)
	if err != nil {
		return nil, err
	}
	status, err := o.status(ctx, insts)
	if err != nil {
		return nil, err
	}
	o.assemble(f, insts, status)
	o.probe(ctx, f, insts)
	if o.Log != nil {
		o.Log.Debug("observed", "roles", len(f.Roles), "instances", len(insts), "status_checks", len(status))
	}
	return f, nil
}

// RoleOf returns the role an instance is tagged with (eipclaim:role), ""
// when it has none or EC2 does not know it (terminated long ago).
func (o *Observer) RoleOf(ctx context.Context, id string) (string, error) {
	insts := map[string]*instance{}
	err := o.describeInstances(ctx, []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}, insts)
	if err != nil {
		return "", fmt.Errorf("describe instance %s: %w", id, err)
	}
	if i := insts[id]; i != nil {
		return i.role, nil
	}
	return "", nil
}

func (o *Observer) call(ctx context.Context, op string, fn func(context.Context) error) error {
	if o.Retry == nil {
		return fn(ctx)
	}
	return o.Retry(ctx, op, fn)
}

// addresses reads every role's EIPs: the fixed ones by allocation-id and
// public-ip filters (a filter value that matches nothing is no error, as
// an unknown id in AllocationIds would be for the whole call), each pool
// by its tags.
func (o *Observer) addresses(ctx context.Context, f *Fleet) error {
	byAlloc, byIP := map[string][]*Role{}, map[string][]*Role{}
	pools := map[string][]*Role{}
	for _, name := range slices.Sorted(maps.Keys(f.Roles)) {
		r := f.Roles[name]
		switch {
		case r.Spec.Pool != nil:
			key := claim.DescribePool(r.Spec.Pool)
			pools[key] = append(pools[key], r)
		case r.Spec.AllocationID != "":
			byAlloc[r.Spec.AllocationID] = append(byAlloc[r.Spec.AllocationID], r)
		case r.Spec.PublicIP != "":
			byIP[r.Spec.PublicIP] = append(byIP[r.Spec.PublicIP], r)
		case r.Spec.PrivateKind() != "":
			// Only a secondary private IP or an overlay address: privates
			// or overlays reads it.
		default:
			r.Err = fmt.Errorf("role %s names no EIP: want allocation_id, public_ip or pool", name)
		}
	}
	seen := map[string]types.Address{}
	for _, by := range []struct {
		filter string
		want   map[string][]*Role
	}{{"allocation-id", byAlloc}, {"public-ip", byIP}} {
		for chunk := range slices.Chunk(slices.Sorted(maps.Keys(by.want)), maxFilterValues) {
			addrs, err := o.describeAddresses(ctx, []types.Filter{{Name: aws.String(by.filter), Values: chunk}})
			if err != nil {
				return err
			}
			for _, a := range addrs {
				seen[aws.ToString(a.AllocationId)] = a
				seen[aws.ToString(a.PublicIp)] = a
			}
		}
		for key, rs := range by.want {
			a, ok := seen[key]
			for _, r := range rs {
				if !ok {
					r.Err = fmt.Errorf("EIP %s: %w: check roles.%s.%s (an EIP allocated a moment ago shows within seconds)", key, ErrNotFound, r.Name, strings.ReplaceAll(by.filter, "-", "_"))
					continue
				}
				r.Addresses = []Address{address(a)}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(pools)) {
		rs := pools[key]
		p := rs[0].Spec.Pool
		in := []types.Filter{{Name: aws.String("domain"), Values: []string{"vpc"}}}
		for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
			in = append(in, types.Filter{Name: aws.String("tag:" + k), Values: []string{p.Tags[k]}})
		}
		addrs, err := o.describeAddresses(ctx, in)
		if err != nil {
			return err
		}
		var mine []Address
		for _, a := range addrs {
			// Filters treat * and ? as wildcards; a pool's tags are literal.
			if claim.InPool(a.Tags, p) {
				mine = append(mine, address(a))
			}
		}
		slices.SortFunc(mine, func(a, b Address) int { return cmp.Compare(a.AllocationID, b.AllocationID) })
		for _, r := range rs {
			if len(mine) == 0 {
				r.Err = fmt.Errorf("pool %s has no EIP (%w): tag EIPs with %s, or fix pool.tags", key, ErrNotFound, key)
				continue
			}
			r.Addresses = slices.Clone(mine)
		}
	}
	return nil
}

func (o *Observer) describeAddresses(ctx context.Context, filters []types.Filter) ([]types.Address, error) {
	var out *ec2.DescribeAddressesOutput
	err := o.call(ctx, "ec2:DescribeAddresses", func(ctx context.Context) error {
		var err error
		out, err = o.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: filters})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("describe the EIPs (%s): %w", describeFilters(filters), err)
	}
	if out == nil {
		return nil, nil
	}
	return out.Addresses, nil
}

func address(a types.Address) Address {
	out := Address{
		AllocationID:  aws.ToString(a.AllocationId),
		PublicIP:      aws.ToString(a.PublicIp),
		AssociationID: aws.ToString(a.AssociationId),
		ENI:           aws.ToString(a.NetworkInterfaceId),
		PrivateIP:     aws.ToString(a.PrivateIpAddress),
		Tags:          map[string]string{},
		Holder:        decide.Holder{Instance: aws.ToString(a.InstanceId)},
	}
	for _, t := range a.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if s, ok := out.Tags[claim.TagEpoch]; ok {
		out.Epoch, out.EpochErr = epoch.Parse(s)
		if out.EpochErr != nil {
			out.Epoch = 0
		}
	}
	return out
}

// instances reads the candidates of every role (tag-key eipclaim:role),
// then the holders the first read did not show (untagged), by id or by
// interface: EC2 leaves an address's InstanceId empty when it is
// associated by interface in some worlds, and the holder is the
// instance the interface is attached to.
func (o *Observer) instances(ctx context.Context, f *Fleet) (map[string]*instance, error) {
	insts := map[string]*instance{}
	if len(f.Roles) > 0 {
		if err := o.describeInstances(ctx, []types.Filter{{Name: aws.String("tag-key"), Values: []string{TagRole}}}, insts); err != nil {
			return nil, fmt.Errorf("list the candidates (instances tagged %s): %w", TagRole, err)
		}
	}
	byENI := enis(insts)
	var ids, ifaces []string
	for _, r := range f.Roles {
		for _, a := range r.Addresses {
			switch {
			case a.Holder.Instance != "" && insts[a.Holder.Instance] == nil:
				ids = append(ids, a.Holder.Instance)
			case a.Holder.Instance == "" && a.ENI != "" && byENI[a.ENI] == "":
				ifaces = append(ifaces, a.ENI)
			}
		}
		if r.Private != nil {
			for _, n := range r.Private.found {
				if n.instance != "" && insts[n.instance] == nil {
					ids = append(ids, n.instance)
				}
			}
		}
		if v := r.Overlay; v != nil {
			if h := v.Entry.Holder; h != "" && insts[h] == nil && strings.HasPrefix(h, "i-") {
				ids = append(ids, h)
			}
			for _, rt := range v.Routes {
				switch {
				case rt.Instance != "" && insts[rt.Instance] == nil:
					ids = append(ids, rt.Instance)
				case rt.Instance == "" && rt.ENI != "" && byENI[rt.ENI] == "":
					ifaces = append(ifaces, rt.ENI)
				}
			}
		}
	}
	for _, q := range []struct {
		filter string
		values []string
	}{{"instance-id", ids}, {"network-interface.network-interface-id", ifaces}} {
		slices.Sort(q.values)
		for chunk := range slices.Chunk(slices.Compact(q.values), maxFilterValues) {
			if err := o.describeInstances(ctx, []types.Filter{{Name: aws.String(q.filter), Values: chunk}}, insts); err != nil {
				return nil, fmt.Errorf("describe the EIPs' holders: %w", err)
			}
		}
	}
	return insts, nil
}

func enis(insts map[string]*instance) map[string]string {
	m := map[string]string{}
	for _, i := range insts {
		for _, e := range i.enis {
			m[e] = i.id
		}
	}
	return m
}

// describeInstances reads every page of instances matching filters into insts.
func (o *Observer) describeInstances(ctx context.Context, filters []types.Filter, insts map[string]*instance) error {
	in := &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(pageSize)}
	for {
		var out *ec2.DescribeInstancesOutput
		err := o.call(ctx, "ec2:DescribeInstances", func(ctx context.Context) error {
			var err error
			out, err = o.EC2.DescribeInstances(ctx, in)
			return err
		})
		if err != nil {
			return err
		}
		if out == nil {
			return nil
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				id := aws.ToString(i.InstanceId)
				if id == "" {
					continue
				}
				inst := &instance{id: id, privateIP: aws.ToString(i.PrivateIpAddress), launch: aws.ToTime(i.LaunchTime), role: claim.TagValue(i.Tags, TagRole), vpc: aws.ToString(i.VpcId)}
				if i.State != nil {
					inst.state = string(i.State.Name)
				}
				for _, ni := range i.NetworkInterfaces {
					inst.enis = append(inst.enis, aws.ToString(ni.NetworkInterfaceId))
				}
				insts[id] = inst
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return nil
		}
		in = &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(pageSize), NextToken: out.NextToken}
	}
}

// status reads the status checks of the instances read: by id when they
// are few, else every instance's, page by page (EC2 takes at most 100
// ids, and no page size with them).
func (o *Observer) status(ctx context.Context, insts map[string]*instance) (map[string][2]string, error) {
	status := map[string][2]string{}
	var ids []string
	for id, i := range insts {
		if !decide.Stopped(i.state) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return status, nil
	}
	slices.Sort(ids)
	in := &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), InstanceIds: ids}
	if len(ids) > maxStatusIDs {
		in = &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), MaxResults: aws.Int32(pageSize)}
	}
	for {
		var out *ec2.DescribeInstanceStatusOutput
		err := o.call(ctx, "ec2:DescribeInstanceStatus", func(ctx context.Context) error {
			var err error
			out, err = o.EC2.DescribeInstanceStatus(ctx, in)
			return err
		})
		if retry.Code(err) == "InvalidInstanceID.NotFound" && in.InstanceIds != nil {
			// One of the ids is not visible to this call yet (eventual
			// consistency): read every instance's instead.
			in = &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), MaxResults: aws.Int32(pageSize)}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the status checks of %d instances: %w", len(ids), err)
		}
		if out == nil {
			return status, nil
		}
		for _, s := range out.InstanceStatuses {
			status[aws.ToString(s.InstanceId)] = [2]string{claim.StatusSummary(s.InstanceStatus), claim.StatusSummary(s.SystemStatus)}
		}
		if aws.ToString(out.NextToken) == "" {
			return status, nil
		}
		in = &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), MaxResults: aws.Int32(pageSize), NextToken: out.NextToken}
	}
}

// assemble fills each role's holders and candidates from the reads.
func (o *Observer) assemble(f *Fleet, insts map[string]*instance, status map[string][2]string) {
	byENI := enis(insts)
	byRole := map[string][]*instance{}
	for _, i := range insts {
		if i.role != "" {
			byRole[i.role] = append(byRole[i.role], i)
		}
	}
	for _, r := range f.Roles {
		for k := range r.Addresses {
			a := &r.Addresses[k]
			if a.Holder.Instance == "" && a.ENI != "" {
				a.Holder.Instance = byENI[a.ENI]
			}
			if a.Holder.Instance == "" {
				continue
			}
			i := insts[a.Holder.Instance]
			if i == nil {
				a.Holder.State = decide.StateGone
				continue
			}
			a.Holder.State = i.state
			if st, ok := status[i.id]; ok {
				a.Holder.InstanceStatus, a.Holder.SystemStatus = st[0], st[1]
			}
		}
		if r.Private != nil {
			o.placePrivate(r, byRole[r.Name], insts, status)
		}
		if r.Overlay != nil {
			placeOverlay(r.Overlay, byENI, insts, status)
		}
		// The tag's value exactly: a filter would treat * and ? as wildcards.
		for _, i := range byRole[r.Name] {
			c := decide.Candidate{Instance: i.id, State: i.state, LaunchTime: i.launch}
			if st, ok := status[i.id]; ok {
				c.InstanceStatus, c.SystemStatus = st[0], st[1]
			}
			r.Candidates = append(r.Candidates, c)
		}
		slices.SortFunc(r.Candidates, func(a, b decide.Candidate) int { return cmp.Compare(a.Instance, b.Instance) })
	}
}

// probe runs the roles' health_check against every holder that runs and
// every running candidate, at most Probes at once, each address once.
func (o *Observer) probe(ctx context.Context, f *Fleet, insts map[string]*instance) {
	type target struct {
		ip string
		hc config.HealthCheck
	}
	results := map[target]*decide.Probe{}
	var targets []target
	want := func(ip string, hc config.HealthCheck) *decide.Probe {
		t := target{ip, hc}
		p, ok := results[t]
		if !ok {
			p = &decide.Probe{}
			results[t] = p
			targets = append(targets, t)
		}
		return p
	}
	for _, r := range f.Roles {
		hc := r.Spec.HealthCheck
		if !hc.Set() {
			continue
		}
		for k := range r.Addresses {
			a := &r.Addresses[k]
			if a.Holder.Instance != "" && !decide.Stopped(a.Holder.State) {
				ip := a.PrivateIP
				if i := insts[a.Holder.Instance]; ip == "" && i != nil {
					ip = i.privateIP
				}
				a.Holder.Probe = want(ip, hc)
			}
		}
		if v := r.Overlay; v != nil && v.Holder.Instance != "" && !decide.Stopped(v.Holder.State) {
			if i := insts[v.Holder.Instance]; i != nil {
				v.Holder.Probe = want(i.privateIP, hc)
			}
		}
		if p := r.Private; p != nil && p.Holder.Instance != "" && !decide.Stopped(p.Holder.State) {
			ip := p.HolderIP
			if i := insts[p.Holder.Instance]; ip == "" && i != nil {
				ip = i.privateIP
			}
			p.Holder.Probe = want(ip, hc)
		}
		for k := range r.Candidates {
			c := &r.Candidates[k]
			if c.State == decide.StateRunning {
				c.Probe = want(insts[c.Instance].privateIP, hc)
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	engine := &claim.Engine{Dial: o.Dial, HealthTimeout: o.HealthTimeout}
	sem := make(chan struct{}, cmp.Or(o.Probes, DefaultProbes))
	var wg sync.WaitGroup
	for _, t := range targets {
		p := results[t]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p.OK, p.Result = engine.Probe(ctx, t.ip, t.hc)
		})
	}
	wg.Wait()
}

func describeFilters(fs []types.Filter) string {
	var parts []string
	for _, f := range fs {
		v := f.Values
		more := ""
		if len(v) > 3 {
			v, more = v[:3], fmt.Sprintf(" and %d more", len(f.Values)-3)
		}
		parts = append(parts, aws.ToString(f.Name)+"="+strings.Join(v, ",")+more)
	}
	return strings.Join(parts, " ")
}

// Observed is the role as internal/decide plans it.
func (r *Role) Observed() decide.Observed {
	o := decide.Observed{Spec: r.Spec, Candidates: r.Candidates}
	if r.Err != nil {
		o.Problem = r.Err.Error()
	}
	for _, a := range r.Addresses {
		o.Addresses = append(o.Addresses, decide.Address{
			AllocationID: a.AllocationID, PublicIP: a.PublicIP, Held: !a.Free(), Holder: a.Holder,
			HolderTag: a.Tags[claim.TagHolder], EpochBad: a.EpochErr != nil,
		})
	}
	if p := r.Private; p != nil {
		o.Private = &decide.Private{Address: p.Address, Held: p.ENI != "", Holder: p.Holder, HolderTag: p.HolderTag, EpochBad: p.EpochErr != nil}
	}
	if v := r.Overlay; v != nil {
		// The overlay has no tags: the entry is its holder's record, and
		// the routes that point elsewhere ask for a repair.
		o.Private = &decide.Private{Address: v.Address, Overlay: true, Held: v.Held(), Holder: v.Holder, HolderTag: v.Holder.Instance, Drift: v.Drift}
	}
	return o
}

// privates reads the interfaces that have the roles' secondary private
// IPs (private_address), every role's in one request (or one per
// maxFilterValues addresses): the addresses.private-ip-address filter
// matches every private IPv4 address of an interface, its secondaries too.
// An address may be in several VPCs (their CIDRs may overlap): each
// interface found is kept, and placePrivate keeps the one in the VPC of
// the role's candidates.
func (o *Observer) privates(ctx context.Context, f *Fleet) error {
	byAddr := map[string][]*Role{}
	for _, name := range slices.Sorted(maps.Keys(f.Roles)) {
		r := f.Roles[name]
		if a := r.Spec.PrivateAddress; a != "" && r.Spec.Pool == nil {
			r.Private = &Private{Address: a}
			byAddr[a] = append(byAddr[a], r)
		}
	}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(byAddr)), maxFilterValues) {
		filters := []types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: chunk}}
		var enis []types.NetworkInterface
		err := o.call(ctx, "ec2:DescribeNetworkInterfaces", func(ctx context.Context) error {
			enis = nil
			p := ec2.NewDescribeNetworkInterfacesPaginator(o.EC2, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				enis = append(enis, out.NetworkInterfaces...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("find the interfaces that hold the private addresses (%s): %w", describeFilters(filters), err)
		}
		for _, n := range enis {
			seen := eniSeen{id: aws.ToString(n.NetworkInterfaceId), vpc: aws.ToString(n.VpcId), primaryIP: aws.ToString(n.PrivateIpAddress), tags: map[string]string{}}
			if n.Attachment != nil {
				seen.instance = aws.ToString(n.Attachment.InstanceId)
			}
			for _, t := range n.TagSet {
				seen.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			for _, a := range privateAddresses(n) {
				for _, r := range byAddr[a] {
					r.Private.found = append(r.Private.found, seen)
				}
			}
		}
	}
	return nil
}

// privateAddresses are an interface's private IPv4 addresses, its primary
// first.
func privateAddresses(n types.NetworkInterface) []string {
	out := []string{aws.ToString(n.PrivateIpAddress)}
	for _, p := range n.PrivateIpAddresses {
		if a := aws.ToString(p.PrivateIpAddress); a != out[0] {
			out = append(out, a)
		}
	}
	return out
}

// placePrivate picks, of the interfaces that have the role's private
// address, the one in the VPC of its candidates (any interface when the
// role has none), and fills its holder from the reads. Two such
// interfaces (which EC2 does not allow) make the role unobservable.
func (o *Observer) placePrivate(r *Role, cands []*instance, insts map[string]*instance, status map[string][2]string) {
	p := r.Private
	vpcs := map[string]bool{}
	for _, c := range cands {
		if c.vpc != "" {
			vpcs[c.vpc] = true
		}
	}
	var mine []eniSeen
	for _, n := range p.found {
		if len(vpcs) == 0 || vpcs[n.vpc] {
			mine = append(mine, n)
		}
	}
	if len(mine) > 1 {
		var ids []string
		for _, n := range mine {
			ids = append(ids, n.id)
		}
		slices.Sort(ids)
		if r.Err == nil {
			r.Err = fmt.Errorf("the private address %s is on %d interfaces (%s), which EC2 does not allow: see `aws ec2 describe-network-interfaces --filters Name=addresses.private-ip-address,Values=%s`", p.Address, len(ids), strings.Join(ids, ", "), p.Address)
		}
		return
	}
	if len(mine) == 0 {
		return
	}
	n := mine[0]
	if n.primaryIP == p.Address && r.Err == nil {
		r.Err = fmt.Errorf("private_address %s is the primary private address of interface %s: a primary address cannot move; choose a free address of its subnet for roles.%s.private_address", p.Address, n.id, r.Name)
	}
	hk, _, ek := claim.SecondaryTagKeys(r.Name)
	p.ENI, p.HolderIP, p.Primary = n.id, n.primaryIP, n.primaryIP == p.Address
	p.HolderTag, p.EpochTag = n.tags[hk], n.tags[ek]
	if p.EpochTag != "" {
		if p.Epoch, p.EpochErr = epoch.Parse(p.EpochTag); p.EpochErr != nil {
			p.Epoch = 0
		}
	}
	p.Holder = decide.Holder{Instance: n.instance}
	if n.instance == "" {
		return
	}
	i := insts[n.instance]
	if i == nil {
		p.Holder.State = decide.StateGone
		return
	}
	p.Holder.State = i.state
	if st, ok := status[i.id]; ok {
		p.Holder.InstanceStatus, p.Holder.SystemStatus = st[0], st[1]
	}
}

// overlays reads what the roles' overlay addresses need: the role table
// once (every overlay role's entry), and the listed route tables of every
// role in one DescribeRouteTables (or one per maxFilterValues tables), by
// the route-table-id filter (a table that does not exist is then absent
// for its role alone, not an error for the whole call).
func (o *Observer) overlays(ctx context.Context, f *Fleet) error {
	var roles []*Role
	tables := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(f.Roles)) {
		r := f.Roles[name]
		if v := r.Spec.Overlay; v != nil && r.Spec.Pool == nil {
			r.Overlay = &Overlay{Address: v.Address}
			roles = append(roles, r)
			for _, t := range v.RouteTables {
				tables[t] = true
			}
		}
	}
	var doc *table.Document
	if o.Table != nil && len(f.Roles) > 0 {
		snap, err := o.Table.ReadSnapshot(ctx)
		switch {
		case err != nil && len(roles) > 0:
			return fmt.Errorf("read the role table (the overlay addresses' holders): %w", err)
		case err != nil:
			// Only the publications would have used it: they read it.
			if o.Log != nil {
				o.Log.Warn("could not read the role table: each role's publication reads it", "error", err)
			}
		default:
			f.Table, doc = snap, snap.Doc
		}
	}
	if len(roles) == 0 {
		return nil
	}
	seen := map[string]types.RouteTable{}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(tables)), maxFilterValues) {
		filters := []types.Filter{{Name: aws.String("route-table-id"), Values: chunk}}
		err := o.call(ctx, "ec2:DescribeRouteTables", func(ctx context.Context) error {
			p := ec2.NewDescribeRouteTablesPaginator(o.EC2, &ec2.DescribeRouteTablesInput{Filters: filters})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, rt := range out.RouteTables {
					seen[aws.ToString(rt.RouteTableId)] = rt
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("describe the overlay addresses' route tables (%s): %w", describeFilters(filters), err)
		}
	}
	for _, r := range roles {
		v := r.Overlay
		if doc == nil {
			if r.Err == nil {
				r.Err = fmt.Errorf("role %s has an overlay address and the controller no role table to read (repository: is not set, or no S3 client): an overlay role needs repository: its compare-and-swap", r.Name)
			}
			continue
		}
		v.Entry = doc.Roles[r.Name]
		dest := v.Address + "/32"
		for _, id := range r.Spec.Overlay.RouteTables {
			rt, ok := seen[id]
			if !ok {
				if r.Err == nil {
					r.Err = fmt.Errorf("route table %s: %w: fix roles.%s.overlay.route_tables", id, ErrNotFound, r.Name)
				}
				continue
			}
			tr := claim.TableRoute{RouteTable: id}
			for _, route := range rt.Routes {
				if aws.ToString(route.DestinationCidrBlock) == dest {
					tr.ENI, tr.Instance, tr.State = aws.ToString(route.NetworkInterfaceId), aws.ToString(route.InstanceId), string(route.State)
				}
			}
			v.Routes = append(v.Routes, tr)
		}
	}
	return nil
}

// placeOverlay fills the overlay's routes' instances, its holder (the
// entry's, else the routes'), and the tables that do not point at it.
func placeOverlay(v *Overlay, byENI map[string]string, insts map[string]*instance, status map[string][2]string) {
	for k := range v.Routes {
		if rt := &v.Routes[k]; rt.Instance == "" && rt.ENI != "" {
			rt.Instance = byENI[rt.ENI]
		}
	}
	h := v.Entry.Holder
	if h == "" {
		for _, rt := range v.Routes {
			if rt.ENI != "" {
				h, v.ENI = rt.Instance, rt.ENI
				break
			}
		}
	}
	for k := range v.Routes {
		rt := &v.Routes[k]
		rt.Here = h != "" && rt.Instance == h
		if rt.Here && v.ENI == "" {
			v.ENI = rt.ENI
		}
		if !rt.Here {
			v.Drift = append(v.Drift, rt.RouteTable)
		}
	}
	v.Holder = decide.Holder{Instance: h}
	if h == "" {
		if v.ENI == "" {
			v.Drift = nil // routed nowhere, named by no one: free
		}
		return
	}
	i := insts[h]
	if i == nil {
		v.Holder.State = decide.StateGone
		return
	}
	v.Holder.State = i.state
	if st, ok := status[i.id]; ok {
		v.Holder.InstanceStatus, v.Holder.SystemStatus = st[0], st[1]
	}
}
