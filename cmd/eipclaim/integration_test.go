package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is one test's emulated AWS (internal/testenv's World): moto, an
// instance that this process runs as, and an IMDS emulator that says so.
type world struct {
	t        *testing.T
	ec2      *ec2.Client
	instance string // self.ID
	moto     *testenv.Moto
	tw       *testenv.TestWorld
	self     testenv.Instance
}

// newWorld resets moto, creates an instance, and starts an IMDS emulator
// for it serving userData. The AWS environment points at both.
func newWorld(t *testing.T, userData string) *world {
	t.Helper()
	moto := testenv.SharedMoto(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	tw := testenv.NewTestWorld(t, moto.Config())
	self := tw.NewInstance()
	w := &world{t: t, ec2: tw.EC2, instance: self.ID, moto: moto, tw: tw, self: self}
	t.Setenv("EIPCLAIM_ROLE", "")
	t.Setenv("EIPCLAIM_CONFIG", "")
	return w.withUserData(userData)
}

// as makes the in-process eipclaim run with caller c's credentials (the
// IAM gate judges its requests with c's shipped policy); newWorld starts
// as the instance.
func (w *world) as(c testenv.Caller) {
	w.t.Helper()
	for _, kv := range w.moto.EnvAs(c) {
		k, v, _ := strings.Cut(kv, "=")
		w.t.Setenv(k, v)
	}
}

// runInstance creates another instance and returns its id.
func (w *world) runInstance() string {
	w.t.Helper()
	return w.tw.NewInstance().ID
}

// allocate creates an EIP and returns its allocation id and address.
func (w *world) allocate() (string, string) {
	w.t.Helper()
	eip := w.tw.NewEIP(nil)
	return eip.AllocationID, eip.PublicIP
}

// address returns the EIP as EC2 reports it.
func (w *world) address(alloc string) types.Address {
	w.t.Helper()
	return w.tw.Address(alloc)
}

// eipclaim runs the command in-process and returns its output and exit code.
func eipclaim(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, args, func(k string) string { return lookupEnv(k) }, &out, &errb)
	if err != nil {
		errb.WriteString("eipclaim: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitcode.Of(err)
}

func TestClaimFromCloudConfig(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	w = w.withUserData("#cloud-config\npackages: [postgresql]\neipclaim:\n  role: master-db\n  roles:\n    master-db:\n      allocation_id: " + alloc + "\n")

	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	a := w.address(alloc)
	eni := w.primaryENI()
	if got := aws.ToString(a.NetworkInterfaceId); got != eni {
		t.Fatalf("EIP %s on interface %q, want this instance's %q", alloc, got, eni)
	}
	if !strings.Contains(out, "master-db: claimed "+ip) {
		t.Errorf("stdout %q does not say it claimed %s", out, ip)
	}
	assoc := aws.ToString(a.AssociationId)

	// A rerun is a no-op: same association, no remap.
	out, errs, code = eipclaim(t, "claim", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("rerun: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).AssociationId); got != assoc {
		t.Errorf("rerun changed the association: %s -> %s", assoc, got)
	}
	if !strings.Contains(out, "already held") {
		t.Errorf("rerun stdout %q does not say already held", out)
	}
}

func TestBadConfigChangesNothing(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	role := func(body string) string { return "role: db\nroles:\n  db:\n" + body }
	cases := []struct{ name, doc, want string }{
		{"unknown key", role("    allocation_id: " + alloc + "\n    takeovr: never\n"), "roles.db.takeovr (line 5): unknown key"},
		{"unknown top key", "role: db\nrolez: {}\n", "rolez (line 2)"},
		{"malformed id", role("    allocation_id: eipalloc-XYZ\n"), `roles.db.allocation_id "eipalloc-XYZ" (line 4)`},
		{"not an ip", role("    public_ip: 300.1.1.1\n"), `roles.db.public_ip "300.1.1.1" (line 4)`},
		{"role not in table", "role: web\nroles:\n  db:\n    allocation_id: " + alloc + "\n", `role "web" is not in the roles table`},
		{"two selectors", role("    allocation_id: " + alloc + "\n    public_ip: 203.0.113.1\n"), "roles.db (line 3): want exactly one of allocation_id, public_ip or pool"},
		{"bad takeover", role("    allocation_id: " + alloc + "\n    takeover: maybe\n"), `roles.db.takeover "maybe" (line 5)`},
		{"bad health check", role("    allocation_id: " + alloc + "\n    health_check: udp:53\n"), `roles.db.health_check "udp:53" (line 5)`},
		{"bad interface", role("    allocation_id: " + alloc + "\n    interface: eth1\n"), `roles.db.interface "eth1" (line 5)`},
		{"public private_ip", role("    allocation_id: " + alloc + "\n    private_ip: 8.8.8.8\n"), `roles.db.private_ip "8.8.8.8" (line 5)`},
		{"bad dns name", role("    allocation_id: " + alloc + "\n    dns:\n      route53: {zone_id: Z123, name: 'db..example'}\n"), `roles.db.dns.route53.name "db..example" (line 6)`},
		{"cname at apex", role("    allocation_id: " + alloc + "\n    dns:\n      route53: {zone: example.internal, name: example.internal}\n"), "a CNAME cannot be at the zone apex"},
		{"pool without tags", role("    pool: {tags: {}}\n"), "roles.db.pool.tags (line 4): want at least one tag"},
		{"rfc2136 unsigned", role("    allocation_id: " + alloc + "\n    dns:\n      rfc2136: {server: 127.0.0.1:53, zone: example.internal., name: db.example.internal.}\n"), "roles.db.dns.rfc2136.tsig_name"},
		{"shell script", "#!/bin/sh\necho hello\n", "user-data is a shell script"},
		{"cloud-config without eipclaim", "#cloud-config\npackages: [nginx]\n", "eipclaim"},
		{"missing s3 object", "role: db\nsource: s3://no-such-bucket/eipclaim.yaml\n", "no-such-bucket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.withUserData(tc.doc)
			out, errs, code := eipclaim(t, "--timeout", "30s")
			if code != exitcode.Usage {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr does not name the problem %q:\n%s", tc.want, errs)
			}
			if a := w.address(alloc); aws.ToString(a.AssociationId) != "" || aws.ToString(a.NetworkInterfaceId) != "" {
				t.Errorf("a bad configuration changed the EIP: %+v", a)
			}
		})
	}
}

// withUserData starts a new IMDS emulator for the same instance serving
// userData.
func (w *world) withUserData(userData string) *world {
	w.t.Helper()
	md := w.tw.IMDSFor(w.self, userData)
	w.t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", md.Endpoint)
	return w
}

// describeSelf returns the test's instance as EC2 describes it.
func (w *world) describeSelf() types.Instance {
	w.t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.instance}})
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

// primaryENI returns the instance's interface at device index 0.
func (w *world) primaryENI() string { return w.self.ENI }

var lookupEnv = os.Getenv
