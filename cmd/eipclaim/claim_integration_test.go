package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// associate makes another instance hold the EIP, as a previous claim would.
func (w *world) associate(alloc, instance string) {
	w.t.Helper()
	w.tw.Associate(alloc, instance)
}

func fixedRole(alloc, extra string) string {
	return "role: db\nroles:\n  db:\n    allocation_id: " + alloc + "\n" + extra
}

func TestTakeover(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	master := w.runInstance()
	w.associate(alloc, master)
	w.withUserData(fixedRole(alloc, ""))
	before := aws.ToString(w.address(alloc).AssociationId)

	// A healthy (running) holder is refused, and nothing changes.
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.Refused {
		t.Fatalf("claim from a healthy holder: exit %d, want 4\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(errs, "held by "+master) || !strings.Contains(errs, "healthy (running") {
		t.Errorf("refusal does not name the holder and why it is healthy:\n%s", errs)
	}
	if got := aws.ToString(w.address(alloc).AssociationId); got != before {
		t.Errorf("a refused claim changed the association %s -> %s", before, got)
	}

	// --dry-run says what --force would do, and changes nothing.
	out, errs, code = eipclaim(t, "--force", "--dry-run", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "would be taken over") {
		t.Fatalf("--force --dry-run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).AssociationId); got != before {
		t.Errorf("--dry-run changed the association %s -> %s", before, got)
	}

	// --force moves it.
	out, errs, code = eipclaim(t, "--force", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("--force: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != w.primaryENI() {
		t.Errorf("after --force the EIP is on %q, want %q", got, w.primaryENI())
	}
	if !strings.Contains(out, "taken over") || !strings.Contains(out, "from "+master) {
		t.Errorf("stdout does not say it took the EIP from %s: %s", master, out)
	}
	tags := map[string]string{}
	for _, tg := range w.address(alloc).Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["eipclaim:holder"] != w.instance || tags["eipclaim:claimed-at"] == "" {
		t.Errorf("audit tags = %v, want eipclaim:holder=%s and eipclaim:claimed-at", tags, w.instance)
	}
}

func TestTakeoverFromStoppedHolder(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	master := w.runInstance()
	w.associate(alloc, master)
	if _, err := w.ec2.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{master}}); err != nil {
		t.Fatal(err)
	}
	w.withUserData(fixedRole(alloc, ""))
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != w.primaryENI() {
		t.Errorf("the EIP is on %q, want %q", got, w.primaryENI())
	}
	if !strings.Contains(out, "is stopped") {
		t.Errorf("stdout does not say the holder was stopped: %s", out)
	}
}

func TestTakeoverNever(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	master := w.runInstance()
	w.associate(alloc, master)
	w.ec2.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{master}})
	w.withUserData(fixedRole(alloc, "    takeover: never\n"))
	_, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.Refused || !strings.Contains(errs, "takeover is never") {
		t.Fatalf("exit %d, want 4 with takeover is never\nstderr: %s", code, errs)
	}
}

func TestSecondaryInterfaceAndPrivateIP(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	ctx := context.Background()
	inst, err := w.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{w.instance}})
	if err != nil {
		t.Fatal(err)
	}
	subnet := aws.ToString(inst.Reservations[0].Instances[0].SubnetId)
	eni, err := w.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	eniID := aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
	var secondary string
	for _, p := range eni.NetworkInterface.PrivateIpAddresses {
		if !aws.ToBool(p.Primary) {
			secondary = aws.ToString(p.PrivateIpAddress)
		}
	}
	if secondary == "" {
		t.Fatalf("moto gave the interface no secondary IP: %+v", eni.NetworkInterface.PrivateIpAddresses)
	}
	if _, err := w.ec2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(w.instance), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}

	// A private_ip that is not the instance's is refused before any change.
	w.withUserData(fixedRole(alloc, "    interface: 1\n    private_ip: 10.254.254.254\n"))
	_, errs, code := eipclaim(t, "--timeout", "60s")
	if code != exitcode.Usage || !strings.Contains(errs, "private_ip 10.254.254.254 is not an address of interface "+eniID) {
		t.Fatalf("wrong private_ip: exit %d, want 2 naming the interface\nstderr: %s", code, errs)
	}
	if a := w.address(alloc); aws.ToString(a.AssociationId) != "" {
		t.Fatalf("a refused claim associated the EIP: %+v", a)
	}

	w.withUserData(fixedRole(alloc, "    interface: 1\n    private_ip: "+secondary+"\n"))
	out, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if got := aws.ToString(w.address(alloc).NetworkInterfaceId); got != eniID {
		t.Errorf("the EIP is on %q, want the second interface %q", got, eniID)
	}
	// moto ignores PrivateIpAddress and always reports the interface's
	// primary IP, so only our own report can show the secondary here.
	if !strings.Contains(out, eniID+" "+secondary) {
		t.Errorf("stdout does not name %s %s: %s", eniID, secondary, out)
	}
}

// TestPoolConcurrentClaimers runs eight claimers, each its own process on
// its own instance, at once against a pool of four EIPs.
func TestPoolConcurrentClaimers(t *testing.T) {
	w := newWorld(t, "")
	ctx := context.Background()
	pool := map[string]bool{}
	for range 4 {
		pool[w.tw.NewEIP(map[string]string{"eip-pool": "web"}).AllocationID] = true
	}
	decoy, _ := w.allocate() // untagged: never claimed
	bin := testenv.Eipclaim(t)
	doc := "role: web\nroles:\n  web:\n    pool: {tags: {eip-pool: web}}\n"
	type outcome struct {
		instance string
		code     int
		out      string
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	var cmds []*exec.Cmd
	var instances []string
	for range 8 {
		inst := w.tw.NewInstance()
		md := w.tw.IMDSFor(inst, doc)
		cmd := exec.Command(bin, "--timeout", "90s")
		cmd.Env = append(os.Environ(), append(w.moto.Env(), md.Env()...)...)
		cmds = append(cmds, cmd)
		instances = append(instances, inst.ID)
	}
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			mu.Lock()
			outcomes = append(outcomes, outcome{instances[i], code, string(b)})
			mu.Unlock()
		}()
	}
	wg.Wait()
	won, refused := 0, 0
	for _, o := range outcomes {
		switch o.code {
		case 0:
			won++
		case exitcode.Refused:
			refused++
			if !strings.Contains(o.out, "exhausted") {
				t.Errorf("%s refused without saying the pool is exhausted:\n%s", o.instance, o.out)
			}
		default:
			t.Errorf("%s exited %d:\n%s", o.instance, o.code, o.out)
		}
	}
	if won != 4 || refused != 4 {
		t.Errorf("%d claimers won and %d were refused, want 4 and 4", won, refused)
	}
	holders := map[string]string{} // instance -> alloc
	out, err := w.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		t.Fatal(err)
	}
	enis := w.eniOwners()
	for _, a := range out.Addresses {
		alloc := aws.ToString(a.AllocationId)
		eni := aws.ToString(a.NetworkInterfaceId)
		if alloc == decoy {
			if eni != "" {
				t.Errorf("the untagged EIP %s was claimed by %s", decoy, eni)
			}
			continue
		}
		if eni == "" {
			t.Errorf("pool EIP %s is free after eight claimers", alloc)
			continue
		}
		inst := enis[eni]
		if prev, ok := holders[inst]; ok {
			t.Errorf("instance %s holds two EIPs: %s and %s", inst, prev, alloc)
		}
		holders[inst] = alloc
	}
	if len(holders) != 4 {
		t.Errorf("%d distinct holders, want 4: %v", len(holders), holders)
	}
}

// eniOwners maps every interface to its instance.
func (w *world) eniOwners() map[string]string {
	w.t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			for _, n := range i.NetworkInterfaces {
				m[aws.ToString(n.NetworkInterfaceId)] = aws.ToString(i.InstanceId)
			}
		}
	}
	return m
}

func TestReleaseAndStatus(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	w.withUserData(fixedRole(alloc, ""))
	if out, errs, code := eipclaim(t, "--timeout", "60s"); code != 0 {
		t.Fatalf("claim: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code := eipclaim(t, "status", "--json", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{`"role": "db"`, `"public_ip": "` + ip + `"`, `"holder": "` + w.instance + `"`, `"eni_id": "` + w.primaryENI() + `"`,
		`"instance": "` + w.instance + `"`, `"state": "running"`, `"down": false`} {
		if !strings.Contains(out, want) {
			t.Errorf("status --json lacks %s:\n%s", want, out)
		}
	}
	checkSnakeCase(t, out)
	out, errs, code = eipclaim(t, "release", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "released "+ip) {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errs)
	}
	a := w.address(alloc)
	if aws.ToString(a.NetworkInterfaceId) != "" {
		t.Errorf("after release the EIP is still on %s", aws.ToString(a.NetworkInterfaceId))
	}
	for _, tg := range a.Tags {
		if aws.ToString(tg.Key) == "eipclaim:holder" {
			t.Errorf("after release the free EIP still names a holder: eipclaim:holder=%s", aws.ToString(tg.Value))
		}
	}
	out, _, code = eipclaim(t, "release", "--timeout", "60s")
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second release: exit %d, %q; want 0 and nothing to do", code, out)
	}
}

func TestCheck(t *testing.T) {
	w := newWorld(t, "")
	alloc, _ := w.allocate()
	w.withUserData(fixedRole(alloc, ""))
	out, errs, code := eipclaim(t, "check", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("check: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, action := range []string{"ec2:AssociateAddress", "ec2:DescribeAddresses", "ec2:CreateTags", "ec2:DeleteTags", "ec2:DisassociateAddress"} {
		if !strings.Contains(out, fmt.Sprintf("ok      db         %s", action)) {
			t.Errorf("check output lacks an ok line for %s:\n%s", action, out)
		}
	}
	if a := w.address(alloc); aws.ToString(a.AssociationId) != "" || len(a.Tags) != 0 {
		t.Errorf("check changed the EIP: %+v", a)
	}
}

// TestStatusMissingEIP: a role whose EIP does not exist is reported at
// once, exit 2, and the other roles are shown; status does not wait for
// its whole deadline.
func TestStatusMissingEIP(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	webAlloc, webIP := w.allocate()
	missing := "eipalloc-0123456789abcdef0"
	w.withUserData("role: db\nroles:\n  db:\n    allocation_id: " + alloc + "\n  gone:\n    allocation_id: " + missing + "\n  web:\n    allocation_id: " + webAlloc + "\n")
	if out, errs, code := eipclaim(t, "--timeout", "60s"); code != 0 {
		t.Fatalf("claim: exit %d\n%s\n%s", code, out, errs)
	}
	began := time.Now()
	out, errs, code := eipclaim(t, "status", "--timeout", "60s")
	took := time.Since(began)
	t.Logf("status took %v", took)
	if code != exitcode.Usage {
		t.Errorf("status: exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// Status looks for a missing EIP for 2s, not the claim's 15s, nor
	// its whole deadline.
	if took > 12*time.Second {
		t.Errorf("status took %v: it waited for the missing EIP", took)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	if l := lines["gone"]; !strings.Contains(l, "allocation id "+missing+" does not exist in us-east-1: check allocation_id") {
		t.Errorf("the missing role's line does not say its EIP does not exist: %q\n%s", l, out)
	}
	if l := lines["db"]; !strings.Contains(l, ip) || !strings.Contains(l, w.instance) {
		t.Errorf("role db is not shown with %s held by %s: %q\n%s", ip, w.instance, l, out)
	}
	if l := lines["web"]; !strings.Contains(l, webIP) || !strings.Contains(l, "free") {
		t.Errorf("role web (after the missing one) is not shown with %s free: %q\n%s", webIP, l, out)
	}
}

// checkSnakeCase fails t unless every key of the JSON document doc, at every
// depth, is snake_case. The keys of a "tags" object are EC2 tag keys, data
// rather than field names, and are not checked.
func checkSnakeCase(t *testing.T, doc string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	keys := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				keys++
				if !snake.MatchString(k) {
					t.Errorf("key %s.%s is not snake_case", path, k)
				}
				if k != "tags" {
					walk(path+"."+k, e)
				}
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("", v)
	if keys == 0 {
		t.Errorf("no keys in %s", doc)
	}
}

// TestClaimRunsOnHolder: a claim enters the holder state, so the role's
// on_holder hook runs with the EIPCLAIM_* environment (a rerun confirms
// the state and runs it again, as a watcher does at start); a dry run and
// a refused claim run nothing.
func TestClaimRunsOnHolder(t *testing.T) {
	w := newWorld(t, "")
	alloc, ip := w.allocate()
	out := filepath.Join(t.TempDir(), "hook.env")
	hook := "    hooks:\n      on_holder: [\"/bin/sh\", \"-c\", \"env | grep ^EIPCLAIM_ | sort >> " + out + "\"]\n"
	w.withUserData(fixedRole(alloc, hook))
	if stdout, errs, code := eipclaim(t, "--dry-run", "--timeout", "60s"); code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a dry run ran on_holder")
	}
	stdout, errs, code := eipclaim(t, "--timeout", "60s")
	if code != 0 || !strings.Contains(stdout, "on_holder /bin/sh") {
		t.Fatalf("claim: exit %d, stdout does not report the hook\n%s\n%s", code, stdout, errs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("on_holder did not run: %v", err)
	}
	for _, want := range []string{"EIPCLAIM_EVENT=holder", "EIPCLAIM_ROLE=db", "EIPCLAIM_PUBLIC_IP=" + ip, "EIPCLAIM_ALLOCATION_ID=" + alloc, "EIPCLAIM_EPOCH=1", "EIPCLAIM_HOLDER=" + w.instance, "EIPCLAIM_REASON=the EIP was free"} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("the hook's environment lacks %s:\n%s", want, b)
		}
	}
}
