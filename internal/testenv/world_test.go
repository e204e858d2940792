package testenv_test

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestWorld builds each part of the emulated world and checks it against
// what EC2, Route 53 and the IMDS emulator then say.
func TestWorld(t *testing.T) {
	ctx := t.Context()
	w := testenv.NewTestWorld(t, testenv.SharedMoto(t).Config())

	insts := w.NewInstances(2)
	if len(insts) != 2 || insts[0].ID == insts[1].ID {
		t.Fatalf("NewInstances(2) = %+v, want two instances", insts)
	}
	inst := insts[0]
	out, err := w.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	described := out.Reservations[0].Instances[0]
	if aws.ToString(described.SubnetId) != inst.SubnetID || inst.SubnetID == "" {
		t.Errorf("SubnetID = %q, EC2 says %q", inst.SubnetID, aws.ToString(described.SubnetId))
	}
	primary := false
	for _, n := range described.NetworkInterfaces {
		if aws.ToInt32(n.Attachment.DeviceIndex) == 0 {
			primary = aws.ToString(n.NetworkInterfaceId) == inst.ENI && aws.ToString(n.PrivateIpAddress) == inst.PrivateIP
		}
	}
	if !primary || !strings.HasPrefix(inst.ENI, "eni-") || !netip.MustParseAddr(inst.PrivateIP).IsPrivate() {
		t.Errorf("Instance %+v: not its primary interface and private IP as EC2 describes them: %+v", inst, described.NetworkInterfaces)
	}

	free := w.NewEIP(nil)
	tagged := w.NewEIP(map[string]string{"eip-pool": "web", "team": "db"})
	w.Associate(tagged.AllocationID, inst.ID)
	addrs := w.Addresses()
	if len(addrs) != 2 {
		t.Fatalf("Addresses() = %d, want 2", len(addrs))
	}
	if a := addrs[free.AllocationID]; aws.ToString(a.PublicIp) != free.PublicIP || aws.ToString(a.AssociationId) != "" || len(a.Tags) != 0 {
		t.Errorf("the free, untagged EIP %+v is %+v", free, a)
	}
	a := w.Address(tagged.AllocationID)
	tags := map[string]string{}
	for _, tg := range a.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if aws.ToString(a.PublicIp) != tagged.PublicIP || tags["eip-pool"] != "web" || tags["team"] != "db" || len(tags) != 2 {
		t.Errorf("the tagged EIP %+v is %+v", tagged, a)
	}
	if got := aws.ToString(a.NetworkInterfaceId); got != inst.ENI {
		t.Errorf("after Associate the EIP is on %q, want the instance's primary interface %s", got, inst.ENI)
	}

	for _, private := range []bool{false, true} {
		id := w.NewZone("example.internal", private)
		z, err := w.Route53.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
		if err != nil {
			t.Fatalf("GetHostedZone %s: %v", id, err)
		}
		isPrivate := z.HostedZone.Config != nil && z.HostedZone.Config.PrivateZone
		if aws.ToString(z.HostedZone.Name) != "example.internal." || isPrivate != private || strings.Contains(id, "/") {
			t.Errorf("NewZone(example.internal, %t) = %s: %s, private %t", private, id, aws.ToString(z.HostedZone.Name), isPrivate)
		}
		if private && (len(z.VPCs) != 1 || aws.ToString(z.VPCs[0].VPCId) != aws.ToString(described.VpcId)) {
			t.Errorf("the private zone's VPCs are %+v, want the instances' VPC %s", z.VPCs, aws.ToString(described.VpcId))
		}
	}

	md := w.IMDSFor(inst, "role: db\n")
	client := imds.New(imds.Options{Endpoint: md.Endpoint, EnableFallback: aws.FalseTernary})
	if got := metadata(t, client, "instance-id"); got != inst.ID {
		t.Errorf("IMDSFor(%s) says instance-id %q", inst.ID, got)
	}
	if got := metadata(t, client, "placement/region"); got != testenv.MotoRegion {
		t.Errorf("IMDSFor says region %q, want the world's %s", got, testenv.MotoRegion)
	}
	ud, err := client.GetUserData(ctx, &imds.GetUserDataInput{})
	if err != nil {
		t.Fatalf("GetUserData: %v", err)
	}
	b, err := io.ReadAll(ud.Content)
	ud.Content.Close()
	if err != nil || string(b) != "role: db\n" {
		t.Errorf("IMDSFor's user-data = %q (%v), want %q", b, err, "role: db\n")
	}
}

// TestSeedFleet seeds a small fleet, checks it against what EC2 and Route
// 53 say, and that Problems names each kind of wrong placement.
func TestSeedFleet(t *testing.T) {
	ctx := t.Context()
	w := testenv.NewTestWorld(t, testenv.SharedMoto(t).Config())
	f, err := w.SeedFleet(ctx, testenv.FleetOptions{
		Roles: 3, Zone: "fleet.example.internal", RoleTag: "test:role",
		HolderTags: func(holder string) map[string]string { return map[string]string{"test:holder": holder} },
		CNAME:      func(ip string) string { return "eip-" + strings.ReplaceAll(ip, ".", "-") + ".example.net" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Roles) != 3 || f.Roles[1].Name != "r0001" {
		t.Fatalf("SeedFleet(3) roles = %+v", f.Roles)
	}
	for _, r := range f.Roles {
		a := w.Address(r.EIP.AllocationID)
		if aws.ToString(a.NetworkInterfaceId) != r.Holder.ENI || len(a.Tags) != 1 || aws.ToString(a.Tags[0].Value) != r.Holder.ID {
			t.Errorf("role %s: EIP %+v, want on %s %s tagged test:holder", r.Name, a, r.Holder.ID, r.Holder.ENI)
		}
		out, err := w.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{r.Holder.ID, r.Standby.ID}})
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range out.Reservations {
			for _, i := range res.Instances {
				if len(i.Tags) != 1 || aws.ToString(i.Tags[0].Key) != "test:role" || aws.ToString(i.Tags[0].Value) != r.Name {
					t.Errorf("role %s: instance %s tags %+v, want test:role=%s", r.Name, aws.ToString(i.InstanceId), i.Tags, r.Name)
				}
			}
		}
	}
	if !strings.Contains(f.Config(), "  r0002:\n    allocation_id: "+f.Roles[2].EIP.AllocationID+"\n") ||
		!strings.Contains(f.Config(), "route53: {zone_id: "+f.ZoneID+", name: r0002.fleet.example.internal, ttl: 60}") {
		t.Errorf("Config() = %s", f.Config())
	}
	st, err := w.FleetState(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Problems(st, nil); len(p) != 0 {
		t.Fatalf("a freshly seeded fleet has problems: %v", p)
	}

	// r0000's holder stops: its EIP still there is a problem; on its
	// standby it is not. r0001's EIP moves from its healthy holder; r0002's
	// CNAME lies.
	r0, r1, r2 := f.Roles[0], f.Roles[1], f.Roles[2]
	stopped := map[string]bool{r0.Holder.ID: true}
	if p := f.Problems(st, stopped); len(p) != 1 || !strings.Contains(p[0], "still on the stopped "+r0.Holder.ID) {
		t.Errorf("r0000's holder stopped, its EIP still there: problems %q", p)
	}
	st.Holders[r0.Name], st.Holders[r1.Name] = r0.Standby.ID, r1.Standby.ID
	st.CNAMEs[r2.Name] = "elsewhere.example.net"
	p := f.Problems(st, stopped)
	if len(p) != 2 || !strings.HasPrefix(p[0], "moved healthy: role r0001") || !strings.Contains(p[1], "role r0002: CNAME") {
		t.Errorf("problems %q, want r0001 moved healthy and r0002's CNAME", p)
	}
	st.Holders[r1.Name] = r0.Standby.ID
	if p := f.Problems(st, map[string]bool{r0.Holder.ID: true, r1.Holder.ID: true}); !slices.ContainsFunc(p, func(s string) bool { return strings.HasPrefix(s, "double holder: "+r0.Standby.ID) }) {
		t.Errorf("two EIPs on %s: problems %q, want a double holder", r0.Standby.ID, p)
	}
}

// TestNewLoopbackInstances: instances on the loopback VPC have the
// private IPs asked for, which a listener on this machine answers.
func TestNewLoopbackInstances(t *testing.T) {
	moto := testenv.SharedMoto(t)
	w := testenv.NewWorld(moto.Config())
	is, err := w.NewLoopbackInstances(t.Context(), "127.0.1.21", "127.0.1.22")
	if err != nil {
		t.Fatal(err)
	}
	if len(is) != 2 || is[0].PrivateIP != "127.0.1.21" || is[1].PrivateIP != "127.0.1.22" || is[0].ENI == "" {
		t.Fatalf("instances %+v, want two on 127.0.1.21 and .22 with interfaces", is)
	}
	more, err := w.NewLoopbackInstances(t.Context(), "127.0.1.23")
	if err != nil || more[0].SubnetID != is[0].SubnetID {
		t.Fatalf("a second call: %+v %v, want the same subnet %s", more, err, is[0].SubnetID)
	}
	l, err := net.Listen("tcp", is[0].PrivateIP+":0")
	if err != nil {
		t.Fatalf("listen on the instance's private IP: %v", err)
	}
	defer l.Close()
	c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", l.Addr(), err)
	}
	c.Close()
}
