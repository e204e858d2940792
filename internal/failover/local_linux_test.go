package failover_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/vishvananda/netns"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/failover"
	"github.com/eipclaim/eipclaim/internal/localaddr"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestStepLocalInterfaceNetns: the step on moto with the real netlink in
// a network namespace of the test's own: local_interface auto finds the
// interface whose MAC IMDS gives for the ENI that EC2 put the private
// address on, the address is added there (ip addr agrees), a rerun changes
// nothing, and Remove (a deposed holder's) takes it off. Skipped when the
// test cannot make a namespace (not root, no ip), failed then under CI.
func TestStepLocalInterfaceNetns(t *testing.T) {
	if os.Geteuid() != 0 || exec.Command("ip", "-V").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("network namespace test under CI: needs root and ip (iproute2)")
		}
		t.Skip("network namespace test skipped: needs root and ip (iproute2)")
	}
	name := fmt.Sprintf("eipclaim-failover-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	const mac = "0e:21:00:00:00:42"
	ip("link", "add", "eipfo0", "address", mac, "type", "veth", "peer", "name", "peer0")
	ip("link", "set", "eipfo0", "up")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ns, err := localaddr.At(h)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	moto := testenv.SharedMoto(t)
	admin := ec2.NewFromConfig(moto.Config())
	inst, err := testenv.NewWorld(moto.Config()).NewInstance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sn, err := admin.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{inst.SubnetID}})
	if err != nil {
		t.Fatal(err)
	}
	// An address of the instance's subnet that moto does not hand out
	// soon: near its end.
	cidr := netip.MustParsePrefix(aws.ToString(sn.Subnets[0].CidrBlock))
	if cidr.Bits() < 16 || cidr.Bits() > 24 {
		t.Fatalf("subnet %s: want a prefix of /16 to /24", cidr)
	}
	b := cidr.Masked().Addr().As4()
	b[2], b[3] = b[2]|byte(0xff>>(cidr.Bits()-16)), 0xf0 // x.y.(last /24 of it).240
	addr := netip.AddrFrom4(b)
	if !cidr.Contains(addr) {
		t.Fatalf("%s not in %s", addr, cidr)
	}
	if _, err := admin.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{inst.ENI}, Tags: []types.Tag{{Key: aws.String("eipclaim:role"), Value: aws.String("db")}}}); err != nil {
		t.Fatal(err)
	}
	local := &failover.Local{Addr: ns, IMDS: memIMDS{
		"network/interfaces/macs/":                         mac + "/",
		"network/interfaces/macs/" + mac + "/interface-id": inst.ENI,
	}}
	step := &failover.Step{
		Engine: &claim.Engine{EC2: ec2.NewFromConfig(moto.ConfigAs(testenv.CallerInstance)), InstanceID: inst.ID, Region: "us-east-1", Log: slog.New(slog.DiscardHandler)},
		Region: "us-east-1", Local: local,
	}
	spec := &config.Role{Name: "db", PrivateAddress: addr.String(), LocalInterface: config.LocalInterfaceAuto}
	o, err := step.Run(t.Context(), failover.Request{Role: "db", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	want := failover.LocalRun{Op: "ensure", Name: "eipfo0", Address: addr.String(), Changed: true}
	if o.LocalInterface == nil || *o.LocalInterface != want {
		t.Fatalf("local interface %+v, want %+v", o.LocalInterface, want)
	}
	if got := ip("-4", "-o", "addr", "show", "dev", "eipfo0"); !strings.Contains(got, " "+addr.String()+"/32 ") {
		t.Errorf("ip addr show dev eipfo0:\n%s\nwant %s/32", got, addr)
	}
	if o, err = step.Run(t.Context(), failover.Request{Role: "db", Spec: spec}); err != nil || o.LocalInterface == nil || o.LocalInterface.Changed {
		t.Errorf("rerun: %+v, %v; want the address already there", o.LocalInterface, err)
	}
	run := local.Remove(t.Context(), "db", spec, addr)
	if run == nil || !run.Changed || run.Error != "" || run.Name != "eipfo0" {
		t.Errorf("remove: %+v, want it taken off eipfo0", run)
	}
	if got := ip("-4", "-o", "addr", "show", "dev", "eipfo0"); strings.Contains(got, addr.String()) {
		t.Errorf("after remove, ip addr show dev eipfo0:\n%s", got)
	}
}
