package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// countingTransport counts the AWS requests of the controller by service
// (the signing scope of each request's Authorization header).
type countingTransport struct {
	mu    sync.Mutex
	byKey map[string]int
	next  http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	service := "?"
	if a := r.Header.Get("Authorization"); a != "" {
		if i := strings.Index(a, "Credential="); i >= 0 {
			if parts := strings.Split(strings.SplitN(a[i+len("Credential="):], ",", 2)[0], "/"); len(parts) >= 4 {
				service = parts[3]
			}
		}
	}
	c.mu.Lock()
	c.byKey[service]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.byKey
	c.byKey = map[string]int{}
	return out
}

// privateFleet is 40 roles on moto behind the gate: r00-r19 an EIP each
// (a Route 53 CNAME), r20-r29 a private address each (10.77.1.200+: a
// Route 53 A record of it), r30-r39 both (a CNAME); each role two instances of one subnet, tagged with the role on the
// instance and its interface (the shipped policies move private addresses
// only on those).
type privateFleet struct {
	f       *fixture
	c       *controller.Controller
	count   *countingTransport
	roles   map[string]*config.Role
	eips    map[string]string             // role -> allocation id
	insts   map[string][]testenv.Instance // role -> its two instances
	byENI   map[string]string             // interface -> instance
	private map[string]string             // role -> its private address
}

func newPrivateFleet(t *testing.T) *privateFleet {
	f := newFixture(t)
	ctx := t.Context()
	vpc, err := f.w.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := f.w.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.77.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	pf := &privateFleet{f: f, roles: map[string]*config.Role{}, eips: map[string]string{}, insts: map[string][]testenv.Instance{}, byENI: map[string]string{}, private: map[string]string{}}
	var doc strings.Builder
	doc.WriteString("repository: s3://" + bucket + "/roles.json\nroles:\n")
	for i := range 40 {
		role := fmt.Sprintf("r%02d", i)
		out, err := f.w.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: types.InstanceTypeT3Micro,
			MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: sn.Subnet.SubnetId})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, in := range out.Instances {
			ti := testenv.Instance{ID: aws.ToString(in.InstanceId), ENI: aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId), PrivateIP: aws.ToString(in.PrivateIpAddress)}
			pf.insts[role] = append(pf.insts[role], ti)
			pf.byENI[ti.ENI] = ti.ID
			ids = append(ids, ti.ID, ti.ENI)
		}
		if _, err := f.w.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String(controller.TagRole), Value: aws.String(role)}}}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&doc, "  %s:\n", role)
		if i < 20 || i >= 30 {
			pf.eips[role] = f.w.NewEIP(nil).AllocationID
			fmt.Fprintf(&doc, "    allocation_id: %s\n", pf.eips[role])
		}
		if i >= 20 {
			pf.private[role] = fmt.Sprintf("10.77.1.%d", 180+i)
			fmt.Fprintf(&doc, "    private_address: %s\n", pf.private[role])
		}
		// A CNAME to the EIP's name, or for a role with only a private
		// address an A record of it (the default), in the private zone.
		fmt.Fprintf(&doc, "    dns:\n      route53: {zone_id: %s, name: %s.example.internal, ttl: 60}\n", f.zone, role)
	}
	cfg, err := config.Parse([]byte(doc.String()), "test")
	if err != nil {
		t.Fatal(err)
	}
	pf.roles = cfg.Roles
	pf.count = &countingTransport{byKey: map[string]int{}, next: http.DefaultTransport}
	acfg := f.moto.ConfigAs(testenv.CallerController)
	acfg.HTTPClient = &http.Client{Transport: pf.count}
	pf.c = &controller.Controller{
		EC2: ec2.NewFromConfig(acfg), Route53: route53.NewFromConfig(acfg), S3: s3.NewFromConfig(acfg),
		Config: func(context.Context) (*config.Config, error) { return cfg, nil },
		Region: testenv.MotoRegion,
	}
	return pf
}

// schedule runs one schedule invocation; it returns each role's action and
// the requests by service (EC2's by action, from the gate).
func (pf *privateFleet) schedule(t *testing.T) (map[string]string, map[string]int, map[string]int) {
	t.Helper()
	pf.f.moto.ActionCounts()
	pf.count.take()
	res, err := pf.c.Handle(t.Context(), []byte(scheduled))
	if err != nil {
		t.Fatalf("schedule: %v\n%+v", err, res)
	}
	actions := map[string]string{}
	for _, d := range res.Decisions {
		actions[d.Role] = d.Action
	}
	ec2Actions, refused := pf.f.moto.ActionCounts()
	if refused != 0 {
		t.Errorf("%d private address moves refused by EC2's rules", refused)
	}
	return actions, ec2Actions, pf.count.take()
}

// holderOf returns the instance whose interface holds addr (in the fleet's
// subnet), "" when none does, failing on two.
func (pf *privateFleet) holderOf(t *testing.T, addr string) string {
	t.Helper()
	out, err := pf.f.w.EC2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("addresses.private-ip-address"), Values: []string{addr}}}})
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	for _, n := range out.NetworkInterfaces {
		if id, ok := pf.byENI[aws.ToString(n.NetworkInterfaceId)]; ok {
			holders = append(holders, id)
		}
	}
	if len(holders) > 1 {
		t.Fatalf("%s is on %d interfaces: %v", addr, len(holders), holders)
	}
	if len(holders) == 0 {
		return ""
	}
	return holders[0]
}

func (pf *privateFleet) eipHolder(t *testing.T, role string) string {
	eni, _ := pf.f.holder(pf.eips[role])
	return pf.byENI[eni]
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestPrivateFleetSteadyAndFailover: the schedule claims every role's
// addresses (a role with both on one instance); a steady run then costs
// one DescribeNetworkInterfaces more than a fleet of EIPs alone, whatever
// the number of private addresses; the holders of the 20 roles with a
// private address stop, and the next run moves exactly those roles'
// addresses to their standbys, the EIP with the private address, and
// publishes them (the CNAMEs, the role table with the private address).
func TestPrivateFleetSteadyAndFailover(t *testing.T) {
	pf := newPrivateFleet(t)
	actions, _, _ := pf.schedule(t)
	for role := range pf.roles {
		if actions[role] != "claimed" {
			t.Errorf("first run: %s %q, want claimed", role, actions[role])
		}
	}
	holders := map[string]string{}
	for role, addr := range pf.private {
		h := pf.holderOf(t, addr)
		if h == "" {
			t.Fatalf("%s: %s on no interface after the claim", role, addr)
		}
		if _, ok := pf.eips[role]; ok && pf.eipHolder(t, role) != h {
			t.Errorf("%s: the EIP on %s, the private address on %s: want one holder", role, pf.eipHolder(t, role), h)
		}
		holders[role] = h
		if _, ok := pf.eips[role]; !ok {
			if got := pf.f.aRecord(role + ".example.internal"); got != addr {
				t.Errorf("%s: A record %q after the claim, want %s", role, got, addr)
			}
		}
	}

	actions, ec2Steady, bySvc := pf.schedule(t)
	for role := range pf.roles {
		if actions[role] != "already held" {
			t.Errorf("steady run: %s %q, want already held", role, actions[role])
		}
	}
	want := map[string]int{"ec2:DescribeAddresses": 1, "ec2:DescribeInstances": 1, "ec2:DescribeInstanceStatus": 1, "ec2:DescribeNetworkInterfaces": 1}
	if !maps.Equal(ec2Steady, want) {
		t.Errorf("EC2 requests of a steady run: %v, want %v", ec2Steady, want)
	}
	t.Logf("steady schedule run over 40 roles (20 with a private address): %d AWS requests %v; EC2 %v", total(bySvc), bySvc, ec2Steady)

	for role := range pf.private {
		pf.f.stop(holders[role])
	}
	actions, ec2Fail, bySvc := pf.schedule(t)
	for role := range pf.roles {
		_, moved := pf.private[role]
		if want := map[bool]string{true: "taken over", false: "already held"}[moved]; actions[role] != want {
			t.Errorf("failover run: %s %q, want %q", role, actions[role], want)
		}
	}
	t.Logf("failover run (20 holders stopped): %d AWS requests %v; EC2 %v", total(bySvc), bySvc, ec2Fail)
	if got := ec2Fail["ec2:AssignPrivateIpAddresses"]; got != 20 {
		t.Errorf("%d AssignPrivateIpAddresses, want 20 (one per moved address)", got)
	}
	if got := ec2Fail["ec2:AssociateAddress"]; got != 10 {
		t.Errorf("%d AssociateAddress, want 10 (the roles with both)", got)
	}
	table := pf.table(t)
	for role, addr := range pf.private {
		h := pf.holderOf(t, addr)
		if h == "" || h == holders[role] {
			t.Errorf("%s: %s on %q after the failover, want the standby (not %s)", role, addr, h, holders[role])
		}
		if _, ok := pf.eips[role]; ok && pf.eipHolder(t, role) != h {
			t.Errorf("%s: the EIP on %s, the private address on %s after the failover", role, pf.eipHolder(t, role), h)
		}
		if e := table[role]; e.Holder != h || e.PrivateIP != addr {
			t.Errorf("%s: role table %+v, want %s held by %s", role, e, addr, h)
		}
	}
	for role, alloc := range pf.eips {
		if got, want := pf.f.cname(role+".example.internal"), dnsName(t, aws.ToString(pf.f.w.Address(alloc).PublicIp)); got != want {
			t.Errorf("%s: CNAME %q, want %q", role, got, want)
		}
	}

	for role, addr := range pf.private {
		if _, ok := pf.eips[role]; !ok {
			if got := pf.f.aRecord(role + ".example.internal"); got != addr {
				t.Errorf("%s: A record %q, want %s", role, got, addr)
			}
		}
	}

	_, ec2Again, bySvc := pf.schedule(t)
	if !maps.Equal(ec2Again, want) {
		t.Errorf("EC2 requests of the steady run after the failover: %v, want %v", ec2Again, want)
	}
	t.Logf("steady run after the failover: %d AWS requests %v", total(bySvc), bySvc)
	_ = slices.Sorted(maps.Keys(bySvc))
}

// aRecord returns the A record's address at name in the fixture's
// (private) zone, "" if none.
func (f *fixture) aRecord(name string) string {
	f.t.Helper()
	out, err := route53.NewFromConfig(f.cfg).ListResourceRecordSets(f.t.Context(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.zone)})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, rr := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(rr.Name), ".") == name && rr.Type == r53types.RRTypeA && len(rr.ResourceRecords) > 0 {
			return aws.ToString(rr.ResourceRecords[0].Value)
		}
	}
	return ""
}

type tableEntry struct {
	PrivateIP string `json:"private_ip"`
	Holder    string `json:"holder"`
	Epoch     int64  `json:"epoch"`
}

func (pf *privateFleet) table(t *testing.T) map[string]tableEntry {
	t.Helper()
	out, err := s3.NewFromConfig(pf.f.cfg).GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("roles.json")})
	if err != nil {
		t.Fatalf("the role table: %v", err)
	}
	defer out.Body.Close()
	var doc struct {
		Roles map[string]tableEntry `json:"roles"`
	}
	if err := json.NewDecoder(out.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Roles
}

// TestPrivateAddressJoinsTheEIP: a role's EIP on one healthy instance, its
// private address on another healthy one (an operator's move). The
// schedule moves the private address to the EIP's holder (the EIP leads),
// through the engine's compare-and-swap taking it by force, and says so.
func TestPrivateAddressJoinsTheEIP(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	vpc, err := f.w.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.78.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := f.w.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.78.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.w.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	a, b := out.Instances[0], out.Instances[1]
	aENI, bENI := aws.ToString(a.NetworkInterfaces[0].NetworkInterfaceId), aws.ToString(b.NetworkInterfaces[0].NetworkInterfaceId)
	if _, err := f.w.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(a.InstanceId), aws.ToString(b.InstanceId), aENI, bENI},
		Tags: []types.Tag{{Key: aws.String(controller.TagRole), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	eip := f.w.NewEIP(nil)
	f.w.Associate(eip.AllocationID, aws.ToString(a.InstanceId))
	const addr = "10.78.1.200"
	if _, err := f.w.EC2.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(bENI), PrivateIpAddresses: []string{addr}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf("roles:\n  db:\n    allocation_id: %s\n    private_address: %s\n", eip.AllocationID, addr)), "test")
	if err != nil {
		t.Fatal(err)
	}
	acfg := f.moto.ConfigAs(testenv.CallerController)
	c := &controller.Controller{EC2: ec2.NewFromConfig(acfg), Route53: route53.NewFromConfig(acfg),
		Config: func(context.Context) (*config.Config, error) { return cfg, nil }, Region: testenv.MotoRegion}
	res, err := c.Handle(ctx, []byte(scheduled))
	if err != nil {
		t.Fatalf("schedule: %v %+v", err, res)
	}
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "taken over" || res.Decisions[0].Candidate != aws.ToString(a.InstanceId) ||
		!strings.Contains(res.Decisions[0].Reason, "the EIP's holder leads") {
		t.Errorf("decisions %+v, want db's private address taken over for %s, joining the EIP", res.Decisions, aws.ToString(a.InstanceId))
	}
	enis, err := f.w.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{addr}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(enis.NetworkInterfaces) != 1 || aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId) != aENI {
		t.Errorf("%s on %d interfaces %+v, want only %s (the EIP's holder's)", addr, len(enis.NetworkInterfaces), enis.NetworkInterfaces, aENI)
	}
	if holder, _ := f.holder(eip.AllocationID); holder != aENI {
		t.Errorf("the EIP is on %q, want it left on %s", holder, aENI)
	}
	res, err = c.Handle(ctx, []byte(scheduled))
	if err != nil || len(res.Decisions) != 1 || res.Decisions[0].Action != "already held" {
		t.Errorf("the next run: %+v, %v; want already held", res.Decisions, err)
	}
}
