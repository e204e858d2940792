package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
	"github.com/eipclaim/eipclaim/internal/watch"
)

// The watch tests run real `eipclaim watch` processes, one per instance,
// each with its own IMDS emulator and its own counting proxy to moto. The
// health checks' private IPs (moto's 10.x) are mapped to loopback
// listeners by the test build's EIPCLAIM_TEST_DIAL: no test dials 10.x.

// watcher is one `eipclaim watch` process on its own instance.
type watcher struct {
	inst    testenv.Instance
	md      *testenv.IMDS // its instance's metadata service
	hookDir string        // where its hooks write their environment
	metrics string        // its --metrics-file
	ec2     *faultproxy.Proxy
	cmd     *exec.Cmd
	stderr  *testenv.LockedBuffer
	done    chan struct{}
	err     error
}

type watchWorld struct {
	t      *testing.T
	bin    string
	moto   *testenv.Moto
	tw     *testenv.TestWorld
	eip    testenv.EIP
	zoneID string
	config string
	dial   []string
	ec2    func(seed uint64) faultproxy.Options
	seeds  uint64
	run    string // RUNTIME_DIRECTORY of every watcher of this world (their locks)
	// truthEvery, when set, shortens the watchers' truth checks
	// (EIPCLAIM_TEST_TRUTH_EVERY).
	truthEvery string
}

// hookScript writes the hook's EIPCLAIM_* environment to a new file in
// $HOOK_DIR named after the event.
// hookScript records a hook's environment in a file of its own, written
// aside and renamed, so that a test never reads it half-written.
const hookScript = `f="$HOOK_DIR/.tmp.$$"; env | grep ^EIPCLAIM_ > "$f" && mv "$f" "$HOOK_DIR/$EIPCLAIM_EVENT.$(date +%s%N)"`

func newWatchWorld(t *testing.T, roleExtra string) *watchWorld {
	t.Helper()
	bin := testenv.EipclaimTestHooks(t)
	moto := testenv.SharedMoto(t)
	tw := testenv.NewTestWorld(t, moto.Config())
	w := &watchWorld{t: t, bin: bin, moto: moto, tw: tw, eip: tw.NewEIP(nil), zoneID: tw.NewZone("example.internal", false)}
	w.config = filepath.Join(t.TempDir(), "eipclaim.yaml")
	doc := fmt.Sprintf(`role: db
roles:
  db:
    allocation_id: %s
    health_check: tcp:5432
    dns:
      route53: {zone_id: %s, name: db.example.internal, ttl: 30}
%s`, w.eip.AllocationID, w.zoneID, roleExtra)
	if !strings.Contains(roleExtra, "hooks:") {
		doc += "    hooks:\n      on_holder: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      on_standby: [\"/bin/sh\", \"-c\", '" + hookScript + "']\n      timeout: 5s\n"
	}
	if err := os.WriteFile(w.config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// instance runs an instance whose health check answers on svc.
func (w *watchWorld) instance(svc *testenv.Service) testenv.Instance {
	w.t.Helper()
	inst := w.tw.NewInstance()
	w.dial = append(w.dial, inst.PrivateIP+"="+svc.Addr())
	return inst
}

// start starts the watcher of inst. Start every instance first: the dial
// map is fixed at a watcher's start.
func (w *watchWorld) start(inst testenv.Instance, args ...string) *watcher {
	w.t.Helper()
	md := w.tw.IMDSFor(inst, "")
	w.seeds++
	var opts faultproxy.Options
	if w.ec2 != nil {
		opts = w.ec2(w.seeds)
	}
	px, err := faultproxy.New(w.moto.Endpoint, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { px.Close() })
	wt := &watcher{inst: inst, md: md, hookDir: w.t.TempDir(), ec2: px, stderr: &testenv.LockedBuffer{}, done: make(chan struct{})}
	wt.metrics = filepath.Join(wt.hookDir, "metrics.prom")
	moto := &testenv.Moto{Endpoint: px.URL}
	env := append(os.Environ(), moto.Env()...)
	env = append(env, md.Env()...)
	if w.run == "" {
		w.run = w.t.TempDir()
	}
	env = append(env, "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=", "NOTIFY_SOCKET=", "HOOK_DIR="+wt.hookDir, "RUNTIME_DIRECTORY="+w.run,
		"EIPCLAIM_TEST_DIAL="+strings.Join(w.dial, ","), "EIPCLAIM_TEST_TRUTH_EVERY="+w.truthEvery)
	wt.cmd = exec.Command(w.bin, append([]string{"watch", "--config", w.config, "--log-format", "json", "--timeout", "60s", "--metrics-file", wt.metrics}, args...)...)
	wt.cmd.Env = env
	wt.cmd.Stderr = wt.stderr
	if err := wt.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { wt.err = wt.cmd.Wait(); close(wt.done) }()
	w.t.Cleanup(func() {
		wt.cmd.Process.Kill()
		<-wt.done
		if w.t.Failed() {
			w.t.Logf("watcher %s stderr:\n%s", inst.ID, wt.stderr)
		}
	})
	return wt
}

// hooks returns the environments of the hook runs of event, oldest first.
func (wt *watcher) hooks(t *testing.T, event string) []map[string]string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(wt.hookDir, event+".*"))
	var envs []map[string]string
	for _, n := range names { // the names sort by time
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for l := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
			m[k] = v
		}
		envs = append(envs, m)
	}
	return envs
}

// stopTerm sends SIGTERM and wants exit 0 within limit.
func (wt *watcher) stopTerm(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	wt.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-wt.done:
	case <-time.After(limit):
		t.Fatalf("watcher %s did not exit within %s of SIGTERM\n%s", wt.inst.ID, limit, wt.stderr)
	}
	took := time.Since(began)
	if wt.err != nil {
		t.Fatalf("watcher %s: %v after SIGTERM, want exit 0\n%s", wt.inst.ID, wt.err, wt.stderr)
	}
	return took
}

// waitFor polls cond every 100ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > limit {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(began)
}

// eventually polls cond every 100ms until it holds (true) or limit passes
// (false).
func eventually(limit time.Duration, cond func() bool) bool {
	for began := time.Now(); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Since(began) > limit {
			return false
		}
	}
	return true
}

// holderENI is the interface that holds the EIP now.
func (w *watchWorld) holderENI() string {
	return aws.ToString(w.tw.Address(w.eip.AllocationID).NetworkInterfaceId)
}

func (w *watchWorld) stopInstance(inst testenv.Instance) {
	w.t.Helper()
	if _, err := w.tw.EC2.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		w.t.Fatal(err)
	}
}

// cname is the value of db.example.internal.
func (w *watchWorld) cname() string {
	return cnames(w.t, w.tw.Route53, w.zoneID)["db.example.internal."]
}

const watchFast = "    watch: {interval: 1s, fall: 2, hold_down: 1s}\n"

// The holder stops: a standby holds the EIP within fall intervals plus
// one (and the time of a move), its on_holder ran with the right
// environment, DNS points at it, and the old holder's watcher is standby.
func TestWatchHolderStoppedStandbyTakesOver(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A runs on_holder and B on_standby at start", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	if h := wa.hooks(t, "holder")[0]; h["EIPCLAIM_REASON"] != "started as the holder" || h["EIPCLAIM_EPOCH"] != "1" {
		t.Errorf("A's on_holder at start: %v", h)
	}
	if h := wb.hooks(t, "standby")[0]; h["EIPCLAIM_HOLDER"] != a.ID || h["EIPCLAIM_EVENT"] != "standby" {
		t.Errorf("B's on_standby at start: %v", h)
	}
	waitFor(t, 5*time.Second, "DNS names A's EIP", func() bool { return strings.Contains(w.cname(), dashed(w.eip.PublicIP)) })

	svcA.Stop()
	w.stopInstance(a)
	took := waitFor(t, 20*time.Second, "B holds the EIP", func() bool { return w.holderENI() == b.ENI })
	t.Logf("failover: the EIP on B %s after the holder stopped (interval 1s, fall 2)", took.Round(100*time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("failover took %s, want within fall intervals plus one and a move (about 3s)", took)
	}
	waitFor(t, 10*time.Second, "B's on_holder ran", func() bool { return len(wb.hooks(t, "holder")) == 1 })
	h := wb.hooks(t, "holder")[0]
	want := map[string]string{"EIPCLAIM_EVENT": "holder", "EIPCLAIM_ROLE": "db", "EIPCLAIM_PUBLIC_IP": w.eip.PublicIP,
		"EIPCLAIM_ALLOCATION_ID": w.eip.AllocationID, "EIPCLAIM_EPOCH": "2", "EIPCLAIM_PREVIOUS_HOLDER": a.ID, "EIPCLAIM_HOLDER": b.ID}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("B's on_holder %s=%q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	// The engine confirmed through the API: the holder is stopped.
	if h["EIPCLAIM_REASON"] != "holder "+a.ID+" is stopped" {
		t.Errorf("B's on_holder reason %q, want that the holder is stopped", h["EIPCLAIM_REASON"])
	}
	if got := aws.ToString(tagOf(w.tw.Address(w.eip.AllocationID).Tags, "eipclaim:epoch")); got != "2" {
		t.Errorf("epoch tag %q after the move, want 2", got)
	}
	waitFor(t, 5*time.Second, "DNS still names the EIP, published by B", func() bool { return strings.Contains(w.cname(), dashed(w.eip.PublicIP)) })
	// A's watcher still runs (its machine "stopped" only in moto): it is
	// standby now, deposed.
	waitFor(t, 5*time.Second, "A's on_standby ran", func() bool { return len(wa.hooks(t, "standby")) == 1 })
	if h := wa.hooks(t, "standby")[0]; h["EIPCLAIM_PREVIOUS_HOLDER"] != a.ID || h["EIPCLAIM_HOLDER"] != b.ID || h["EIPCLAIM_EPOCH"] != "2" {
		t.Errorf("A's on_standby: %v", h)
	}
	// The metrics file is rewritten at the end of the look whose hook ran:
	// wait for it.
	if !eventually(5*time.Second, func() bool {
		return metricHas(t, wb.metrics, `eipclaim_takeovers_total{role="db"} 1`, `eipclaim_watch_state{role="db",state="holder"} 1`, `eipclaim_epoch{role="db"} 2`)
	}) {
		t.Errorf("B's metrics:\n%s", readFile(t, wb.metrics))
	}
	if !eventually(5*time.Second, func() bool {
		return metricHas(t, wa.metrics, `eipclaim_losses_total{role="db"} 1`, `eipclaim_watch_state{role="db",state="standby"} 1`)
	}) {
		t.Errorf("A's metrics:\n%s", readFile(t, wa.metrics))
	}
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}

// An operator forces the EIP elsewhere: the deposed holder's on_standby
// runs within about one interval, and nobody takes it back from the
// healthy new holder.
func TestWatchOperatorForceElsewhere(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	if !w.imdsLists(a) {
		// B learns that the EIP was moved to it from its IMDS, at its
		// next look; from canned answers, at its next truth check.
		t.Log("the IMDS emulator does not list the EIP on its holder's interface (canned answers): B's truth checks every 2s")
		w.truthEvery = "2s"
	}
	wa, wb := w.start(a), w.start(b)
	waitFor(t, 20*time.Second, "A holder, B standby", func() bool {
		return len(wa.hooks(t, "holder")) == 1 && len(wb.hooks(t, "standby")) == 1
	})
	// The operator runs `eipclaim claim --force` on B.
	md := w.tw.IMDSFor(b, "")
	cmd := exec.Command(w.bin, "claim", "--force", "--config", w.config, "--timeout", "30s")
	cmd.Env = append(append(append(os.Environ(), w.moto.Env()...), md.Env()...), "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("claim --force: %v\n%s", err, out)
	}
	forced := time.Now()
	// A holder confirms a loss by reading again (watch.LossConfirmation)
	// before it stands down: EC2's reads may be stale.
	within := time.Second + watch.LossConfirmation() + 2*time.Second
	waitFor(t, within+5*time.Second, "A's on_standby ran", func() bool { return len(wa.hooks(t, "standby")) == 1 })
	if d := time.Since(forced); d > within {
		t.Errorf("A learnt it was deposed after %s, want within about one interval (1s) and the loss's confirmation (%s)", d, watch.LossConfirmation())
	}
	if h := wa.hooks(t, "standby")[0]; h["EIPCLAIM_PREVIOUS_HOLDER"] != a.ID || h["EIPCLAIM_HOLDER"] != b.ID || !strings.Contains(h["EIPCLAIM_REASON"], b.ID) {
		t.Errorf("A's on_standby: %v", h)
	}
	assoc := aws.ToString(w.tw.Address(w.eip.AllocationID).AssociationId)
	time.Sleep(5 * time.Second) // five looks of each watcher
	if got := w.tw.Address(w.eip.AllocationID); aws.ToString(got.AssociationId) != assoc || aws.ToString(got.NetworkInterfaceId) != b.ENI {
		t.Errorf("the EIP moved after the operator's claim: %s on %s", aws.ToString(got.AssociationId), aws.ToString(got.NetworkInterfaceId))
	}
	// B's watcher learnt it holds the EIP (moved to it) and ran on_holder,
	// told who held it before (the claim that moved it tagged B).
	if hs := wb.hooks(t, "holder"); len(hs) != 1 || hs[0]["EIPCLAIM_REASON"] != "the EIP was moved to this instance" || hs[0]["EIPCLAIM_PREVIOUS_HOLDER"] != a.ID {
		t.Errorf("B's on_holder runs: %v, want one, moved to this instance from %s", hs, a.ID)
	}
	if hs := wa.hooks(t, "holder"); len(hs) != 1 {
		t.Errorf("A ran on_holder %d times, want once (at start)", len(hs))
	}
	wa.stopTerm(t, 5*time.Second)
	wb.stopTerm(t, 5*time.Second)
}

// Three standbys, the holder stopped: exactly one move, one on_holder.
func TestWatchThreeStandbysOneMove(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA := testenv.StartService(t)
	a := w.instance(svcA)
	var insts []testenv.Instance
	for range 3 {
		insts = append(insts, w.instance(testenv.StartService(t)))
	}
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa := w.start(a)
	var ws []*watcher
	for _, in := range insts {
		ws = append(ws, w.start(in))
	}
	waitFor(t, 30*time.Second, "every standby ran on_standby", func() bool {
		for _, x := range ws {
			if len(x.hooks(t, "standby")) != 1 {
				return false
			}
		}
		return len(wa.hooks(t, "holder")) == 1
	})
	svcA.Stop()
	w.stopInstance(a)
	waitFor(t, 20*time.Second, "a standby holds the EIP", func() bool { return w.holderENI() != a.ENI && w.holderENI() != "" })
	assoc := aws.ToString(w.tw.Address(w.eip.AllocationID).AssociationId)
	time.Sleep(4 * time.Second) // let every standby decide, and then some
	if got := aws.ToString(w.tw.Address(w.eip.AllocationID).AssociationId); got != assoc {
		t.Errorf("the EIP moved a second time: %s, then %s", assoc, got)
	}
	holders, assocs := 0, 0
	for _, x := range ws {
		holders += len(x.hooks(t, "holder"))
		for _, r := range x.ec2.Records() {
			if r.Action == "AssociateAddress" && r.Status == 200 {
				assocs++
			}
		}
	}
	if holders != 1 || assocs != 1 {
		t.Errorf("%d on_holder runs and %d successful AssociateAddress among the standbys, want 1 and 1", holders, assocs)
	}
	if e := aws.ToString(tagOf(w.tw.Address(w.eip.AllocationID).Tags, "eipclaim:epoch")); e != "2" {
		t.Errorf("epoch %q, want 2 (one move after the holder's start)", e)
	}
}

// A health probe that flaps every interval moves nothing with the default
// fall (3), with the shortest hold-down (1s).
func TestWatchFlappingProbeNoMove(t *testing.T) {
	w := newWatchWorld(t, "    watch: {interval: 1s, hold_down: 1s}\n")
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	w.start(a)
	wb := w.start(b)
	waitFor(t, 20*time.Second, "B standby", func() bool { return len(wb.hooks(t, "standby")) == 1 })
	assoc := aws.ToString(w.tw.Address(w.eip.AllocationID).AssociationId)
	var flaps atomic.Int32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for up := false; ; up = !up {
			if up {
				svcA.Start()
			} else {
				svcA.Stop()
			}
			flaps.Add(1)
			select {
			case <-stop:
				svcA.Start()
				return
			case <-tk.C:
			}
		}
	}()
	time.Sleep(12 * time.Second)
	close(stop)
	<-done
	if got := aws.ToString(w.tw.Address(w.eip.AllocationID).AssociationId); got != assoc {
		t.Errorf("a flapping holder lost the EIP: association %s -> %s", assoc, got)
	}
	failed := strings.Count(wb.stderr.String(), `"msg":"the holder failed a look"`)
	if failed < 3 {
		t.Errorf("B saw %d failed looks in %d flaps: the probe did not flap", failed, flaps.Load())
	}
	if strings.Contains(wb.stderr.String(), `"failed_looks":3`) {
		t.Errorf("B counted 3 consecutive failed looks of a probe that flaps every interval")
	}
	t.Logf("%d failed looks, zero moves", failed)
}

// A hook that hangs or fails is bounded, logged and counted; the watcher
// goes on.
func TestWatchHookFailsAndHangs(t *testing.T) {
	w := newWatchWorld(t, watchFast+`    hooks:
      on_holder: ["/bin/sh", "-c", "sleep 60"]
      on_standby: ["/bin/sh", "-c", "echo demote failed >&2; exit 3"]
      timeout: 1s
`)
	svcA, svcB := testenv.StartService(t), testenv.StartService(t)
	a, b := w.instance(svcA), w.instance(svcB)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa := w.start(a)
	waitFor(t, 20*time.Second, "the hanging on_holder is killed and counted", func() bool {
		return metricHas(t, wa.metrics, `eipclaim_hook_runs_total{event="holder",result="timeout",role="db"} 1`)
	})
	// The watcher goes on: it notices a forced move and runs on_standby,
	// which fails.
	md := w.tw.IMDSFor(b, "")
	cmd := exec.Command(w.bin, "claim", "--force", "--config", w.config, "--timeout", "30s")
	cmd.Env = append(append(append(os.Environ(), w.moto.Env()...), md.Env()...), "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("claim --force: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the failing on_standby is counted", func() bool {
		return metricHas(t, wa.metrics, `eipclaim_hook_runs_total{event="standby",result="failed",role="db"} 1`,
			`eipclaim_watch_state{role="db",state="standby"} 1`)
	})
	logs := wa.stderr.String()
	for _, want := range []string{`"result":"timeout"`, `killed after its timeout of 1s`, `"result":"failed"`, `exit status 3`, `demote failed`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %s", want)
		}
	}
	// And it keeps looking (two more looks: at interval 1s, within 10s
	// however loaded the machine; a fixed 2.5s window failed under load).
	before := lookCount(t, wa.metrics)
	if !eventually(10*time.Second, func() bool { return lookCount(t, wa.metrics) >= before+2 }) {
		t.Errorf("the watcher stopped looking after its hooks failed: %d then %d looks in 10s", before, lookCount(t, wa.metrics))
	}
	wa.stopTerm(t, 5*time.Second)
}

// SIGTERM in the middle of a look (the EC2 API slow to answer): exit 0
// within a few seconds, nothing changed.
func TestWatchSIGTERMMidLook(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	w.truthEvery = "1s" // every look a truth check: it reads EC2
	// From its third DescribeAddresses on, every look hangs 20s.
	w.ec2 = func(uint64) faultproxy.Options {
		return faultproxy.Options{Latency: 20 * time.Second, Plan: func(action string, n int) faultproxy.Kind {
			if action == "DescribeAddresses" && n >= 3 {
				return faultproxy.Latency
			}
			return faultproxy.None
		}}
	}
	svcA := testenv.StartService(t)
	a := w.instance(svcA)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa := w.start(a)
	waitFor(t, 20*time.Second, "a look hangs", func() bool {
		for _, r := range wa.ec2.Records() {
			if r.Action == "DescribeAddresses" && r.Fault == faultproxy.Latency {
				return true
			}
		}
		return false
	})
	before := w.tw.Address(w.eip.AllocationID)
	took := wa.stopTerm(t, 5*time.Second)
	t.Logf("exit 0 %s after SIGTERM mid-look", took.Round(time.Millisecond))
	after := w.tw.Address(w.eip.AllocationID)
	if aws.ToString(after.AssociationId) != aws.ToString(before.AssociationId) {
		t.Errorf("SIGTERM changed the EIP: %s -> %s", aws.ToString(before.AssociationId), aws.ToString(after.AssociationId))
	}
}

func dashed(ip string) string { return strings.ReplaceAll(ip, ".", "-") }

func tagOf(tags []ec2types.Tag, key string) *string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return t.Value
		}
	}
	return nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// metricHas reports whether the metrics file has every line.
func metricHas(t *testing.T, path string, lines ...string) bool {
	t.Helper()
	m := readFile(t, path)
	for _, l := range lines {
		if !strings.Contains(m, l+"\n") {
			return false
		}
	}
	return true
}

// lookCount is the value of eipclaim_looks_total{result="ok"}.
func lookCount(t *testing.T, path string) int {
	t.Helper()
	for l := range strings.Lines(readFile(t, path)) {
		if v, ok := strings.CutPrefix(l, `eipclaim_looks_total{result="ok",role="db"} `); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// A second watcher of the role on the same instance refuses to start
// (exit 2, naming the first's PID): two would both run on_holder.
func TestWatchSecondWatcherRefused(t *testing.T) {
	w := newWatchWorld(t, watchFast)
	svcA := testenv.StartService(t)
	a := w.instance(svcA)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	first := w.start(a)
	waitFor(t, 20*time.Second, "the first watcher is the holder", func() bool { return len(first.hooks(t, "holder")) == 1 })
	second := w.start(a)
	select {
	case <-second.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the second watcher is still running")
	}
	var ee *exec.ExitError
	if !errors.As(second.err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("second watcher: %v, want exit 2", second.err)
	}
	if want := fmt.Sprintf("(PID %d) already watches role db on this instance", first.cmd.Process.Pid); !strings.Contains(second.stderr.String(), want) {
		t.Errorf("second watcher's stderr:\n%s\nwant %q", second.stderr.String(), want)
	}
	if n := len(second.hooks(t, "holder")); n != 0 {
		t.Errorf("the second watcher ran on_holder %d times", n)
	}
	first.stopTerm(t, 5*time.Second)
}

// A running watcher says when its configuration changes on disk (it
// applies nothing: a restart does): a warning and eipclaim_config_changed
// 1, for a change of its role; nothing for a change of another role.
func TestWatchConfigChangedOnDisk(t *testing.T) {
	t.Setenv("EIPCLAIM_TEST_CONFIG_EVERY", "300ms")
	w := newWatchWorld(t, watchFast)
	svcA := testenv.StartService(t)
	a := w.instance(svcA)
	w.tw.Associate(w.eip.AllocationID, a.ID)
	wa := w.start(a)
	waitFor(t, 20*time.Second, "A holder", func() bool { return len(wa.hooks(t, "holder")) == 1 })
	orig, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	// Another role added: not this watcher's business.
	other := string(orig) + "  web:\n    public_ip: 203.0.113.99\n"
	if err := os.WriteFile(w.config, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if strings.Contains(wa.stderr.String(), "configuration changed on disk") || !metricHas(t, wa.metrics, `eipclaim_config_changed{role="db"} 0`) {
		t.Errorf("a change of another role was reported:\n%s", wa.stderr.String())
	}
	// takeover: never on the watched role (docs/watch.md's advice during a
	// probe problem): warned, once, and the metric says so.
	changed := strings.Replace(other, "    health_check: tcp:5432\n", "    health_check: tcp:5432\n    takeover: never\n", 1)
	if err := os.WriteFile(w.config, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the change reported", func() bool {
		return strings.Contains(wa.stderr.String(), "configuration changed on disk; restart the watcher to apply it") &&
			metricHas(t, wa.metrics, `eipclaim_config_changed{role="db"} 1`)
	})
	time.Sleep(1 * time.Second)
	if n := strings.Count(wa.stderr.String(), "configuration changed on disk"); n != 1 {
		t.Errorf("the change was reported %d times, want once", n)
	}
	if !strings.Contains(wa.stderr.String(), `"changed":"roles.db"`) {
		t.Errorf("the warning does not name roles.db:\n%s", wa.stderr.String())
	}
	// Put back: the metric returns to 0.
	if err := os.WriteFile(w.config, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the metric back to 0", func() bool { return metricHas(t, wa.metrics, `eipclaim_config_changed{role="db"} 0`) })
	wa.stopTerm(t, 5*time.Second)
}
