package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The fleet section: the off-box controller (`eipclaim lambda`) over a
// fleet, as issue 18 made it: one schedule run observes every role in a
// few batched reads and moves only what must move.
const (
	fleetRoles   = 40
	fleetDown    = 4  // holders stopped
	fleetMaxReqs = 10 // AWS requests of a steady run over 40 roles (issue 18's target)
	fleetZone    = "fleet.example.internal"
	fleetBucket  = "fleet-config"
	fleetKey     = "eipclaim.yaml"
	// scheduleEvent is what EventBridge's schedule rule sends.
	scheduleEvent = `{"id":"demo","source":"aws.events","detail-type":"Scheduled Event","detail":{}}`
)

// fleetDemo seeds a fleet, runs the real binary as the controller's Lambda
// function under the runtime interface emulator, invokes its schedule on
// the healthy fleet, stops some holders and invokes it again, and checks
// that exactly their EIPs moved to their standbys with their CNAMEs true.
func fleetDemo(ctx context.Context, emu *testenv.Emulators, world *testenv.World, moto *testenv.Moto, bin, dir string) error {
	began := time.Now()
	step("the off-box controller at fleet scale: %d roles, each its own EIP on a holder, a standby tagged %s=<role>, a CNAME in one Route 53 zone", fleetRoles, controller.TagRole)
	cname := func(ip string) string { return publish.PublicDNSName(netip.MustParseAddr(ip), testenv.MotoRegion) }
	f, err := world.SeedFleet(ctx, testenv.FleetOptions{
		Roles: fleetRoles, Zone: fleetZone, RoleTag: controller.TagRole,
		HolderTags: func(holder string) map[string]string {
			return map[string]string{claim.TagHolder: holder, claim.TagEpoch: "1"}
		},
		CNAME: cname,
	})
	if err != nil {
		return err
	}
	s3c := s3.NewFromConfig(moto.Config())
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(fleetBucket)}); err != nil {
		return fmt.Errorf("CreateBucket %s: %w", fleetBucket, err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(fleetBucket), Key: aws.String(fleetKey), Body: strings.NewReader(f.Config())}); err != nil {
		return fmt.Errorf("PutObject s3://%s/%s: %w", fleetBucket, fleetKey, err)
	}
	// The stack's parameters: the role may read this object and change
	// this zone only.
	moto.SetPolicyValues(testenv.PolicyValues{ConfigObject: fleetBucket + "/" + fleetKey, ZoneIDs: []string{f.ZoneID}})
	fmt.Printf("    %d instances, %d EIPs each on its holder, %d CNAMEs in %s (%s), seeded in %s\n", 2*fleetRoles, fleetRoles, fleetRoles, fleetZone, f.ZoneID, time.Since(began).Round(time.Millisecond))
	r := f.Roles[0]
	fmt.Printf("    e.g. role %s: EIP %s on %s, standby %s, %s CNAME %s\n", r.Name, r.EIP.PublicIP, r.Holder.ID, r.Standby.ID, f.Host(r), cname(r.EIP.PublicIP))
	fmt.Printf("    the roles table in s3://%s/%s, one entry a role:\n", fleetBucket, fleetKey)
	fmt.Print(indent(strings.Join(strings.SplitAfterN(f.Config(), "\n", 6)[:5], "") + "  ..."))

	// The function's AWS requests pass a counting proxy, then the IAM gate.
	counting, err := faultproxy.New(moto.Endpoint, faultproxy.Options{})
	if err != nil {
		return err
	}
	defer counting.Close()
	// Lambda's provided.al2023 runtime runs the binary as bootstrap, which
	// makes it `eipclaim lambda`.
	fnDir := filepath.Join(dir, "lambda")
	if err := os.Mkdir(fnDir, 0o755); err != nil {
		return err
	}
	bootstrap := filepath.Join(fnDir, "bootstrap")
	if err := os.Symlink(bin, bootstrap); err != nil {
		return err
	}
	source := fmt.Sprintf("s3://%s/%s", fleetBucket, fleetKey)
	fn, err := emu.RIE(bootstrap, append((&testenv.Moto{Endpoint: counting.URL}).EnvAs(testenv.CallerController), "EIPCLAIM_CONFIG="+source)...)
	if err != nil {
		return err
	}
	step("the same eipclaim binary as the controller's Lambda function (bootstrap, EIPCLAIM_CONFIG=%s) under AWS's runtime interface emulator, with the credentials of deploy/eipclaim-controller.yaml's role", source)
	fmt.Printf("    function at %s\n", fn.Endpoint)

	step("EventBridge's schedule invokes it on the healthy fleet: one run observes all %d roles in batched reads", fleetRoles)
	res, err := invokeSchedule(fn, counting)
	if err != nil {
		return err
	}
	if n := res.actions["already held"]; n != fleetRoles || len(res.moved) != 0 {
		return fmt.Errorf("the steady run: want all %d roles already held, got %s", fleetRoles, res.summary)
	}
	if res.requests > fleetMaxReqs {
		return fmt.Errorf("the steady run made %d AWS requests, want at most %d", res.requests, fleetMaxReqs)
	}

	var stop []string
	stopped := map[string]bool{}
	standbyOf := map[string]testenv.FleetRole{}
	for i, r := range f.Roles {
		if i%(fleetRoles/fleetDown) == 3 {
			stop = append(stop, r.Holder.ID)
			stopped[r.Holder.ID] = true
			standbyOf[r.Name] = r
		}
	}
	step("%d holders stop (%s); the schedule runs again", len(stop), strings.Join(stop, " "))
	if _, err := world.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: stop}); err != nil {
		return fmt.Errorf("StopInstances: %w", err)
	}
	res, err = invokeSchedule(fn, counting)
	if err != nil {
		return err
	}
	for _, d := range res.moved {
		fmt.Printf("    %s: %s, its EIP now on %s (%s)\n", d.Role, d.Action, d.Candidate, d.Reason)
	}
	if got, want := slices.Sorted(maps.Keys(res.movedRoles())), slices.Sorted(maps.Keys(standbyOf)); !slices.Equal(got, want) {
		return fmt.Errorf("the run moved roles %v, want exactly %v", got, want)
	}

	step("what EC2 and Route 53 say now")
	st, err := world.FleetState(ctx, f)
	if err != nil {
		return err
	}
	if problems := f.Problems(st, stopped); len(problems) > 0 {
		return fmt.Errorf("after the run:\n%s", strings.Join(problems, "\n"))
	}
	for _, name := range slices.Sorted(maps.Keys(standbyOf)) {
		r := standbyOf[name]
		fmt.Printf("    %s: EIP %s on the standby %s, %s CNAME %s (names the EIP: true)\n", name, r.EIP.PublicIP, st.Holders[name], f.Host(r), st.CNAMEs[name])
	}
	fmt.Printf("    the other %d roles: each EIP still on its holder, each CNAME true; no instance holds two EIPs\n", fleetRoles-len(standbyOf))
	fmt.Printf("    (this section took %s)\n", time.Since(began).Round(100*time.Millisecond))
	return nil
}

// scheduleRun is what one schedule invocation did.
type scheduleRun struct {
	actions  map[string]int
	moved    []controller.Decision // the decisions that moved an EIP
	requests int
	summary  string
}

func (r scheduleRun) movedRoles() map[string]bool {
	m := map[string]bool{}
	for _, d := range r.moved {
		m[d.Role] = true
	}
	return m
}

// invokeSchedule invokes the schedule, prints the decisions' summary and
// the AWS requests it made, and fails on a function error or a decision
// that failed or was refused.
func invokeSchedule(fn *testenv.RIE, counting *faultproxy.Proxy) (scheduleRun, error) {
	fmt.Printf("    $ curl -d '%s' %s/2015-03-31/functions/function/invocations\n", scheduleEvent, fn.Endpoint)
	before := len(counting.Records())
	inv, err := fn.Call([]byte(scheduleEvent))
	if err != nil {
		return scheduleRun{}, err
	}
	if inv.FunctionError != "" {
		return scheduleRun{}, fmt.Errorf("the function failed (%s): %s\n--- its output ---\n%s", inv.FunctionError, inv.Body, fn.Output())
	}
	var res controller.Result
	if err := json.Unmarshal(inv.Body, &res); err != nil {
		return scheduleRun{}, fmt.Errorf("the function's answer %q: %w", inv.Body, err)
	}
	run := scheduleRun{actions: map[string]int{}}
	for _, d := range res.Decisions {
		run.actions[d.Action]++
		switch d.Action {
		case "failed", "refused":
			return run, fmt.Errorf("role %s: %s: %s %s", d.Role, d.Action, d.Reason, d.Error)
		case "already held", "nothing to do":
		default:
			run.moved = append(run.moved, d)
		}
	}
	var parts []string
	for _, a := range slices.Sorted(maps.Keys(run.actions)) {
		parts = append(parts, fmt.Sprintf("%d %s", run.actions[a], a))
	}
	run.summary = strings.Join(parts, ", ")
	recs := counting.Records()[before:]
	run.requests = len(recs)
	counts := faultproxy.Count(recs)
	var byAction []string
	for _, a := range slices.Sorted(maps.Keys(counts.Actions)) {
		byAction = append(byAction, fmt.Sprintf("%s %d", a, counts.Actions[a].Requests))
	}
	fmt.Printf("    %d decisions in %s: %s\n", len(res.Decisions), inv.Took.Round(time.Millisecond), run.summary)
	fmt.Printf("    %d AWS requests: %s\n", run.requests, strings.Join(byAction, ", "))
	return run, nil
}
