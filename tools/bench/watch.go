package main

// The watch section (issue 12): failover time of `eipclaim watch`, and the
// steady-state AWS requests per watcher per hour. `go run ./tools/bench
// -only watch`; `make bench` runs it after the storm.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

var (
	watchRuns1  = flag.Int("watch-runs", 20, "watch section: failovers timed at interval 1s")
	watchRuns5  = flag.Int("watch-runs-5s", 5, "watch section: failovers timed at interval 5s (each takes about 20s)")
	watchSteady = flag.Duration("watch-steady", 60*time.Second, "watch section: how long the steady-state requests are counted (at interval 5s), then scaled to an hour")
	watchSkip   = flag.Bool("no-watch", false, "skip the watch section")
)

// The README's computed steady-state requests per hour at interval 5s
// ("Watch mode", "Cost and sizing").
var readmePerHour = map[string]string{
	"holder":                               "840 EC2 + 60 Route 53",
	"standby with health_check":            "720 EC2",
	"standby without health_check":         "2,160 EC2",
	"holder (role without a health_check)": "840 EC2 + 60 Route 53",
}

// watchBench runs the watch section. The watchers are the test build of
// eipclaim (-tags eipclaim_testhooks), whose only difference is
// EIPCLAIM_TEST_DIAL: it maps the holder's private IP (moto's 10.x, never
// dialled from here) to a loopback listener that plays its service.
func watchBench(ctx context.Context, out io.Writer) (err error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eipclaim-bench-watch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "\nwatch: building eipclaim -tags %s (the health check's dial seam, nothing else)\n", testenv.TestHooksTag)
	bin := filepath.Join(dir, "eipclaim")
	build := exec.CommandContext(ctx, "go", "build", "-tags", testenv.TestHooksTag, "-o", bin, "./cmd/eipclaim")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	var emu testenv.Emulators
	defer emu.Close()
	// Every request the gate in front of moto denied is a defect of a
	// shipped policy (or of the code), as in the tests.
	defer func() {
		if err == nil {
			err = emu.GateError()
		}
	}()
	moto, err := emu.Moto()
	if err != nil {
		return err
	}
	w := &watchWorld{World: testenv.NewWorld(moto.Config()), moto: moto, bin: bin, dir: dir}
	if w.zoneID, err = w.NewZone(ctx, "watch.internal", false); err != nil {
		return err
	}

	fmt.Fprintln(out, "watch failover: the holder's instance stopped (StopInstances, its watcher killed, its service gone) -> the standby's association read back (DescribeAddresses) and its CNAME published (ListResourceRecordSets, deleted before each run), polled every 50ms; health_check tcp, fall 3, hold_down 60s (defaults)")
	type series struct {
		interval time.Duration
		runs     int
		why      string
	}
	var notes []string
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  interval\truns\tEIP on standby p50\tp95\tCNAME published p50\tp95\tboth p50\tp95\tmax\tbound fall×interval+1 interval")
	for _, s := range []series{
		{time.Second, *watchRuns1, ""},
		{5 * time.Second, *watchRuns5, "fewer runs: each takes about 3 intervals to detect plus the start, ~25s"},
	} {
		if s.runs <= 0 {
			continue
		}
		var assoc, dns, both []time.Duration
		for i := range s.runs {
			a, d, err := w.failover(ctx, s.interval, i)
			if err != nil {
				return fmt.Errorf("failover run %d at interval %s: %w", i+1, s.interval, err)
			}
			assoc, dns, both = append(assoc, a), append(dns, d), append(both, max(a, d))
			fmt.Fprint(out, ".")
		}
		fmt.Fprintln(out)
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.interval, s.runs,
			ms(quantile(assoc, .5)), ms(quantile(assoc, .95)), ms(quantile(dns, .5)), ms(quantile(dns, .95)),
			ms(quantile(both, .5)), ms(quantile(both, .95)), ms(quantile(both, 1)), 4*s.interval)
		if s.why != "" {
			notes = append(notes, fmt.Sprintf("  (interval %s: %s)", s.interval, s.why))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(out, n)
	}

	if *watchSteady > 0 {
		if err := w.steady(ctx, out, 5*time.Second, *watchSteady); err != nil {
			return err
		}
	}
	return nil
}

type watchWorld struct {
	*testenv.World
	moto   *testenv.Moto
	bin    string
	dir    string
	zoneID string
	seq    int
}

// benchWatcher is one `eipclaim watch` process.
type benchWatcher struct {
	cmd     *exec.Cmd
	metrics string
	proxy   *faultproxy.Proxy // nil: straight to moto
	stderr  testenv.LockedBuffer
	done    chan struct{}
	err     error
}

func (b *benchWatcher) logs() string { return b.stderr.String() }

func (b *benchWatcher) state() string {
	m, _ := os.ReadFile(b.metrics)
	for _, s := range []string{"holder", "standby"} {
		if strings.Contains(string(m), `eipclaim_watch_state{role="db",state="`+s+`"} 1`+"\n") {
			return s
		}
	}
	return ""
}

// config writes a role configuration and returns its path.
func (w *watchWorld) config(alloc, name string, interval time.Duration, healthCheck bool) (string, error) {
	w.seq++
	hc := ""
	if healthCheck {
		hc = "    health_check: tcp:5432\n"
	}
	doc := fmt.Sprintf("role: db\nroles:\n  db:\n    allocation_id: %s\n%s    dns:\n      route53: {zone_id: %s, name: %s, ttl: 30}\n    watch: {interval: %s}\n",
		alloc, hc, w.zoneID, name, interval)
	path := filepath.Join(w.dir, fmt.Sprintf("eipclaim-%d.yaml", w.seq))
	return path, os.WriteFile(path, []byte(doc), 0o600)
}

// start starts `eipclaim watch` as inst; counted puts a counting proxy
// between it and moto.
func (w *watchWorld) start(emu *testenv.Emulators, inst testenv.Instance, config, dial string, counted bool) (*benchWatcher, error) {
	md, err := emu.IMDS(inst.IMDSOptions(""))
	if err != nil {
		return nil, err
	}
	w.seq++
	b := &benchWatcher{metrics: filepath.Join(w.dir, fmt.Sprintf("metrics-%d.prom", w.seq)), done: make(chan struct{})}
	endpoint := w.moto.Endpoint
	if counted {
		if b.proxy, err = faultproxy.New(w.moto.Endpoint, faultproxy.Options{}); err != nil {
			return nil, err
		}
		endpoint = b.proxy.URL
	}
	env := append(os.Environ(), (&testenv.Moto{Endpoint: endpoint}).Env()...)
	env = append(env, md.Env()...)
	// The watcher's lock (internal/watch.Lock) beside its metrics, not
	// in /run/eipclaim, which may not be writable here.
	env = append(env, "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=", "NOTIFY_SOCKET=", "EIPCLAIM_TEST_DIAL="+dial, "RUNTIME_DIRECTORY="+filepath.Dir(b.metrics))
	b.cmd = exec.Command(w.bin, "watch", "--config", config, "--log-format", "json", "--metrics-file", b.metrics)
	b.cmd.Env, b.cmd.Stderr = env, &b.stderr
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	return b, nil
}

// end stops the watcher (SIGTERM, then SIGKILL after 10s) and its proxy.
func (b *benchWatcher) end() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	if b.proxy != nil {
		b.proxy.Close()
	}
}

// settle waits until each watcher is in its state.
func settle(ctx context.Context, limit time.Duration, want map[*benchWatcher]string) error {
	deadline := time.Now().Add(limit)
	for b, s := range want {
		for b.state() != s {
			select {
			case <-b.done:
				return fmt.Errorf("a watcher exited at start (%v):\n%s", b.err, tailLines(b.logs(), 20))
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("a watcher not %s within %s:\n%s", s, limit, tailLines(b.logs(), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// cname returns the CNAME record of name, nil when there is none.
func (w *watchWorld) cname(ctx context.Context, name string) (*r53types.ResourceRecordSet, error) {
	out, err := w.Route53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(w.zoneID), StartRecordName: aws.String(name), StartRecordType: r53types.RRTypeCname, MaxItems: aws.Int32(1),
	})
	if err != nil {
		return nil, err
	}
	for _, rr := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(rr.Name), ".") == name && rr.Type == r53types.RRTypeCname {
			return &rr, nil
		}
	}
	return nil, nil
}

// failover times one failover at interval: a holder A and a standby B,
// fresh instances and EIP; A's CNAME deleted (so that B's publication
// shows); then A's instance stops, its watcher is killed and its service
// gone, all at t0.
func (w *watchWorld) failover(ctx context.Context, interval time.Duration, run int) (assoc, dns time.Duration, err error) {
	var emu testenv.Emulators
	defer emu.Close()
	a, err := w.NewInstance(ctx)
	if err != nil {
		return 0, 0, err
	}
	b, err := w.NewInstance(ctx)
	if err != nil {
		return 0, 0, err
	}
	eip, err := w.NewEIP(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	if err := w.Associate(ctx, eip.AllocationID, a.ID); err != nil {
		return 0, 0, err
	}
	name := fmt.Sprintf("db-%s-%d.watch.internal", interval, run)
	config, err := w.config(eip.AllocationID, name, interval, true)
	if err != nil {
		return 0, 0, err
	}
	svcA, err := testenv.NewService()
	if err != nil {
		return 0, 0, err
	}
	defer svcA.Stop()
	svcB, err := testenv.NewService()
	if err != nil {
		return 0, 0, err
	}
	defer svcB.Stop()
	dial := a.PrivateIP + "=" + svcA.Addr() + "," + b.PrivateIP + "=" + svcB.Addr()
	wa, err := w.start(&emu, a, config, dial, false)
	if err != nil {
		return 0, 0, err
	}
	defer wa.end()
	wb, err := w.start(&emu, b, config, dial, false)
	if err != nil {
		return 0, 0, err
	}
	defer wb.end()
	if err := settle(ctx, 60*time.Second, map[*benchWatcher]string{wa: "holder", wb: "standby"}); err != nil {
		return 0, 0, err
	}
	rr, err := w.cname(ctx, name)
	if err != nil || rr == nil {
		return 0, 0, fmt.Errorf("the holder's CNAME %s: %v %v", name, rr, err)
	}
	if _, err := w.Route53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(w.zoneID),
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionDelete, ResourceRecordSet: rr}}}}); err != nil {
		return 0, 0, fmt.Errorf("deleting the CNAME: %w", err)
	}

	t0 := time.Now()
	wa.cmd.Process.Kill()
	svcA.Stop()
	if _, err := w.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{a.ID}}); err != nil {
		return 0, 0, err
	}
	limit := 6*interval + 30*time.Second
	for assoc == 0 || dns == 0 {
		if time.Since(t0) > limit {
			return 0, 0, fmt.Errorf("no failover within %s (EIP on B after %s, CNAME after %s); the standby's log:\n%s", limit, assoc, dns, tailLines(wb.logs(), 30))
		}
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		if assoc == 0 {
			addr, err := w.Address(ctx, eip.AllocationID)
			if err != nil {
				return 0, 0, err
			}
			if aws.ToString(addr.NetworkInterfaceId) == b.ENI {
				assoc = time.Since(t0)
			}
		}
		if dns == 0 {
			rr, err := w.cname(ctx, name)
			if err != nil {
				return 0, 0, err
			}
			if rr != nil {
				dns = time.Since(t0)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return assoc, dns, nil
}

// steady counts each kind of watcher's AWS requests over window at
// interval, after the watchers' start, and scales them to an hour.
func (w *watchWorld) steady(ctx context.Context, out io.Writer, interval, window time.Duration) error {
	var emu testenv.Emulators
	defer emu.Close()
	type kind struct {
		name        string
		healthCheck bool
		holder      bool
	}
	kinds := []kind{
		{"holder", true, true},
		{"standby with health_check", true, false},
		{"holder (role without a health_check)", false, true},
		{"standby without health_check", false, false},
	}
	watchers := map[string]*benchWatcher{}
	want := map[*benchWatcher]string{}
	for _, hc := range []bool{true, false} {
		h, err := w.NewInstance(ctx)
		if err != nil {
			return err
		}
		s, err := w.NewInstance(ctx)
		if err != nil {
			return err
		}
		eip, err := w.NewEIP(ctx, nil)
		if err != nil {
			return err
		}
		if err := w.Associate(ctx, eip.AllocationID, h.ID); err != nil {
			return err
		}
		config, err := w.config(eip.AllocationID, fmt.Sprintf("steady-%t.watch.internal", hc), interval, hc)
		if err != nil {
			return err
		}
		svcH, err := testenv.NewService()
		if err != nil {
			return err
		}
		defer svcH.Stop()
		dial := h.PrivateIP + "=" + svcH.Addr()
		for _, k := range kinds {
			if k.healthCheck != hc {
				continue
			}
			inst := s
			if k.holder {
				inst = h
			}
			b, err := w.start(&emu, inst, config, dial, true)
			if err != nil {
				return err
			}
			defer b.end()
			watchers[k.name] = b
			want[b] = map[bool]string{true: "holder", false: "standby"}[k.holder]
		}
	}
	if err := settle(ctx, 60*time.Second, want); err != nil {
		return err
	}
	// Past the start: the first look and the start's failover step.
	time.Sleep(interval)
	from := time.Now()
	fmt.Fprintf(out, "watch steady state: counting each watcher's AWS requests over %s at interval %s (counting proxy per watcher, no faults), scaled to an hour\n", window, interval)
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return ctx.Err()
	}
	to := time.Now()
	scale := float64(time.Hour) / float64(to.Sub(from))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  watcher\trequests counted\tEC2/hour\tRoute 53/hour\tby action, per hour\tREADME (computed)")
	var problems []error
	for _, k := range kinds {
		b := watchers[k.name]
		if b.state() != want[b] {
			problems = append(problems, fmt.Errorf("%s is %q at the end of the window", k.name, b.state()))
		}
		byAction := map[string]int{}
		var ec2n, r53n, n int
		for _, r := range b.proxy.Records() {
			if r.Start.Before(from) || !r.Start.Before(to) {
				continue
			}
			n++
			byAction[r.Action]++
			if r.Service == "route53" {
				r53n++
			} else {
				ec2n++
			}
		}
		var parts []string
		for _, a := range slices.Sorted(maps.Keys(byAction)) {
			parts = append(parts, fmt.Sprintf("%s %.0f", shortAction(a), float64(byAction[a])*scale))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.0f\t%.0f\t%s\t%s\n", k.name, n, float64(ec2n)*scale, float64(r53n)*scale, strings.Join(parts, ", "), readmePerHour[k.name])
	}
	tw.Flush()
	return errors.Join(problems...)
}

func shortAction(a string) string {
	switch a {
	case "GET /2013-04-01/hostedzone/{id}/rrset":
		return "ListResourceRecordSets"
	case "POST /2013-04-01/hostedzone/{id}/rrset":
		return "ChangeResourceRecordSets"
	}
	return a
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
