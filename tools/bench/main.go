// Command bench measures eipclaim against the targets of its proof (issues 7
// and 11) and against the aws CLI script it replaces (tools/bench/claim.sh).
// Run it with `make bench` (go run ./tools/bench); it needs moto_server, the
// IMDS emulator (scripts/tools.sh), curl and the aws CLI v1.
//
// On one moto server, behind a counting fault proxy that injects nothing,
// it times N fresh claims by each contender, alternating, each on a fresh
// instance, Elastic IP and Route 53 zone, with the role's configuration in
// the instance's user-data served by its own IMDS emulator (also behind a
// counting proxy); after each fresh claim eipclaim runs again as the same
// claimer (a rerun that finds everything in place). It prints the medians,
// p90 and the speed-up; the requests per claim, fresh and rerun, against
// the ones the specification needs, every other request flagged REDUNDANT;
// eipclaim's end-to-end time against the summed upstream latencies of the
// needed requests, and against their critical path (the longest chain of
// requests that wait for each other); the cold start of `eipclaim
// version`; the size of the release binary; and the peak RSS of a claim.
// Each target is marked PASS or MISS.
//
// Then the boot storm (storm.go): -storm N claimers at once, through a
// proxy that enforces AWS's API rate limits, against the time those limits
// allow at best. -only storm runs the storm alone; -storm 0 skips it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
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

func main() {
	var o options
	flag.IntVar(&o.n, "n", 30, "fresh claims per contender")
	flag.IntVar(&o.cold, "cold", 50, "runs of `eipclaim version` for the cold start")
	flag.StringVar(&o.aws, "aws", "", "the aws CLI v1 (default: PATH, then ~/.pyenv/versions/3.11.7/bin/aws)")
	flag.BoolVar(&o.noScript, "no-script", false, "time eipclaim only")
	flag.BoolVar(&o.noDNS, "no-dns", false, "claims without Route 53 publication")
	flag.IntVar(&o.storm, "storm", 200, "claimers in the boot storm, half on fixed EIPs and half on a pool (0: no storm)")
	flag.DurationVar(&o.stormTimeout, "storm-timeout", 5*time.Minute, "each storm claimer's --timeout")
	flag.StringVar(&o.only, "only", "", "run only this section: storm, watch or fleet")
	flag.Parse()
	if *fleetChild {
		if err := runFleetChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: fleet child:", err)
			os.Exit(1)
		}
		return
	}
	if o.only != "" && o.only != "storm" && o.only != "watch" && o.only != "fleet" {
		fmt.Fprintf(os.Stderr, "bench: -only %q: the sections that run alone are storm, watch and fleet\n", o.only)
		os.Exit(2)
	}
	if o.storm < 0 || o.storm == 1 || (o.only == "storm" && o.storm == 0) {
		fmt.Fprintf(os.Stderr, "bench: -storm %d: want at least 2 claimers (one fixed, one on the pool), or 0 for no storm\n", o.storm)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if o.only != "watch" && o.only != "fleet" {
		err = run(ctx, o, os.Stdout)
	}
	if err == nil && (o.only == "watch" || o.only == "" && !*watchSkip) {
		err = watchBench(ctx, os.Stdout) // watch.go
	}
	if err == nil && (o.only == "fleet" || o.only == "" && !*fleetSkip) {
		err = fleetBench(ctx, os.Stdout) // fleet.go
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n, cold      int
	aws          string
	noScript     bool
	noDNS        bool
	storm        int
	stormTimeout time.Duration
	only         string
}

// The targets of issue 7, and issue 11's overhead target: a claim's
// independent requests overlapped, its end-to-end time within the summed
// upstream latency of the requests it needs.
const (
	targetOverhead = 1.0                   // end-to-end / sum of the needed requests' upstream latencies
	targetCold     = 10 * time.Millisecond // eipclaim version, median
	targetSize     = 20 << 20              // bytes, release build
	targetRSS      = 30 << 20              // bytes, peak of a claim
)

// request is one kind of request a claim needs: a row of the requests
// table.
type request struct {
	label   string
	actions []string // any of these counts, as faultproxy names them
	aws     bool     // an AWS API request (not IMDS)
	dns     bool     // made only when the role publishes in Route 53
	why     string
}

var requests = []request{
	{"IMDS token", []string{"PUT /latest/api/token"}, false, false, "IMDSv2"},
	{"IMDS instance-id", []string{"GET /latest/meta-data/instance-id"}, false, false, "who am I"},
	{"IMDS region", []string{"GET /latest/dynamic/instance-identity/document", "GET /latest/meta-data/placement/region"}, false, false, "the region (identity document)"},
	{"IMDS user-data", []string{"GET /latest/user-data"}, false, false, "the configuration"},
	{"DescribeInstances", []string{"DescribeInstances"}, true, false, "this instance's interfaces (source of truth)"},
	{"DescribeAddresses", []string{"DescribeAddresses"}, true, false, "the EIP and its holder; after a move, the read-back"},
	{"AssociateAddress", []string{"AssociateAddress"}, true, false, "AllowReassociation=false"},
	{"CreateTags", []string{"CreateTags"}, true, false, "eipclaim:holder, claimed-at, epoch"},
	{"ListResourceRecordSets", []string{"GET /2013-04-01/hostedzone/{id}/rrset"}, true, true, "no-churn read; after a change, the read-back"},
	{"ChangeResourceRecordSets", []string{"POST /2013-04-01/hostedzone/{id}/rrset"}, true, true, "UPSERT CNAME"},
}

func requestOf(label string) request {
	for _, r := range requests {
		if r.label == label {
			return r
		}
	}
	panic("bench: no request " + label)
}

// step is one request the specification needs, and the steps whose answers
// it needs first: the data it sends, or the order the specification
// imposes (a CNAME is published and the EIP tagged only once the claim is
// read back).
type step struct {
	id      string
	request string // its row in requests
	after   []string
}

// freshSteps is what a fresh claim with a Route 53 CNAME needs (issue 11:
// 8 AWS requests, and the 4 IMDS reads); rerunSteps what a rerun that finds
// the EIP held and the CNAME in place needs (its 3 AWS reads).
var (
	imdsSteps = []step{
		{"token", "IMDS token", nil},
		{"instance-id", "IMDS instance-id", []string{"token"}},
		{"region", "IMDS region", []string{"token"}},
		{"user-data", "IMDS user-data", []string{"token"}},
		{"instance", "DescribeInstances", []string{"instance-id", "region"}},
		{"eip", "DescribeAddresses", []string{"user-data", "region"}},
	}
	freshSteps = append(slices.Clip(imdsSteps),
		step{"associate", "AssociateAddress", []string{"instance", "eip"}},
		step{"read-back", "DescribeAddresses", []string{"associate"}},
		step{"tags", "CreateTags", []string{"read-back"}},
		step{"record", "ListResourceRecordSets", []string{"read-back"}},
		step{"upsert", "ChangeResourceRecordSets", []string{"record"}},
		step{"record-back", "ListResourceRecordSets", []string{"upsert"}},
	)
	rerunSteps = append(slices.Clip(imdsSteps),
		step{"record", "ListResourceRecordSets", []string{"instance", "eip"}},
	)
)

// stepsFor drops the Route 53 steps when the role publishes nothing.
func stepsFor(steps []step, dns bool) []step {
	if dns {
		return steps
	}
	return slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return requestOf(s.request).dns })
}

// neededCount is how many requests of each row steps make.
func neededCount(steps []step) map[string]int {
	n := map[string]int{}
	for _, s := range steps {
		n[s.request]++
	}
	return n
}

// rowOf is the row of requests an action counts in, "" if none.
func rowOf(action string) string {
	for _, r := range requests {
		if slices.Contains(r.actions, action) {
			return r.label
		}
	}
	return ""
}

// needs is what one claim's requests cost, against its steps.
type needs struct {
	perRow   map[string]int // requests made, by row of requests
	extra    map[string]int // requests outside every row, by action
	exact    bool           // perRow equals the steps' counts, and no extra
	sum      time.Duration  // upstream latencies of the needed requests, summed
	critical time.Duration  // of the longest chain of dependent needed requests
}

// measure matches records to steps (the k-th request of a row, in start
// order, is the k-th step of that row) and sums their upstream latencies,
// all of them and along the critical path.
func measure(records []faultproxy.Record, steps []step) needs {
	n := needs{perRow: map[string]int{}, extra: map[string]int{}}
	recs := slices.Clone(records)
	slices.SortFunc(recs, func(a, b faultproxy.Record) int { return a.Start.Compare(b.Start) })
	took := make([]time.Duration, len(steps))
	used := make([]bool, len(steps))
	for _, r := range recs {
		row := rowOf(r.Action)
		if row == "" {
			n.extra[r.Action]++
			continue
		}
		n.perRow[row]++
		for i, s := range steps {
			if !used[i] && s.request == row {
				used[i], took[i] = true, r.Upstream
				n.sum += r.Upstream
				break
			}
		}
	}
	want := neededCount(steps)
	n.exact = len(n.extra) == 0 && len(n.perRow) == len(want)
	for row, c := range want {
		n.exact = n.exact && n.perRow[row] == c
	}
	// The steps are in an order where each comes after those it needs.
	done := map[string]time.Duration{}
	for i, s := range steps {
		var before time.Duration
		for _, a := range s.after {
			before = max(before, done[a])
		}
		done[s.id] = before + took[i]
		n.critical = max(n.critical, done[s.id])
	}
	return n
}

// claimRun is one timed claim.
type claimRun struct {
	wall    time.Duration
	rss     int64 // bytes, 0 when unknown
	records []faultproxy.Record
	stdout  string
	needs   needs         // against freshSteps
	upAll   time.Duration // the upstream latencies of all its requests
	// Where the rest of the time went: from the process start to its first
	// request, in the proxies (beyond the upstream), between the answer of
	// a request and the next request, after the last answer to the exit.
	startup, proxied, between, tail time.Duration
	// rerun is the same claimer run again at once (eipclaim only), against
	// rerunSteps.
	rerun *claimRun
}

type contender struct {
	name string
	runs []claimRun
}

func run(ctx context.Context, o options, out io.Writer) error {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eipclaim-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(out, "building the release binary: CGO_ENABLED=0 go build -tags "+testenv.ReleaseTags+" -trimpath -ldflags \"-s -w\"")
	bin := filepath.Join(dir, "eipclaim")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.CommandContext(ctx, "go", "build", "-tags", testenv.ReleaseTags, "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/eipclaim")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	if o.only != "storm" {
		if err := compare(ctx, o, root, bin, out); err != nil {
			return err
		}
	}
	if o.storm > 0 {
		return storm(ctx, o, bin, out)
	}
	return nil
}

// compare times fresh claims by eipclaim and by the aws CLI script, and
// eipclaim's reruns, and reports them against the targets.
func compare(ctx context.Context, o options, root, bin string, out io.Writer) (err error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	size := fi.Size()

	cold, err := coldStart(ctx, bin, o.cold)
	if err != nil {
		return err
	}

	awsBin, script := "", filepath.Join(root, "tools", "bench", "claim.sh")
	if !o.noScript {
		if awsBin, err = findAWS(o.aws); err != nil {
			return err
		}
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
	proxy, err := faultproxy.New(moto.Endpoint, faultproxy.Options{})
	if err != nil {
		return err
	}
	defer proxy.Close()
	cfg := moto.Config()
	w := &world{ec2: ec2.NewFromConfig(cfg), r53: route53.NewFromConfig(cfg), dns: !o.noDNS}

	contenders := []*contender{{name: "eipclaim"}}
	if !o.noScript {
		contenders = append(contenders, &contender{name: "aws CLI script"})
	}
	fmt.Fprintf(out, "timing %d fresh claims per contender (instance + EIP + Route 53 zone each), alternating\n", o.n)
	for i := range o.n {
		for j := range contenders {
			c := contenders[(i+j)%len(contenders)] // alternate who goes first
			var argv []string
			if c.name == "eipclaim" {
				argv = []string{bin, "claim", "--timeout", "60s"}
			} else {
				argv = []string{"bash", script}
			}
			r, err := w.claim(ctx, proxy, argv, awsBin, c.name == "eipclaim")
			if err != nil {
				return fmt.Errorf("%s, claim %d: %w", c.name, i+1, err)
			}
			c.runs = append(c.runs, r)
		}
		fmt.Fprint(out, ".")
	}
	fmt.Fprintln(out)
	report(out, o, contenders, cold, size, awsBin)
	return nil
}

// world seeds moto directly (not through the proxy, so that the seeding is
// not counted).
type world struct {
	ec2 *ec2.Client
	r53 *route53.Client
	dns bool
	seq int
}

// claim creates an instance, an EIP and a zone, starts an IMDS emulator for
// the instance with the role in its user-data, runs argv as that instance
// would, and checks the outcome; with rerun, runs it a second time (a rerun
// that finds everything in place) and checks again.
func (w *world) claim(ctx context.Context, proxy *faultproxy.Proxy, argv []string, awsBin string, rerun bool) (claimRun, error) {
	w.seq++
	seed := &testenv.World{EC2: w.ec2, Route53: w.r53}
	inst, err := seed.NewInstance(ctx)
	if err != nil {
		return claimRun{}, err
	}
	eni := inst.ENI
	eip, err := seed.NewEIP(ctx, nil)
	if err != nil {
		return claimRun{}, err
	}
	alloc := eip.AllocationID
	zoneName := fmt.Sprintf("bench%d.example.internal", w.seq)
	record := "db." + zoneName
	userData := "role: db\nroles:\n  db:\n    allocation_id: " + alloc + "\n"
	var zoneID string
	if w.dns {
		if zoneID, err = seed.NewZone(ctx, zoneName, false); err != nil {
			return claimRun{}, err
		}
		userData += "    dns:\n      route53: {zone_id: " + zoneID + ", name: " + record + ", ttl: 60}\n"
	}
	var e testenv.Emulators
	defer e.Close()
	md, err := e.IMDS(inst.IMDSOptions(userData))
	if err != nil {
		return claimRun{}, err
	}
	mdProxy, err := faultproxy.New(md.Endpoint, faultproxy.Options{})
	if err != nil {
		return claimRun{}, err
	}
	defer mdProxy.Close()

	env := append(os.Environ(), (&testenv.Moto{Endpoint: proxy.URL}).Env()...)
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+mdProxy.URL, "AWS_EC2_METADATA_DISABLED=false",
		"EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=", "AWS_PAGER=")
	if awsBin != "" {
		// The aws CLI takes an empty AWS_PROFILE for a profile named "".
		env = slices.DeleteFunc(env, func(kv string) bool {
			return kv == "AWS_PROFILE=" || kv == "AWS_SESSION_TOKEN="
		})
		env = append(env, "PATH="+filepath.Dir(awsBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	run := func(steps []step) (claimRun, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		beforeMD, before := len(mdProxy.Records()), len(proxy.Records())
		began := time.Now()
		err := cmd.Run()
		wall := time.Since(began)
		if err != nil {
			return claimRun{}, fmt.Errorf("%s: %w\nstdout: %s\nstderr: %s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
		}
		r := claimRun{wall: wall, rss: maxRSS(cmd.ProcessState), stdout: stdout.String()}
		r.records = append(mdProxy.Records()[beforeMD:], proxy.Records()[before:]...)
		r.needs = measure(r.records, stepsFor(steps, w.dns))
		for _, rec := range r.records {
			r.upAll += rec.Upstream
		}
		r.breakdown(began)

		// The outcome: the EIP on the instance's primary interface, and the CNAME.
		a, err := seed.Address(ctx, alloc)
		if err != nil || aws.ToString(a.NetworkInterfaceId) != eni {
			return claimRun{}, fmt.Errorf("%s: the EIP %s is not on %s afterwards (%v)\nstdout: %s\nstderr: %s", argv[0], alloc, eni, err, stdout.String(), stderr.String())
		}
		if w.dns {
			if err := w.checkCNAME(ctx, zoneID, record, eip.PublicIP); err != nil {
				return claimRun{}, fmt.Errorf("%s: %w\nstdout: %s\nstderr: %s", argv[0], err, stdout.String(), stderr.String())
			}
		}
		return r, nil
	}
	r, err := run(freshSteps)
	if err != nil || !rerun {
		return r, err
	}
	// The same claimer again: it finds the EIP held and the CNAME in place.
	again, err := run(rerunSteps)
	if err != nil {
		return claimRun{}, fmt.Errorf("rerun: %w", err)
	}
	r.rerun = &again
	return r, nil
}

// breakdown splits the time of r outside the upstream round trips.
func (r *claimRun) breakdown(began time.Time) {
	recs := slices.Clone(r.records)
	if len(recs) == 0 {
		return
	}
	slices.SortFunc(recs, func(a, b faultproxy.Record) int { return a.Start.Compare(b.Start) })
	r.startup = recs[0].Start.Sub(began)
	last := recs[0].End
	for i, rec := range recs {
		r.proxied += rec.End.Sub(rec.Start) - rec.Upstream
		if i > 0 && rec.Start.After(last) {
			r.between += rec.Start.Sub(last)
		}
		if rec.End.After(last) {
			last = rec.End
		}
	}
	r.tail = began.Add(r.wall).Sub(last)
}

// checkCNAME wants record to be a CNAME to the EIP's public DNS name:
// ec2-A-B-C-D.<region's domain> as the specification computes it, or what
// EC2 reports (moto reports ip-A-B-C-D.ec2.internal).
func (w *world) checkCNAME(ctx context.Context, zoneID, record, publicIP string) error {
	out, err := w.r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(zoneID), StartRecordName: aws.String(record), StartRecordType: r53types.RRTypeCname,
	})
	if err != nil {
		return fmt.Errorf("ListResourceRecordSets: %w", err)
	}
	want := "-" + strings.ReplaceAll(publicIP, ".", "-") + "."
	for _, rr := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(rr.Name), ".") == record && rr.Type == r53types.RRTypeCname && len(rr.ResourceRecords) == 1 &&
			strings.Contains(aws.ToString(rr.ResourceRecords[0].Value), want) {
			return nil
		}
	}
	return fmt.Errorf("no CNAME %s -> the name of %s in zone %s afterwards", record, publicIP, zoneID)
}

// coldStart runs `eipclaim version` n times and returns the median wall time.
func coldStart(ctx context.Context, bin string, n int) (time.Duration, error) {
	var d []time.Duration
	for range n {
		began := time.Now()
		if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("eipclaim version: %w\n%s", err, out)
		}
		d = append(d, time.Since(began))
	}
	return quantile(d, 0.5), nil
}

// findAWS locates the aws CLI.
func findAWS(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("aws"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".pyenv", "versions", "3.11.7", "bin", "aws")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the aws CLI v1 is not on PATH nor in ~/.pyenv/versions/3.11.7/bin: pip install awscli, pass -aws PATH, or -no-script")
}

// quantile returns the q-quantile of d (nearest rank); d is sorted in place.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func quantileF(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// report prints the results.
func report(out io.Writer, o options, cs []*contender, cold time.Duration, size int64, awsBin string) {
	fmt.Fprintf(out, "\neipclaim benchmark: %d fresh claims per contender, %s, %d CPUs, %s/%s", o.n, runtime.Version(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if awsBin != "" {
		if v, err := exec.Command(awsBin, "--version").CombinedOutput(); err == nil {
			fmt.Fprintf(out, ", %s", strings.Fields(string(v))[0])
		}
	}
	fmt.Fprintln(out)
	if o.noDNS {
		fmt.Fprintln(out, "(without Route 53 publication: -no-dns)")
	}

	fmt.Fprintln(out, "\nEnd-to-end time of one claim (process start to exit):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tmedian\tp90\tmin\tmax\t")
	medians := map[string]time.Duration{}
	for _, c := range cs {
		var d []time.Duration
		for _, r := range c.runs {
			d = append(d, r.wall)
		}
		medians[c.name] = quantile(d, 0.5)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", c.name, ms(quantile(d, 0.5)), ms(quantile(d, 0.9)), ms(d[0]), ms(d[len(d)-1]))
	}
	tw.Flush()
	if len(cs) > 1 && medians["eipclaim"] > 0 {
		fmt.Fprintf(out, "speed-up (median aws CLI script / median eipclaim): %.1fx\n", float64(medians[cs[1].name])/float64(medians["eipclaim"]))
	}

	// Requests per claim: fresh (every contender) and rerun (eipclaim).
	fresh, rerun := stepsFor(freshSteps, !o.noDNS), stepsFor(rerunSteps, !o.noDNS)
	needFresh, needRerun := neededCount(fresh), neededCount(rerun)
	var reruns []claimRun
	for _, r := range cs[0].runs {
		if r.rerun != nil {
			reruns = append(reruns, *r.rerun)
		}
	}
	// medianOf is the median over runs of what count says of one.
	medianOf := func(runs []claimRun, count func(needs) int) int {
		var v []float64
		for _, r := range runs {
			v = append(v, float64(count(r.needs)))
		}
		return int(quantileF(v, 0.5))
	}
	fmt.Fprintln(out, "\nRequests per claim (median over the claims), counted by the proxies; a rerun is the same claimer run again at once, finding the EIP held and the CNAME in place:")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "request\tfresh: needed"
	for _, c := range cs {
		header += "\t" + c.name
	}
	fmt.Fprintln(tw, header+"\trerun: needed\teipclaim\tnote")
	totals := make([]int, len(cs)+3)
	for _, rq := range requests {
		if o.noDNS && rq.dns {
			continue
		}
		row := fmt.Sprintf("%s\t%d", rq.label, needFresh[rq.label])
		totals[0] += needFresh[rq.label]
		for j, c := range cs {
			got := medianOf(c.runs, func(n needs) int { return n.perRow[rq.label] })
			totals[j+1] += got
			row += fmt.Sprintf("\t%d", got)
		}
		got := medianOf(reruns, func(n needs) int { return n.perRow[rq.label] })
		totals[len(cs)+1] += needRerun[rq.label]
		totals[len(cs)+2] += got
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", row, needRerun[rq.label], got, rq.why)
	}
	extra := map[string]bool{}
	for _, c := range cs {
		for _, r := range c.runs {
			for a := range r.needs.extra {
				extra[a] = true
			}
		}
	}
	for _, r := range reruns {
		for a := range r.needs.extra {
			extra[a] = true
		}
	}
	for _, a := range slices.Sorted(maps.Keys(extra)) {
		row := a + "\t0"
		flag := false
		for j, c := range cs {
			got := medianOf(c.runs, func(n needs) int { return n.extra[a] })
			totals[j+1] += got
			row += fmt.Sprintf("\t%d", got)
			flag = flag || (c.name == "eipclaim" && got > 0)
		}
		got := medianOf(reruns, func(n needs) int { return n.extra[a] })
		totals[len(cs)+2] += got
		note := ""
		if flag || got > 0 {
			note = "REDUNDANT: not in the specification's minimum"
		}
		fmt.Fprintf(tw, "%s\t0\t%d\t%s\n", row, got, note)
	}
	row := "total"
	for _, t := range totals {
		row += fmt.Sprintf("\t%d", t)
	}
	fmt.Fprintln(tw, row+"\t")
	tw.Flush()

	// Overhead and resources, eipclaim only.
	var e2e, upN, upA, crit, startup, proxied, between, tail, rerunWall []time.Duration
	var ratios, critRatios []float64
	var rss int64
	for _, r := range cs[0].runs {
		e2e = append(e2e, r.wall)
		upN, upA, crit = append(upN, r.needs.sum), append(upA, r.upAll), append(crit, r.needs.critical)
		startup, proxied = append(startup, r.startup), append(proxied, r.proxied)
		between, tail = append(between, r.between), append(tail, r.tail)
		if r.needs.sum > 0 {
			ratios = append(ratios, float64(r.wall)/float64(r.needs.sum))
		}
		if r.needs.critical > 0 {
			critRatios = append(critRatios, float64(r.wall)/float64(r.needs.critical))
		}
		rss = max(rss, r.rss)
	}
	for _, r := range reruns {
		rerunWall = append(rerunWall, r.wall)
	}
	ratio := quantileF(ratios, 0.5)
	fmt.Fprintf(out, "\neipclaim, fresh claims, medians: end-to-end %s; upstream latency of the %d needed requests summed %s, along the critical path %s, of all its requests summed %s\n",
		ms(quantile(e2e, 0.5)), len(fresh), ms(quantile(upN, 0.5)), ms(quantile(crit, 0.5)), ms(quantile(upA, 0.5)))
	fmt.Fprintln(out, "  critical path: the longest chain of requests that wait for each other's answers (IMDS token; the slowest of instance-id, region, user-data; the slower of DescribeInstances and DescribeAddresses;")
	fmt.Fprintln(out, "  AssociateAddress; the read-back; the slower of CreateTags and ListResourceRecordSets, ChangeResourceRecordSets, ListResourceRecordSets): what a claim that overlaps everything else costs in round trips")
	fmt.Fprintf(out, "  end-to-end / critical path: %.2fx (median); the rest beyond the round trips, medians: process start to first request %s; no request in flight between an answer and the next request (SDK, our code, connections) %s; in the counting proxies %s; last answer to exit %s\n",
		quantileF(critRatios, 0.5), ms(quantile(startup, 0.5)), ms(quantile(between, 0.5)), ms(quantile(proxied, 0.5)), ms(quantile(tail, 0.5)))
	if len(rerunWall) > 0 {
		fmt.Fprintf(out, "  reruns: end-to-end median %s, p90 %s\n", ms(quantile(rerunWall, 0.5)), ms(quantile(rerunWall, 0.9)))
	}

	// requestsTarget says how many of runs made exactly the needed requests.
	requestsTarget := func(what string, runs []claimRun, need map[string]int) {
		exact, awsNeed, imdsNeed := 0, 0, 0
		for _, r := range runs {
			if r.needs.exact {
				exact++
			}
		}
		for label, c := range need {
			if requestOf(label).aws {
				awsNeed += c
			} else {
				imdsNeed += c
			}
		}
		awsGot := medianOf(runs, func(n needs) int {
			t := 0
			for label, c := range n.perRow {
				if requestOf(label).aws {
					t += c
				}
			}
			for _, c := range n.extra {
				t += c
			}
			return t
		})
		imdsGot := medianOf(runs, func(n needs) int {
			t := 0
			for label, c := range n.perRow {
				if !requestOf(label).aws {
					t += c
				}
			}
			return t
		})
		fmt.Fprintf(tw, "requests per %s claim: AWS + IMDS (median); claims with exactly the needed requests\t%d + %d; %d of %d\t%d + %d; all\t%s\n",
			what, awsGot, imdsGot, exact, len(runs), awsNeed, imdsNeed, verdict(len(runs) > 0 && exact == len(runs)))
	}

	fmt.Fprintln(out, "\nTargets:")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tmeasured\ttarget\tresult")
	requestsTarget("fresh", cs[0].runs, needFresh)
	requestsTarget("rerun", reruns, needRerun)
	fmt.Fprintf(tw, "overhead: end-to-end / summed upstream latency of the needed requests (median of %d claims)\t%sx\t<= %.1fx\t%s\n", len(ratios), ratioText(ratio, targetOverhead), targetOverhead, verdict(ratio > 0 && ratio <= targetOverhead))
	fmt.Fprintf(tw, "cold start: eipclaim version (median of %d runs)\t%s\t< %s\t%s\n", o.cold, ms(cold), ms(targetCold), verdict(cold < targetCold))
	fmt.Fprintf(tw, "binary size: CGO_ENABLED=0 go build -tags "+testenv.ReleaseTags+" -trimpath -ldflags \"-s -w\"\t%s\t< %s\t%s\n", mb(size), mb(targetSize), verdict(size < targetSize))
	if rss > 0 {
		fmt.Fprintf(tw, "peak RSS of a claim (max of %d, rusage maxrss)\t%s\t< %s\t%s\n", len(cs[0].runs), mb(rss), mb(targetRSS), verdict(rss < targetRSS))
	} else {
		fmt.Fprintf(tw, "peak RSS of a claim\tunknown on %s\t< %s\t-\n", runtime.GOOS, mb(targetRSS))
	}
	if len(cs) > 1 {
		fmt.Fprintf(tw, "speed-up over the aws CLI script (medians)\t%.1fx\t(none)\t-\n", float64(medians[cs[1].name])/float64(medians["eipclaim"]))
	}
	tw.Flush()
}
