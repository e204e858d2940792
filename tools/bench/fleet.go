package main

// The fleet: the off-box controller (`eipclaim lambda`, internal/controller)
// over N roles at once, each its own EIP on a holder, one standby instance
// tagged eipclaim:role, and a CNAME in one Route 53 zone.
//
// (a) Requests per steady schedule run (nothing to change), for each N of
// -fleet: target ≤ 10 for 40 roles, and growing only with pages
// (DescribeInstances pages of 1000, ListResourceRecordSets pages of 300).
// (b) With -fleet-fail: 10% of the holders of the largest fleet stopped,
// the schedule invoked through a proxy enforcing AWS's token buckets until
// every EIP is on a running instance and every CNAME true: target ≤ 60 s,
// no instance holding two EIPs, no healthy holder moved.
// (c) The peak RSS of each invocation.
//
// Each invocation runs in a child process (this binary again, with
// -fleet-child), the controller in it as Lambda runs it (Handle, with a
// deadline of the template's function timeout), so that its peak RSS is
// the controller's alone.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/eipclaim/eipclaim/internal/awsenv"
	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/config"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

var (
	fleetSizes   = flag.String("fleet", "40,400,1000", "roles of each steady fleet run, comma-separated")
	fleetFail    = flag.Bool("fleet-fail", true, "after the steady runs, stop 10% of the largest fleet's holders and time the failover through AWS's token buckets")
	fleetSkip    = flag.Bool("no-fleet", false, "skip the fleet section")
	fleetChild   = flag.Bool("fleet-child", false, "internal: run one controller invocation (see fleet.go)")
	fleetTimeout = flag.Duration("fleet-timeout", 180*time.Second, "the function timeout an invocation gets (deploy/eipclaim-controller.yaml's Timeout)")
)

// The targets of issue 18.
const (
	targetFleetSteady40 = 10               // AWS requests of a steady schedule run over 40 roles
	targetFleetFailover = 60 * time.Second // 10% of 1000 holders stopped: all moved and published
	fleetZone           = "fleet.example.internal"
	// The same bench on the controller before issue 18 (commit 68a15c8,
	// one role at a time): 240 requests for 40 roles, 2,400 for 400.
	beforeSteady40 = 240
)

// fleetOptions is the fleet of n roles, with the product's tag names and
// CNAME rule.
func fleetOptions(n int) testenv.FleetOptions {
	return testenv.FleetOptions{
		Roles: n, Zone: fleetZone, RoleTag: controller.TagRole,
		HolderTags: func(holder string) map[string]string {
			return map[string]string{claim.TagHolder: holder, claim.TagEpoch: "1"}
		},
		CNAME: func(ip string) string { return publish.PublicDNSName(netip.MustParseAddr(ip), testenv.MotoRegion) },
	}
}

func fleetBench(ctx context.Context, out io.Writer) (err error) {
	var sizes []int
	for _, s := range strings.Split(*fleetSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-fleet %q: want role counts such as 40,400,1000", *fleetSizes)
		}
		sizes = append(sizes, n)
	}
	fmt.Fprintf(out, "\nfleet: the off-box controller's schedule run over N roles (each its own EIP on a holder, a standby tagged %s, a CNAME in one Route 53 zone), one invocation per child process with a %s deadline\n", controller.TagRole, *fleetTimeout)
	var steady []string
	for i, n := range sizes {
		failover := *fleetFail && i == len(sizes)-1
		line, err := fleetRun(ctx, out, n, failover)
		if err != nil {
			return err
		}
		steady = append(steady, line)
	}
	fmt.Fprintln(out, "\nfleet: steady schedule runs (reproduce: go run ./tools/bench -only fleet -fleet "+*fleetSizes+")")
	for _, l := range steady {
		fmt.Fprintln(out, l)
	}
	return nil
}

// fleetRun seeds a fresh moto with n roles, settles it, measures a steady
// run, and with failover the failover of 10% of the holders.
func fleetRun(ctx context.Context, out io.Writer, n int, failover bool) (line string, err error) {
	var emu testenv.Emulators
	defer emu.Close()
	defer func() {
		if err == nil {
			err = emu.GateError()
		}
	}()
	moto, err := emu.Moto()
	if err != nil {
		return "", err
	}
	w := testenv.NewWorld(moto.Config())
	began := time.Now()
	f, err := w.SeedFleet(ctx, fleetOptions(n))
	if err != nil {
		return "", err
	}
	moto.SetPolicyValues(testenv.PolicyValues{ZoneIDs: []string{f.ZoneID}})
	fmt.Fprintf(out, "  N=%d: seeded moto (%d instances, %d EIPs held, %d CNAMEs) in %s\n", n, 2*n, n, n, ms(time.Since(began)))
	dir, err := os.MkdirTemp("", "eipclaim-fleet-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	confPath := dir + "/eipclaim.yaml"
	if err := os.WriteFile(confPath, []byte(f.Config()), 0o600); err != nil {
		return "", err
	}

	// Counted, not limited: the steady run's requests.
	counting, err := faultproxy.New(moto.Endpoint, faultproxy.Options{})
	if err != nil {
		return "", err
	}
	defer counting.Close()
	// A first run settles what the seeding left to settle (none expected).
	warm, err := invokeChild(ctx, counting.URL, confPath)
	if err != nil {
		return "", err
	}
	before := len(counting.Records())
	inv, err := invokeChild(ctx, counting.URL, confPath)
	if err != nil {
		return "", err
	}
	recs := counting.Records()[before:]
	counts := faultproxy.Count(recs)
	byAction := []string{}
	var upstream time.Duration // the emulator's own time answering them
	for _, a := range slices.Sorted(maps.Keys(counts.Actions)) {
		byAction = append(byAction, fmt.Sprintf("%s %d", a, counts.Actions[a].Requests))
		upstream += counts.Actions[a].Upstream
	}
	fmt.Fprintf(out, "  N=%d: warm-up run %s (%s); steady run %s (CPU %s; moto answering its requests %s), %d AWS requests (%s), actions %s, peak RSS %s\n",
		n, ms(warm.took), warm.summary, ms(inv.took), ms(inv.cpu), ms(upstream), len(recs), strings.Join(byAction, ", "), inv.summary, mb(inv.rss))
	target := ""
	if n == 40 {
		target = fmt.Sprintf("  target ≤ %d: %s (ratio %.2f); before: %d (%.0f× fewer now)", targetFleetSteady40, verdict(len(recs) <= targetFleetSteady40),
			float64(len(recs))/targetFleetSteady40, beforeSteady40, float64(beforeSteady40)/float64(max(len(recs), 1)))
	}
	line = fmt.Sprintf("  N=%-5d %4d AWS requests per steady run (%.3f per role), %s (CPU %s), peak RSS %s%s", n, len(recs), float64(len(recs))/float64(n), ms(inv.took), ms(inv.cpu), mb(inv.rss), target)
	if !failover {
		return line, nil
	}
	return line, fleetFailover(ctx, out, w, f, moto.Endpoint, confPath)
}

// failover stops a tenth of the holders and invokes the schedule through
// the token buckets until every EIP is on a running instance with its
// CNAME true, then checks that no instance holds two EIPs and no healthy
// holder lost its EIP.
func fleetFailover(ctx context.Context, out io.Writer, w *testenv.World, f *testenv.Fleet, endpoint, confPath string) error {
	n := len(f.Roles)
	var stop []string
	stopped := map[string]bool{}
	for i, r := range f.Roles {
		if i%10 == 0 {
			stop = append(stop, r.Holder.ID)
			stopped[r.Holder.ID] = true
		}
	}
	for chunk := range slices.Chunk(stop, 500) {
		if _, err := w.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: chunk}); err != nil {
			return fmt.Errorf("StopInstances: %w", err)
		}
	}
	limited, err := faultproxy.New(endpoint, faultproxy.Options{Limits: faultproxy.AWSLimits()})
	if err != nil {
		return err
	}
	defer limited.Close()
	fmt.Fprintf(out, "  failover: %d of %d holders stopped; invoking the schedule through AWS's token buckets until every EIP is on a running instance and every CNAME true\n", len(stop), n)
	start := time.Now()
	var invs []childRun
	var problems []string
	var took time.Duration // from the stop to the end of the last invocation (the checks between excluded)
	for {
		began := time.Now()
		inv, err := invokeChild(ctx, limited.URL, confPath)
		if err != nil {
			return err
		}
		took += time.Since(began)
		if len(invs) == 0 {
			took += began.Sub(start)
		}
		invs = append(invs, inv)
		st, err := w.FleetState(ctx, f)
		if err != nil {
			return err
		}
		problems = f.Problems(st, stopped)
		if len(problems) == 0 || len(invs) == 5 {
			break
		}
	}
	counts := limited.Counts()
	doubles, healthyMoved := 0, 0
	for _, p := range problems {
		switch {
		case strings.HasPrefix(p, "double"):
			doubles++
		case strings.HasPrefix(p, "moved healthy"):
			healthyMoved++
		}
	}
	rss := int64(0)
	for _, inv := range invs {
		rss = max(rss, inv.rss)
		fmt.Fprintf(out, "    invocation: %s (CPU %s), %s, peak RSS %s\n", ms(inv.took), ms(inv.cpu), inv.summary, mb(inv.rss))
	}
	fmt.Fprintf(out, "  failover: %d invocation(s), %s from the stop to all %d EIPs moved and CNAMEs true (as checked after each invocation): target ≤ %s: %s (ratio %.2f); %d requests (%d throttled by the buckets); double holders %d (target 0), healthy holders moved %d (target 0), peak RSS %s\n",
		len(invs), ms(took), len(stop), targetFleetFailover, verdict(len(problems) == 0 && took <= targetFleetFailover), took.Seconds()/targetFleetFailover.Seconds(),
		counts.Total, counts.Limited, doubles, healthyMoved, mb(rss))
	for i, p := range problems {
		if i == 10 {
			fmt.Fprintf(out, "    ... %d more\n", len(problems)-10)
			break
		}
		fmt.Fprintln(out, "    PROBLEM:", p)
	}
	return nil
}

// childRun is what one invocation in a child process did.
type childRun struct {
	took    time.Duration
	cpu     time.Duration // user + system: at Lambda's CPU share for its memory size, the time it needs
	rss     int64
	summary string
}

// childReport is what the child prints.
type childReport struct {
	Took    time.Duration  `json:"took"`
	Actions map[string]int `json:"actions"`
	Error   string         `json:"error,omitempty"`
}

func invokeChild(ctx context.Context, endpoint, confPath string) (childRun, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-fleet-child", "-fleet-timeout", fleetTimeout.String())
	cmd.Env = append(os.Environ(), (&testenv.Moto{Endpoint: endpoint}).EnvAs(testenv.CallerController)...)
	cmd.Env = append(cmd.Env, "BENCH_FLEET_CONFIG="+confPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return childRun{}, fmt.Errorf("the controller's invocation: %w\n%s", err, lastLines(stderr.String(), 20))
	}
	var rep childReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return childRun{}, fmt.Errorf("the controller's invocation printed %q: %w", b, err)
	}
	var parts []string
	for _, a := range slices.Sorted(maps.Keys(rep.Actions)) {
		parts = append(parts, fmt.Sprintf("%d %s", rep.Actions[a], a))
	}
	s := strings.Join(parts, ", ")
	if rep.Error != "" {
		s += "; error: " + rep.Error
	}
	ps := cmd.ProcessState
	return childRun{took: rep.Took, cpu: ps.UserTime() + ps.SystemTime(), rss: maxRSS(ps), summary: s}, nil
}

// runFleetChild is the child: one schedule invocation of the controller,
// with the template's deadline, its endpoints and credentials from the
// environment (the controller's caller).
func runFleetChild() error {
	ctx := context.Background()
	doc, err := os.ReadFile(os.Getenv("BENCH_FLEET_CONFIG"))
	if err != nil {
		return err
	}
	cfg, err := config.Parse(doc, "bench")
	if err != nil {
		return err
	}
	// The AWS configuration as `eipclaim lambda` loads it (its retryer
	// too), from the environment the parent gave: the controller's caller.
	env, err := awsenv.Load(ctx, awsenv.Options{})
	if err != nil {
		return err
	}
	awsCfg := env.Config
	c := &controller.Controller{
		EC2:     ec2.NewFromConfig(awsCfg),
		Route53: route53.NewFromConfig(awsCfg),
		Config:  func(context.Context) (*config.Config, error) { return cfg, nil },
		Region:  testenv.MotoRegion,
	}
	ctx, cancel := context.WithTimeout(ctx, *fleetTimeout)
	defer cancel()
	began := time.Now()
	res, err := c.Handle(ctx, []byte(`{"id":"bench","source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	rep := childReport{Took: time.Since(began), Actions: map[string]int{}}
	if res != nil {
		for _, d := range res.Decisions {
			rep.Actions[d.Action]++
		}
	}
	if err != nil {
		rep.Error = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
