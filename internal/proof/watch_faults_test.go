package proof_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// The watch proofs run real `eipclaim watch` processes (the test build,
// whose EIPCLAIM_TEST_DIAL maps the holder's private IP, moto's 10.x, to a
// loopback listener: no test dials 10.x), one per instance, each with its
// own IMDS emulator and every AWS request through a fault proxy of its own.

// watchProc is one `eipclaim watch` process.
type watchProc struct {
	name    string
	inst    testenv.Instance
	metrics string
	ec2     *faultproxy.Proxy
	cmd     *exec.Cmd
	stderr  *testenv.LockedBuffer
	done    chan struct{}
	err     error
}

// startWatch starts `eipclaim watch` on inst with config, every AWS request
// through a new proxy with opts, and the health checks' dial map dial.
func startWatch(t *testing.T, bin, name string, moto *testenv.Moto, w *testenv.TestWorld, inst testenv.Instance, config, dial string, opts faultproxy.Options) *watchProc {
	t.Helper()
	md := w.IMDSFor(inst, "")
	px, err := faultproxy.New(moto.Endpoint, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	p := &watchProc{name: name, inst: inst, ec2: px, stderr: &testenv.LockedBuffer{}, done: make(chan struct{})}
	p.metrics = filepath.Join(t.TempDir(), "metrics.prom")
	env := append(os.Environ(), (&testenv.Moto{Endpoint: px.URL}).Env()...)
	env = append(env, md.Env()...)
	// The watcher's lock (internal/watch.Lock) beside its metrics, not
	// in /run/eipclaim, which may not be writable here.
	env = append(env, "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=", "NOTIFY_SOCKET=", "EIPCLAIM_TEST_DIAL="+dial, "RUNTIME_DIRECTORY="+filepath.Dir(p.metrics))
	// The truth checks (the watchers' reads of EC2 in steady state, every
	// 90 s to 6 min) every 2 s: the proofs put those reads, and the
	// decisions taken on them, under their faults and stale answers many
	// times a run.
	env = append(env, "EIPCLAIM_TEST_TRUTH_EVERY=2s")
	p.cmd = exec.Command(bin, "watch", "--config", config, "--log-format", "json", "--timeout", "120s", "--metrics-file", p.metrics)
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("watcher %s (%s) stderr (last 8 KiB):\n%s", p.name, p.inst.ID, tail(p.stderr.String(), 8<<10))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *watchProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// metric is the value of the series line (name{labels}) in the watcher's
// metrics file, or -1 when absent.
func (p *watchProc) metric(series string) float64 {
	b, _ := os.ReadFile(p.metrics)
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func (p *watchProc) state() string {
	for _, s := range []string{"holder", "standby"} {
		if p.metric(`eipclaim_watch_state{role="db",state="`+s+`"}`) == 1 {
			return s
		}
	}
	return ""
}

// moves are the AssociateAddress and DisassociateAddress requests the
// proxy saw succeed.
func (p *watchProc) moves() []faultproxy.Record {
	var m []faultproxy.Record
	for _, r := range p.ec2.Records() {
		if (r.Action == "AssociateAddress" || r.Action == "DisassociateAddress") && r.Status == 200 {
			m = append(m, r)
		}
	}
	return m
}

// sigterm sends SIGTERM and returns how long the exit took, or an error
// when it did not exit 0 within limit.
func (p *watchProc) sigterm(limit time.Duration) (time.Duration, error) {
	began := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		return 0, fmt.Errorf("did not exit within %s of SIGTERM", limit)
	}
	if p.err != nil {
		return time.Since(began), fmt.Errorf("%v after SIGTERM, want exit 0", p.err)
	}
	return time.Since(began), nil
}

// watchGroup is one role's holder and two standbys.
type watchGroup struct {
	name     string
	alloc    string
	holder   *watchProc
	standbys []*watchProc
	// cut is the partitioned standby's view of the holder's health check
	// (health_check variant only).
	cut *testenv.Service
}

func (g *watchGroup) all() []*watchProc { return append([]*watchProc{g.holder}, g.standbys...) }

// TestWatchHealthyHolderUnderFaults: a healthy holder and two standbys,
// real `eipclaim watch` processes at interval 1s, fall 3 and no hold-down
// (nothing masks a false alarm), every AWS request of every watcher through
// a proxy that faults 30% of them (throttling, 500, 503, connection resets,
// 200ms latency). Two variants run side by side on two EIPs: with a
// health_check (the standbys' probe of the holder always answers) and
// without one (the standbys examine the holder through the EC2 API, whose
// answers are faulted too). In the health_check variant one standby is
// also partitioned for 8s: its EC2 endpoint resets every request and its
// probe of the holder finds nothing listening. Over the run: no
// AssociateAddress or DisassociateAddress succeeds, the holder still holds
// the EIP with the same association and epoch, every watcher still runs,
// and each exits 0 on SIGTERM; the roles fence (fence: stop) and no
// watcher ever sends StopInstances. make test runs 20s, EIPCLAIM_PROOF=1 3 min.
func TestWatchHealthyHolderUnderFaults(t *testing.T) {
	run := 20 * time.Second
	if proof() {
		run = 3 * time.Minute
	}
	const rate = 0.3
	// Within a look's bound (15s) the look's own retries ride out the
	// partition; beyond it the look fails and the watcher backs off.
	partition := 8 * time.Second
	if proof() {
		partition = 40 * time.Second
	}
	bin := testenv.EipclaimTestHooks(t)
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	zoneID := world.NewZone("example.internal", false)
	var seed uint64
	opts := func() faultproxy.Options {
		seed++
		return faultproxy.Options{Rate: rate, Seed: seed}
	}

	var groups []*watchGroup
	for _, variant := range []struct{ name, healthCheck string }{
		{"health_check", "    health_check: tcp:5432\n"},
		{"api", ""},
	} {
		eip := world.NewEIP(nil)
		config := filepath.Join(t.TempDir(), "eipclaim.yaml")
		// fence: stop: a healthy holder is never fenced, whatever the
		// faults and the partition (issue 19).
		doc := fmt.Sprintf("role: db\nroles:\n  db:\n    allocation_id: %s\n    fence: stop\n%s    dns:\n      route53: {zone_id: %s, name: %s.example.internal, ttl: 30}\n    watch: {interval: 1s, fall: 3, hold_down: 1s}\n",
			eip.AllocationID, variant.healthCheck, zoneID, strings.ReplaceAll(variant.name, "_", "-"))
		if err := os.WriteFile(config, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		insts := world.NewInstances(3)
		world.Associate(eip.AllocationID, insts[0].ID)
		svc := testenv.StartService(t) // the holder's service: always answers
		g := &watchGroup{name: variant.name, alloc: eip.AllocationID}
		dial := insts[0].PrivateIP + "=" + svc.Addr()
		g.holder = startWatch(t, bin, variant.name+"/holder", moto, world, insts[0], config, dial, opts())
		for i, in := range insts[1:] {
			d := dial
			if variant.healthCheck != "" && i == 1 {
				g.cut = testenv.StartService(t)
				d = insts[0].PrivateIP + "=" + g.cut.Addr()
			}
			g.standbys = append(g.standbys, startWatch(t, bin, fmt.Sprintf("%s/standby%d", variant.name, i+1), moto, world, in, config, d, opts()))
		}
		groups = append(groups, g)
	}

	// Every watcher has made its first look and entered its state (the
	// holder's start runs the failover step, which tags the epoch).
	deadline := time.Now().Add(90 * time.Second)
	for _, g := range groups {
		for _, p := range g.all() {
			want := "standby"
			if p == g.holder {
				want = "holder"
			}
			for p.state() != want {
				if !p.running() {
					t.Fatalf("watcher %s exited at start: %v", p.name, p.err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("watcher %s not %s within 90s (state %q)", p.name, want, p.state())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	type snapshot struct{ assoc, eni, epoch string }
	look := func(alloc string) snapshot {
		a := world.Address(alloc)
		s := snapshot{assoc: aws.ToString(a.AssociationId), eni: aws.ToString(a.NetworkInterfaceId)}
		for _, tg := range a.Tags {
			if aws.ToString(tg.Key) == "eipclaim:epoch" {
				s.epoch = aws.ToString(tg.Value)
			}
		}
		return s
	}
	before := map[string]snapshot{}
	for _, g := range groups {
		before[g.name] = look(g.alloc)
		if before[g.name].eni != g.holder.inst.ENI || before[g.name].epoch == "" {
			t.Fatalf("%s: at start the EIP is %+v, want it on the holder %s with an epoch", g.name, before[g.name], g.holder.inst.ENI)
		}
	}

	began := time.Now()
	t.Logf("%d watchers settled; running %s under %.0f%% faults", 3*len(groups), run, rate*100)
	// The partition, a quarter into the run.
	cut := groups[0]
	cutProc := cut.standbys[1]
	time.Sleep(run / 4)
	cut.cut.Stop()
	cutProc.ec2.GoDown(partition)
	partitionEnd := time.Now().Add(partition)
	time.Sleep(partition - time.Second)
	if err := cut.cut.Start(); err != nil { // the probe path heals first
		t.Fatal(err)
	}
	time.Sleep(time.Until(began.Add(run)))

	for _, g := range groups {
		after := look(g.alloc)
		if after != before[g.name] {
			t.Errorf("%s: the EIP changed under faults: %+v, then %+v", g.name, before[g.name], after)
		}
		for _, p := range g.all() {
			if m := p.moves(); len(m) > 0 {
				t.Errorf("%s: %d successful AssociateAddress/DisassociateAddress: %+v", p.name, len(m), m)
			}
			if !p.running() {
				t.Errorf("%s exited during the run: %v", p.name, p.err)
			}
			if n := p.ec2.Counts().Requests("StopInstances"); n != 0 {
				t.Errorf("%s: %d StopInstances of a healthy holder (fence: stop), want 0", p.name, n)
			}
			if n := p.metric(`eipclaim_takeovers_total{role="db"}`); n != 0 {
				t.Errorf("%s: eipclaim_takeovers_total %v, want 0", p.name, n)
			}
		}
		if s := g.holder.state(); s != "holder" {
			t.Errorf("%s: the holder's watcher is %q, want holder", g.name, s)
		}
	}
	// The faults were there, and the no-health_check standbys asked the API.
	for _, g := range groups {
		for _, p := range g.all() {
			c := p.ec2.Counts()
			looks := p.metric(`eipclaim_looks_total{result="ok",role="db"}`)
			failed := p.metric(`eipclaim_looks_total{result="failed",role="db"}`)
			t.Logf("PROOF watch faults %-22s %4d AWS requests, %3d faulted (%v), %d ops failed after the SDK's retries; looks ok %v failed %v",
				p.name, c.Total, c.ErrorFaults()+c.Faults[faultproxy.Latency], c.Faults, c.SurfacedErrors(), looks, failed)
			if c.ErrorFaults() == 0 {
				t.Errorf("%s: no faults injected in %d requests", p.name, c.Total)
			}
			if looks < run.Seconds()/4 {
				t.Errorf("%s: only %v successful looks in %s", p.name, looks, run)
			}
			if g.name == "api" && p != g.holder && c.Requests("DescribeInstanceStatus")+c.Requests("DescribeInstances") < int(run.Seconds()/4) {
				t.Errorf("%s: examined the holder through the API only %d times", p.name, c.Requests("DescribeInstanceStatus")+c.Requests("DescribeInstances"))
			}
		}
	}
	// The partitioned standby noticed, changed nothing, and looks again.
	logs := cutProc.stderr.String()
	retried := strings.Count(logs, `"msg":"attempt failed, will retry","op":"ec2:DescribeAddresses"`)
	failedLooks := strings.Count(logs, "look failed: nothing changes until the EC2 API answers")
	t.Logf("%s: partitioned for %s: %d retried DescribeAddresses, %d failed looks, then looks again", cutProc.name, partition, retried, failedLooks)
	if retried == 0 {
		t.Errorf("%s: no retried DescribeAddresses logged during its %s partition", cutProc.name, partition)
	}
	if partition > 15*time.Second && failedLooks == 0 {
		t.Errorf("%s: a %s partition, longer than a look's bound, and no failed look logged", cutProc.name, partition)
	}
	if last := cutProc.metric(`eipclaim_last_successful_look_timestamp_seconds{role="db"}`); last < float64(partitionEnd.Unix()) {
		t.Errorf("%s: no successful look after the partition ended (last at %v, partition ended %v)", cutProc.name, last, partitionEnd.Unix())
	}

	for _, g := range groups {
		for _, p := range g.all() {
			if !p.running() {
				continue
			}
			took, err := p.sigterm(10 * time.Second)
			if err != nil {
				t.Errorf("%s: %v", p.name, err)
				continue
			}
			t.Logf("%s: exit 0 %s after SIGTERM", p.name, took.Round(time.Millisecond))
		}
	}
}
