package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/controller"
	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/publish"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	bucket    = "fleet-config"
	configKey = "eipclaim.yaml"
	source    = "s3://" + bucket + "/" + configKey
)

// fixture is moto seeded with a roles table in S3, and helpers.
type fixture struct {
	t    *testing.T
	moto *testenv.Moto
	w    *testenv.TestWorld
	cfg  aws.Config
	zone string
}

func newFixture(t *testing.T) *fixture {
	moto := testenv.SharedMoto(t)
	cfg := moto.Config()
	f := &fixture{t: t, moto: moto, w: testenv.NewTestWorld(t, cfg), cfg: cfg}
	if _, err := s3.NewFromConfig(cfg).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	f.zone = f.w.NewZone("example.internal", true)
	// The template's parameters, as the stack of this world would have
	// them: the IAM gate judges the function with the template's role.
	moto.SetPolicyValues(testenv.PolicyValues{ConfigObject: bucket + "/" + configKey, TableObject: bucket + "/roles.json", ZoneIDs: []string{f.zone}})
	return f
}

// putConfig writes the roles table to S3.
func (f *fixture) putConfig(doc string) {
	f.t.Helper()
	_, err := s3.NewFromConfig(f.cfg).PutObject(f.t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(configKey), Body: strings.NewReader(doc)})
	if err != nil {
		f.t.Fatal(err)
	}
}

// roleDoc is a role with a fixed EIP and a Route 53 CNAME.
func (f *fixture) roleDoc(role, alloc string) string {
	return fmt.Sprintf("  %s:\n    allocation_id: %s\n    dns:\n      route53: {zone_id: %s, name: %s.example.internal, ttl: 60}\n", role, alloc, f.zone, role)
}

// candidates runs n instances tagged eipclaim:role=role.
func (f *fixture) candidates(role string, n int) []testenv.Instance {
	f.t.Helper()
	is := f.w.NewInstances(n)
	ids := make([]string, n)
	for i := range is {
		ids[i] = is[i].ID
	}
	_, err := f.w.EC2.CreateTags(f.t.Context(), &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String(controller.TagRole), Value: aws.String(role)}}})
	if err != nil {
		f.t.Fatal(err)
	}
	return is
}

func (f *fixture) stop(id string) {
	f.t.Helper()
	if _, err := f.w.EC2.StopInstances(f.t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		f.t.Fatal(err)
	}
}

// holder returns the interface holding the EIP ("" when free) and its
// epoch tag (moto leaves InstanceId empty for an association made by
// interface).
func (f *fixture) holder(alloc string) (string, string) {
	f.t.Helper()
	a := f.w.Address(alloc)
	epoch := ""
	for _, t := range a.Tags {
		if aws.ToString(t.Key) == claim.TagEpoch {
			epoch = aws.ToString(t.Value)
		}
	}
	return aws.ToString(a.NetworkInterfaceId), epoch
}

// cname returns the role's CNAME in the zone, "" if none.
func (f *fixture) cname(name string) string {
	f.t.Helper()
	out, err := route53.NewFromConfig(f.cfg).ListResourceRecordSets(f.t.Context(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.zone)})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, rr := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(rr.Name), ".") == name && rr.Type == r53types.RRTypeCname && len(rr.ResourceRecords) > 0 {
			return strings.TrimSuffix(aws.ToString(rr.ResourceRecords[0].Value), ".")
		}
	}
	return ""
}

func dnsName(t *testing.T, publicIP string) string {
	t.Helper()
	return publish.PublicDNSName(netip.MustParseAddr(publicIP), testenv.MotoRegion)
}

// lambdaFn is the bootstrap binary under the runtime interface emulator,
// its AWS endpoints moto, except Auto Scaling's CompleteLifecycleAction
// (see lifecycleStandIn).
func (f *fixture) lambdaFn(extraEnv ...string) *testenv.RIE {
	f.t.Helper()
	env := append(f.moto.EnvAs(testenv.CallerController), "EIPCLAIM_CONFIG="+source)
	return testenv.StartRIE(f.t, testenv.Bootstrap(f.t), append(env, extraEnv...)...)
}

// invoke posts the event and decodes the function's result; a function
// error fails the test.
func invoke(t *testing.T, fn *testenv.RIE, event string) (controller.Result, time.Duration) {
	t.Helper()
	inv := fn.Invoke(t, []byte(event))
	if inv.FunctionError != "" {
		t.Fatalf("the function failed (%s): %s\n--- output ---\n%s", inv.FunctionError, inv.Body, fn.Output())
	}
	var res controller.Result
	if err := json.Unmarshal(inv.Body, &res); err != nil {
		t.Fatalf("the function's answer %q: %v", inv.Body, err)
	}
	return res, inv.Took
}

func stateChange(id, state string) string {
	return fmt.Sprintf(`{"version":"0","id":"ev-%s-%s","detail-type":%q,"source":"aws.ec2","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/%s"],"detail":{"instance-id":%q,"state":%q}}`,
		id, state, controller.DetailStateChange, id, id, state)
}

func lifecycle(detailType, transition, group, hook, id, token string) string {
	return fmt.Sprintf(`{"version":"0","id":"ev-%s","detail-type":%q,"source":"aws.autoscaling","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"LifecycleActionToken":%q,"AutoScalingGroupName":%q,"LifecycleHookName":%q,"EC2InstanceId":%q,"LifecycleTransition":%q}}`,
		token, detailType, token, group, hook, id, transition)
}

const scheduled = `{"version":"0","id":"ev-schedule","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/eipclaim-reconcile"],"detail":{}}`

// TestLambdaHolderStoppedMovesEIP: the holder stops; the state-change event
// moves the EIP to the healthy candidate and repoints the CNAME; the same
// event again changes nothing. It measures the time from the event to the
// EIP moved.
func TestLambdaHolderStoppedMovesEIP(t *testing.T) {
	f := newFixture(t)
	is := f.candidates("db", 2)
	a, b := is[0], is[1]
	eip := f.w.NewEIP(nil)
	f.w.Associate(eip.AllocationID, a.ID)
	f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
	fn := f.lambdaFn()
	// A first invocation starts the function (Lambda's cold start); the
	// measured one then runs warm, as a function invoked every few minutes
	// by the schedule does.
	cold, coldTook := invoke(t, fn, scheduled)
	t.Logf("cold invocation (schedule) took %s: %+v", coldTook, cold.Decisions)

	f.stop(a.ID)
	moved := make(chan time.Duration, 1)
	began := time.Now()
	go func() { // watch DescribeAddresses, the truth, from the event on
		for time.Since(began) < time.Minute {
			out, err := f.w.EC2.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{AllocationIds: []string{eip.AllocationID}})
			if err == nil && len(out.Addresses) == 1 && aws.ToString(out.Addresses[0].NetworkInterfaceId) == b.ENI {
				moved <- time.Since(began)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(moved)
	}()
	res, took := invoke(t, fn, stateChange(a.ID, "stopped"))
	toMove, ok := <-moved
	if !ok {
		t.Fatalf("the EIP never moved to %s; decisions %+v", b.ID, res.Decisions)
	}
	t.Logf("event to EIP moved: %s (seen in DescribeAddresses); invocation with read-back and DNS: %s", toMove, took)
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "taken over" || res.Decisions[0].Candidate != b.ID {
		t.Fatalf("decisions %+v, want one: taken over for %s", res.Decisions, b.ID)
	}
	holder, epoch := f.holder(eip.AllocationID)
	if holder != b.ENI || epoch != "2" { // the cold run's "already held" tagged epoch 1
		t.Fatalf("after the event: holder %s epoch %s, want %s epoch 2", holder, epoch, b.ID)
	}
	if got, want := f.cname("db.example.internal"), dnsName(t, eip.PublicIP); got != want {
		t.Fatalf("CNAME %q, want %q", got, want)
	}

	// The same event again (EventBridge delivers at least once).
	res, _ = invoke(t, fn, stateChange(a.ID, "stopped"))
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "nothing to do" {
		t.Fatalf("duplicate event: decisions %+v, want nothing to do", res.Decisions)
	}
	if holder, epoch := f.holder(eip.AllocationID); holder != b.ENI || epoch != "2" {
		t.Fatalf("after the duplicate: holder %s epoch %s, want %s epoch 2 (one move)", holder, epoch, b.ID)
	}
	if !strings.Contains(fn.Output(), `"msg":"decision"`) {
		t.Fatalf("no decision log line in the function's output:\n%s", fn.Output())
	}
}

// lifecycleStandIn stands between the function and moto for Auto Scaling:
// moto (5.2) does not implement CompleteLifecycleAction (it answers 500),
// so the stand-in answers it, after checking in moto that the group's hook
// exists, and records the call; every other request goes to moto.
type lifecycleStandIn struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []url.Values
}

func newLifecycleStandIn(t *testing.T, f *fixture) *lifecycleStandIn {
	target, _ := url.Parse(f.moto.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	as := autoscaling.NewFromConfig(f.cfg)
	s := &lifecycleStandIn{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if faultproxy.Action(r, body) != "CompleteLifecycleAction" {
			proxy.ServeHTTP(w, r)
			return
		}
		form, _ := url.ParseQuery(string(body))
		out, err := as.DescribeLifecycleHooks(r.Context(), &autoscaling.DescribeLifecycleHooksInput{
			AutoScalingGroupName: aws.String(form.Get("AutoScalingGroupName")), LifecycleHookNames: []string{form.Get("LifecycleHookName")}})
		if err != nil || len(out.LifecycleHooks) != 1 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>No active Lifecycle Action found</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
			return
		}
		s.mu.Lock()
		s.calls = append(s.calls, form)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *lifecycleStandIn) completed() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.calls...)
}

// newGroup creates an Auto Scaling group with a terminate and a launch hook
// in moto (no instances of its own: the world's instances stand for them).
func (f *fixture) newGroup(name string) {
	f.t.Helper()
	ctx := f.t.Context()
	as := autoscaling.NewFromConfig(f.cfg)
	_, err := as.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String(name + "-lc"), ImageId: aws.String("ami-12c6146b"), InstanceType: aws.String("t3.micro")})
	if err != nil {
		f.t.Fatal(err)
	}
	_, err = as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), LaunchConfigurationName: aws.String(name + "-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"}})
	if err != nil {
		f.t.Fatal(err)
	}
	for hook, tr := range map[string]string{"eipclaim-launch": controller.TransitionLaunching, "eipclaim-terminate": controller.TransitionTerminating} {
		_, err = as.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String(name), LifecycleHookName: aws.String(hook),
			LifecycleTransition: aws.String(tr), DefaultResult: aws.String("CONTINUE"), HeartbeatTimeout: aws.Int32(300)})
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// TestLambdaLifecycleTerminatingHandsOver: Auto Scaling terminates the
// (healthy) holder; the controller hands the EIP to the other candidate,
// then completes the lifecycle action. With no candidate left, the next
// terminating holder's EIP is released, and the action completed too.
func TestLambdaLifecycleTerminatingHandsOver(t *testing.T) {
	f := newFixture(t)
	is := f.candidates("db", 2)
	a, b := is[0], is[1]
	eip := f.w.NewEIP(nil)
	f.w.Associate(eip.AllocationID, a.ID)
	f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
	f.newGroup("db-asg")
	standIn := newLifecycleStandIn(t, f)
	fn := f.lambdaFn("AWS_ENDPOINT_URL_AUTO_SCALING=" + standIn.srv.URL)

	res, _ := invoke(t, fn, lifecycle(controller.DetailTerminate, controller.TransitionTerminating, "db-asg", "eipclaim-terminate", a.ID, "tok-1"))
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "handed over" || res.Decisions[0].Candidate != b.ID {
		t.Fatalf("decisions %+v, want handed over to %s", res.Decisions, b.ID)
	}
	if res.Decisions[0].Lifecycle != "completed: CONTINUE" {
		t.Fatalf("lifecycle %q, want completed: CONTINUE", res.Decisions[0].Lifecycle)
	}
	if holder, _ := f.holder(eip.AllocationID); holder != b.ENI {
		t.Fatalf("holder %s, want %s", holder, b.ID)
	}
	calls := standIn.completed()
	if len(calls) != 1 || calls[0].Get("InstanceId") != a.ID || calls[0].Get("LifecycleActionToken") != "tok-1" ||
		calls[0].Get("LifecycleActionResult") != "CONTINUE" || calls[0].Get("LifecycleHookName") != "eipclaim-terminate" {
		t.Fatalf("CompleteLifecycleAction calls %v, want one for %s with tok-1, CONTINUE", calls, a.ID)
	}

	// b is the last candidate: terminating it leaves the EIP free.
	f.stop(a.ID)
	res, _ = invoke(t, fn, lifecycle(controller.DetailTerminate, controller.TransitionTerminating, "db-asg", "eipclaim-terminate", b.ID, "tok-2"))
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "released" {
		t.Fatalf("decisions %+v, want released", res.Decisions)
	}
	if holder, _ := f.holder(eip.AllocationID); holder != "" {
		t.Fatalf("holder %s, want the EIP free", holder)
	}
	if n := len(standIn.completed()); n != 2 {
		t.Fatalf("%d CompleteLifecycleAction calls, want 2", n)
	}
}

// TestLambdaLifecycleLaunchingClaims: Auto Scaling launches the role's only
// candidate while the EIP is free: it is claimed for it before InService.
func TestLambdaLifecycleLaunchingClaims(t *testing.T) {
	f := newFixture(t)
	c := f.candidates("db", 1)[0]
	eip := f.w.NewEIP(nil)
	f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
	f.newGroup("db-asg")
	standIn := newLifecycleStandIn(t, f)
	fn := f.lambdaFn("AWS_ENDPOINT_URL_AUTO_SCALING=" + standIn.srv.URL)
	res, _ := invoke(t, fn, lifecycle(controller.DetailLaunch, controller.TransitionLaunching, "db-asg", "eipclaim-launch", c.ID, "tok-l"))
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "claimed" || res.Decisions[0].Lifecycle != "completed: CONTINUE" {
		t.Fatalf("decisions %+v, want claimed and the action completed", res.Decisions)
	}
	if holder, epoch := f.holder(eip.AllocationID); holder != c.ENI || epoch != "1" {
		t.Fatalf("holder %s epoch %s, want %s epoch 1", holder, epoch, c.ID)
	}
	if n := len(standIn.completed()); n != 1 {
		t.Fatalf("%d CompleteLifecycleAction calls, want 1", n)
	}
}

// TestLambdaScheduleRepairs: the schedule claims a free EIP for a candidate
// and repairs a CNAME that points elsewhere, without moving the healthy
// holder's EIP.
func TestLambdaScheduleRepairs(t *testing.T) {
	f := newFixture(t)
	db := f.candidates("db", 1)[0]
	web := f.candidates("web", 1)[0]
	dbEIP, webEIP := f.w.NewEIP(nil), f.w.NewEIP(nil)
	f.w.Associate(webEIP.AllocationID, web.ID)
	f.putConfig("roles:\n" + f.roleDoc("db", dbEIP.AllocationID) + f.roleDoc("web", webEIP.AllocationID))
	// A stale record: web's name points at an old address.
	_, err := route53.NewFromConfig(f.cfg).ChangeResourceRecordSets(t.Context(), &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(f.zone),
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("web.example.internal"), Type: r53types.RRTypeCname, TTL: aws.Int64(60),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("ec2-127-9-9-9.compute-1.amazonaws.com")}}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	webAssoc := aws.ToString(f.w.Address(webEIP.AllocationID).AssociationId)
	fn := f.lambdaFn()
	res, _ := invoke(t, fn, scheduled)
	actions := map[string]string{}
	for _, d := range res.Decisions {
		actions[d.Role] = d.Action
	}
	if actions["db"] != "claimed" || actions["web"] != "already held" {
		t.Fatalf("decisions %+v, want db claimed and web already held", res.Decisions)
	}
	if holder, _ := f.holder(dbEIP.AllocationID); holder != db.ENI {
		t.Fatalf("db holder %s, want %s", holder, db.ID)
	}
	if got := aws.ToString(f.w.Address(webEIP.AllocationID).AssociationId); got != webAssoc {
		t.Fatalf("web's association changed from %s to %s: the healthy holder's EIP must stay", webAssoc, got)
	}
	for role, eip := range map[string]testenv.EIP{"db": dbEIP, "web": webEIP} {
		if got, want := f.cname(role+".example.internal"), dnsName(t, eip.PublicIP); got != want {
			t.Fatalf("%s CNAME %q, want %q", role, got, want)
		}
	}
}

// TestLambdaRacesInstanceClaim: the controller claims a free EIP for one
// candidate while `eipclaim claim` runs on another: one holder, one move.
func TestLambdaRacesInstanceClaim(t *testing.T) {
	f := newFixture(t)
	is := f.candidates("db", 2)
	eip := f.w.NewEIP(nil)
	f.putConfig("roles:\n" + f.roleDoc("db", eip.AllocationID))
	fn := f.lambdaFn()
	md := f.w.IMDSFor(is[1], "")
	bin := testenv.Eipclaim(t)
	// Start the function first (an instance of no role: nothing to do).
	if res, _ := invoke(t, fn, stateChange(f.w.NewInstance().ID, "running")); len(res.Decisions) != 1 || res.Decisions[0].Action != "ignored" {
		t.Fatalf("an instance of no role: decisions %+v, want ignored", res.Decisions)
	}

	var wg sync.WaitGroup
	var claimOut []byte
	var claimErr error
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		cmd := exec.Command(bin, "claim", "--config", source, "--role", "db", "--timeout", "60s")
		cmd.Env = append(append(os.Environ(), f.moto.Env()...), md.Env()...)
		claimOut, claimErr = cmd.CombinedOutput()
	})
	var res controller.Result
	wg.Go(func() {
		<-start
		res, _ = invoke(t, fn, stateChange(is[0].ID, "running"))
	})
	close(start)
	wg.Wait()
	holder, epoch := f.holder(eip.AllocationID)
	if holder != is[0].ENI && holder != is[1].ENI {
		t.Fatalf("holder %q, want one of the candidates; claim: %v\n%s", holder, claimErr, claimOut)
	}
	if epoch != "1" {
		t.Fatalf("epoch %s, want 1: one move; controller %+v; claim: %v\n%s", epoch, res.Decisions, claimErr, claimOut)
	}
	t.Logf("winner %s; controller: %+v; claim: %v", holder, res.Decisions, claimErr)
	// The loser knows it lost: the claim was refused (exit 4), or the
	// controller found the EIP held.
	if holder == is[0].ENI {
		if ee, ok := claimErr.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
			t.Fatalf("the controller won, but the claim ended with %v, want exit 4\n%s", claimErr, claimOut)
		}
	} else if len(res.Decisions) != 1 || (res.Decisions[0].Action != "nothing to do" && res.Decisions[0].Action != "refused") {
		t.Fatalf("the claim won, but the controller decided %+v", res.Decisions)
	}
}

// TestLambdaWritesRoleTable: with repository: set, the controller's claim
// writes the role's entry in the role table, like every other publication.
func TestLambdaWritesRoleTable(t *testing.T) {
	f := newFixture(t)
	db := f.candidates("db", 1)[0]
	eip := f.w.NewEIP(nil)
	f.putConfig("repository: s3://" + bucket + "/roles.json\nroles:\n" + f.roleDoc("db", eip.AllocationID))
	res, _ := invoke(t, f.lambdaFn(), scheduled)
	if len(res.Decisions) != 1 || res.Decisions[0].Action != "claimed" {
		t.Fatalf("decisions %+v, want db claimed", res.Decisions)
	}
	out, err := s3.NewFromConfig(f.cfg).GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("roles.json")})
	if err != nil {
		t.Fatalf("the role table was not written: %v", err)
	}
	defer out.Body.Close()
	var doc struct {
		Version int `json:"version"`
		Roles   map[string]struct {
			PrivateIP string `json:"private_ip"`
			PublicIP  string `json:"public_ip"`
			Holder    string `json:"holder"`
			Epoch     int64  `json:"epoch"`
		} `json:"roles"`
	}
	if err := json.NewDecoder(out.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	e := doc.Roles["db"]
	if doc.Version != 1 || e.PrivateIP != db.PrivateIP || e.PublicIP != eip.PublicIP || e.Holder != db.ID || e.Epoch != 1 {
		t.Errorf("table %+v, want db at %s / %s held by %s, epoch 1", doc, db.PrivateIP, eip.PublicIP, db.ID)
	}
}

// TestLambdaBrokenRolesStarveNone: nine roles whose EIPs do not exist and
// one free role with a healthy candidate. The schedule observes them all
// in one read: the nine are reported at once ("not found", the invocation
// fails with exit 2 so that the error shows), and the free role is
// claimed and published, in far less time than the 15 s the engine would
// give a single missing EIP to appear.
func TestLambdaBrokenRolesStarveNone(t *testing.T) {
	f := newFixture(t)
	web := f.candidates("web", 1)[0]
	eip := f.w.NewEIP(nil)
	doc := "roles:\n" + f.roleDoc("web", eip.AllocationID)
	for i := range 9 {
		doc += f.roleDoc(fmt.Sprintf("gone%d", i), fmt.Sprintf("eipalloc-%017x", i+1))
	}
	f.putConfig(doc)
	fn := f.lambdaFn()
	inv := fn.Invoke(t, []byte(scheduled))
	// (The emulator answers a function error without its header.)
	if body := string(inv.Body); !strings.Contains(body, "errorMessage") || !strings.Contains(body, "not found") {
		t.Errorf("the invocation answered %s; want it failed naming the missing EIPs", body)
	}
	if inv.Took > 10*time.Second {
		t.Errorf("the invocation took %s: the missing EIPs held it up", inv.Took)
	}
	if holder, _ := f.holder(eip.AllocationID); holder != web.ENI {
		t.Fatalf("web's EIP on %q, want %s (%s)\n%s", holder, web.ID, web.ENI, fn.Output())
	}
	if got, want := f.cname("web.example.internal"), dnsName(t, eip.PublicIP); got != want {
		t.Errorf("web CNAME %q, want %q", got, want)
	}
	out := fn.Output()
	for i := range 9 {
		if !strings.Contains(out, fmt.Sprintf(`"role":"gone%d","action":"failed"`, i)) {
			t.Errorf("no failed decision logged for gone%d", i)
		}
	}
}
