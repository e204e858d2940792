package main

// The boot storm: a fleet that boots at once, every instance claiming its
// role's EIP and publishing its CNAME, against AWS's API rate limits.
//
// Each claimer is a real eipclaim process with an instance of its own in
// moto and an IMDS emulator of its own (ec2-metadata-mock, one process per
// claimer: about 14 MB and 50 ms to start each) serving its instance id and
// its configuration as user-data. Half the claimers claim a fixed EIP each;
// the other half share a pool of as many EIPs, found by tag. All publish a
// CNAME of their own in one Route 53 zone. Their EC2 and Route 53 requests
// go through one faultproxy enforcing AWS's token buckets, which answers a
// request over the limit with the service's real throttling error.
//
// The storm cannot end before the buckets let the requests a claim needs
// through: for each bucket, max(0, (requests needed - burst) / refill
// rate); the slowest bucket is the bucket-limited minimum, and the target
// is to finish within 1.3 times it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// targetStorm is issue 11's target: the storm's total time against the
// bucket-limited minimum.
const targetStorm = 1.3

const (
	stormZone    = "storm.example.internal"
	stormPoolKey = "eip-pool"
	stormPoolTag = "storm"
)

// stormClaimer is one claimer of the storm.
type stormClaimer struct {
	n        int    // 1, 2, ...
	id, eni  string // its instance and the instance's primary interface
	alloc    string // its fixed EIP; "" for a claimer on the pool
	name     string // its CNAME
	userData string
	imds     string // its IMDS emulator's endpoint
	// Set by the run:
	code   int
	took   time.Duration
	stderr string
}

func (c *stormClaimer) onPool() bool { return c.alloc == "" }

// storm runs the boot storm and prints its report.
func storm(ctx context.Context, o options, bin string, out io.Writer) (err error) {
	n := o.storm
	fmt.Fprintf(out, "\nboot storm: %d claimers at once (%d on a fixed EIP each, %d on a pool of %d EIPs), each a CNAME in one Route 53 zone, through a proxy enforcing AWS's API rate limits\n",
		n, n/2, n-n/2, n-n/2)
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
	cfg := moto.Config()
	w := &stormWorld{ec2: ec2.NewFromConfig(cfg), r53: route53.NewFromConfig(cfg)}
	began := time.Now()
	cs, err := w.seed(ctx, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  seeded moto (%d instances, %d EIPs, zone %s) in %s\n", n, n, stormZone, ms(time.Since(began)))
	began = time.Now()
	if err := startIMDS(&emu, cs); err != nil {
		return err
	}
	fmt.Fprintf(out, "  started %d IMDS emulators (ec2-metadata-mock, one per claimer, each checked for its instance id) in %s\n", n, ms(time.Since(began)))

	// The buckets start full when the proxy does: right before the storm.
	proxy, err := faultproxy.New(moto.Endpoint, faultproxy.Options{Limits: faultproxy.AWSLimits()})
	if err != nil {
		return err
	}
	defer proxy.Close()
	fmt.Fprintf(out, "  starting %d eipclaim processes at once (claim --timeout %s)...\n", n, o.stormTimeout)
	start, wall := runStorm(ctx, o, bin, proxy.URL, cs)
	records := proxy.Records()
	problems, err := w.outcome(ctx, cs)
	if err != nil {
		return err
	}
	stormReport(out, cs, wall, start, records, problems)
	return nil
}

// stormWorld seeds and inspects moto directly, not through the proxy: it
// is neither counted nor limited.
type stormWorld struct {
	ec2    *ec2.Client
	r53    *route53.Client
	zoneID string
}

// seed creates n instances, n/2 fixed EIPs, a pool of n-n/2 tagged EIPs and
// the zone, and returns the claimers with their configurations.
func (w *stormWorld) seed(ctx context.Context, n int) ([]*stormClaimer, error) {
	ri, err := w.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)), InstanceType: types.InstanceTypeT3Micro,
	})
	if err != nil {
		return nil, fmt.Errorf("RunInstances: %w", err)
	}
	if len(ri.Instances) != n {
		return nil, fmt.Errorf("RunInstances: %d instances, want %d", len(ri.Instances), n)
	}
	z, err := w.r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String(stormZone), CallerReference: aws.String(fmt.Sprint("storm-", time.Now().UnixNano()))})
	if err != nil {
		return nil, fmt.Errorf("CreateHostedZone: %w", err)
	}
	w.zoneID = strings.TrimPrefix(aws.ToString(z.HostedZone.Id), "/hostedzone/")

	cs := make([]*stormClaimer, n)
	for i, inst := range ri.Instances {
		c := &stormClaimer{n: i + 1, id: aws.ToString(inst.InstanceId)}
		for _, ni := range inst.NetworkInterfaces {
			if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
				c.eni = aws.ToString(ni.NetworkInterfaceId)
			}
		}
		if c.eni == "" {
			return nil, fmt.Errorf("instance %s has no primary interface", c.id)
		}
		cs[i] = c
	}
	// Allocate the EIPs, 8 at a time.
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			in := &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}
			if i >= n/2 { // the pool
				in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeElasticIp,
					Tags: []types.Tag{{Key: aws.String(stormPoolKey), Value: aws.String(stormPoolTag)}}}}
			}
			a, err := w.ec2.AllocateAddress(ctx, in)
			if err != nil {
				errs[i] = fmt.Errorf("AllocateAddress: %w", err)
				return
			}
			// A fixed claimer plays role dbN; the pool claimers all play
			// role web, each with a name of its own.
			role, spec := "web", fmt.Sprintf("pool: {tags: {%s: %s}}", stormPoolKey, stormPoolTag)
			c.name = fmt.Sprintf("web-%d.%s", c.n, stormZone)
			if i < n/2 {
				c.alloc = aws.ToString(a.AllocationId)
				role, spec = fmt.Sprintf("db%d", c.n), "allocation_id: "+c.alloc
				c.name = role + "." + stormZone
			}
			c.userData = fmt.Sprintf("role: %s\nroles:\n  %s:\n    %s\n    dns:\n      route53: {zone_id: %s, name: %s, ttl: 60}\n",
				role, role, spec, w.zoneID, c.name)
		})
	}
	wg.Wait()
	return cs, errors.Join(errs...)
}

// startIMDS starts an IMDS emulator for each claimer, and asks each who it
// says the instance is: an emulator answering for another would give two
// claimers one identity.
func startIMDS(emu *testenv.Emulators, cs []*stormClaimer) error {
	errs := make([]error, len(cs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for try := 1; ; try++ {
				md, err := emu.IMDS(testenv.IMDSOptions{InstanceID: c.id, Region: testenv.MotoRegion, UserData: []byte(c.userData)})
				if err != nil {
					errs[i] = err
					return
				}
				id, err := imdsInstanceID(md.Endpoint)
				if err == nil && id == c.id {
					c.imds = md.Endpoint
					return
				}
				if try == 3 {
					errs[i] = fmt.Errorf("the IMDS emulator started for %s at %s says instance-id %q (%v)", c.id, md.Endpoint, id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// imdsInstanceID asks an IMDS emulator for the instance id (IMDSv2).
func imdsInstanceID(endpoint string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, endpoint+"/latest/api/token", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	token, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, endpoint+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-Aws-Ec2-Metadata-Token", string(token))
	if resp, err = client.Do(req); err != nil {
		return "", err
	}
	defer resp.Body.Close()
	id, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(id)), err
}

// runStorm starts every claimer at once and waits for all; it returns when
// they were started and how long until the last one exited.
func runStorm(ctx context.Context, o options, bin, endpoint string, cs []*stormClaimer) (time.Time, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, o.stormTimeout+time.Minute)
	defer cancel()
	env := append(os.Environ(), (&testenv.Moto{Endpoint: endpoint}).Env()...)
	env = append(env, "AWS_EC2_METADATA_DISABLED=false", "EIPCLAIM_ROLE=", "EIPCLAIM_CONFIG=")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range cs {
		cmd := exec.CommandContext(ctx, bin, "claim", "--log-format", "json", "--timeout", o.stormTimeout.String())
		cmd.Env = append(slices.Clip(env), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+c.imds)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		wg.Go(func() {
			<-start
			began := time.Now()
			err := cmd.Run()
			c.took = time.Since(began)
			c.stderr = stderr.String()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				c.code = ee.ExitCode()
			case err != nil:
				c.code = -1
				c.stderr += "\nbench: " + err.Error()
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return began, time.Since(began)
}

// outcome checks what the storm left: every EIP of the role on a claimer's
// primary interface and on one instance, no instance holding two, every
// fixed claimer holding its EIP, every claimer that exited 0 holding one,
// and every CNAME naming its claimer's EIP. It returns the problems found.
func (w *stormWorld) outcome(ctx context.Context, cs []*stormClaimer) ([]string, error) {
	var problems []string
	addrs, err := w.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return nil, fmt.Errorf("DescribeAddresses: %w", err)
	}
	byENI := map[string]*stormClaimer{}
	for _, c := range cs {
		byENI[c.eni] = c
	}
	held := map[*stormClaimer][]types.Address{}
	for _, a := range addrs.Addresses {
		eni := aws.ToString(a.NetworkInterfaceId)
		if eni == "" && aws.ToString(a.InstanceId) == "" {
			continue
		}
		// An EIP associated with an interface shows the interface; moto
		// leaves InstanceId empty then.
		c := byENI[eni]
		if inst := aws.ToString(a.InstanceId); c == nil || (inst != "" && inst != c.id) {
			problems = append(problems, fmt.Sprintf("EIP %s is on interface %q of instance %q: not a claimer's primary interface", aws.ToString(a.AllocationId), eni, inst))
			continue
		}
		held[c] = append(held[c], a)
	}
	for _, c := range cs {
		h := held[c]
		var ids []string
		for _, a := range h {
			ids = append(ids, aws.ToString(a.AllocationId))
		}
		switch {
		case len(h) > 1:
			problems = append(problems, fmt.Sprintf("double holder: claimer %d (%s) holds %d EIPs: %s", c.n, c.id, len(h), strings.Join(ids, ", ")))
		case !c.onPool() && (len(h) != 1 || ids[0] != c.alloc):
			problems = append(problems, fmt.Sprintf("claimer %d (%s, exit %d) does not hold its EIP %s (holds %v)", c.n, c.id, c.code, c.alloc, ids))
		case c.code == 0 && len(h) == 0:
			problems = append(problems, fmt.Sprintf("claimer %d (%s) exited 0 but holds no EIP", c.n, c.id))
		case c.onPool() && len(h) == 1 && tagValue(h[0].Tags, stormPoolKey) != stormPoolTag:
			problems = append(problems, fmt.Sprintf("claimer %d (%s) holds %s, which is not in the pool", c.n, c.id, ids[0]))
		}
	}

	cnames := map[string]string{}
	p := route53.NewListResourceRecordSetsPaginator(w.r53, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.zoneID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListResourceRecordSets: %w", err)
		}
		for _, rr := range page.ResourceRecordSets {
			if rr.Type == r53types.RRTypeCname && len(rr.ResourceRecords) == 1 {
				cnames[strings.TrimSuffix(aws.ToString(rr.Name), ".")] = aws.ToString(rr.ResourceRecords[0].Value)
			}
		}
	}
	for _, c := range cs {
		if len(held[c]) != 1 {
			continue
		}
		ip := aws.ToString(held[c][0].PublicIp)
		// ec2-A-B-C-D.<the region's domain>, as the specification computes
		// it, or what EC2 reports (moto: ip-A-B-C-D.ec2.internal).
		if v := cnames[c.name]; !strings.Contains(v, "-"+strings.ReplaceAll(ip, ".", "-")+".") {
			problems = append(problems, fmt.Sprintf("CNAME %s is %q, want the name of %s, the EIP claimer %d holds", c.name, v, ip, c.n))
		}
	}
	return problems, nil
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// serviceOf is the service of an action as faultproxy names both.
func serviceOf(action string) string {
	switch {
	case strings.Contains(action, " /latest/"):
		return "imds"
	case strings.Contains(action, " /2013-04-01/"):
		return "route53"
	}
	return "ec2"
}

// bucketMin is the least time a bucket takes to let n requests through.
func bucketMin(n int, l faultproxy.Limit) time.Duration {
	if n <= l.Burst {
		return 0
	}
	return time.Duration(float64(n-l.Burst) / l.Rate * float64(time.Second))
}

// stormBucket is what one bucket saw.
type stormBucket struct {
	name                       string
	limit                      faultproxy.Limit
	needed, sent, limited      int
	firstLimited, lastAccepted time.Duration // since the start; -1 if none
	accepted                   []time.Duration
}

// idle replays b's accepted requests through its bucket, full at the start:
// how long it sat full before its first accepted request, and how much
// refill it lost to being full later (in seconds of refill). A bucket-bound
// storm ends no sooner than both plus the least time for what it accepted.
func (b *stormBucket) idle() (first, later time.Duration) {
	if len(b.accepted) == 0 {
		return 0, 0
	}
	at := slices.Sorted(slices.Values(b.accepted))
	burst := float64(b.limit.Burst)
	tokens, last, lost := burst, at[0], 0.0
	for _, t := range at {
		tokens += t.Seconds()*b.limit.Rate - last.Seconds()*b.limit.Rate
		if tokens > burst {
			lost += tokens - burst
			tokens = burst
		}
		tokens = max(0, tokens-1)
		last = t
	}
	return max(0, at[0]), time.Duration(lost / b.limit.Rate * float64(time.Second))
}

func stormReport(out io.Writer, cs []*stormClaimer, wall time.Duration, start time.Time, records []faultproxy.Record, problems []string) {
	n := len(cs)
	limits := faultproxy.AWSLimits()

	// Exits and times.
	exits := map[int]int{}
	var took []time.Duration
	var failed []*stormClaimer
	for _, c := range cs {
		exits[c.code]++
		took = append(took, c.took)
		if c.code != 0 {
			failed = append(failed, c)
		}
	}
	var codes []int
	for code := range exits {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	var exitText []string
	for _, code := range codes {
		exitText = append(exitText, fmt.Sprintf("%d exited %d", exits[code], code))
	}
	slices.Sort(took)
	fmt.Fprintf(out, "\nBoot storm: %d claimers, %s; total time (all started to the last exit) %s; one claimer's time: median %s, p90 %s, min %s, max %s\n",
		n, strings.Join(exitText, ", "), ms(wall), ms(quantile(took, 0.5)), ms(quantile(took, 0.9)), ms(took[0]), ms(took[len(took)-1]))
	for i, c := range failed {
		if i == 3 {
			fmt.Fprintf(out, "  ... and %d more claimers that did not exit 0\n", len(failed)-i)
			break
		}
		fmt.Fprintf(out, "  claimer %d (%s) exited %d after %s; its last lines:\n%s\n", c.n, c.id, c.code, ms(c.took), indent(lastLines(c.stderr, 5), "    "))
	}
	if len(problems) == 0 {
		fmt.Fprintf(out, "Outcome (DescribeAddresses, ListResourceRecordSets): no double holder; every EIP on one claimer's primary interface; the %d fixed claimers hold their EIPs, the %d pool claimers one pool EIP each; every CNAME names its claimer's EIP\n", n/2, n-n/2)
	} else {
		fmt.Fprintf(out, "Outcome (DescribeAddresses, ListResourceRecordSets): %d PROBLEMS\n", len(problems))
		for i, p := range problems {
			if i == 10 {
				fmt.Fprintf(out, "  ... and %d more\n", len(problems)-i)
				break
			}
			fmt.Fprintln(out, "  "+p)
		}
	}

	// Requests by action, against the specification's minimum.
	type actionCount struct{ sent, limited, retried int }
	byAction := map[string]*actionCount{}
	buckets := map[string]*stormBucket{}
	for name, l := range limits.Buckets {
		buckets[name] = &stormBucket{name: name, limit: l, firstLimited: -1, lastAccepted: -1}
	}
	for _, r := range records {
		a := byAction[r.Action]
		if a == nil {
			a = &actionCount{}
			byAction[r.Action] = a
		}
		a.sent++
		if r.Attempt > 1 {
			a.retried++
		}
		b := buckets[limits.Bucket(r.Service, r.Action)]
		if b == nil {
			continue
		}
		at := r.Start.Sub(start)
		b.sent++
		if r.Limited {
			a.limited++
			b.limited++
			if b.firstLimited < 0 || at < b.firstLimited {
				b.firstLimited = at
			}
		} else {
			b.accepted = append(b.accepted, at)
			b.lastAccepted = max(b.lastAccepted, at)
		}
	}
	fmt.Fprintln(out, "\nStorm requests to EC2 and Route 53, all claimers (accepted = let through by the buckets; SDK retries = attempts after the SDK's first):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "request\tneeded\tsent\tthrottled\taccepted\tSDK retries\tbucket\tnote")
	seen := map[string]bool{}
	var totals [5]int
	row := func(label string, needed int, actions []string, note string) {
		var s, l, r int
		for _, a := range actions {
			seen[a] = true
			if c := byAction[a]; c != nil {
				s, l, r = s+c.sent, l+c.limited, r+c.retried
			}
		}
		for i, v := range []int{needed, s, l, s - l, r} {
			totals[i] += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", label, needed, s, l, s-l, r, limits.Bucket(serviceOf(actions[0]), actions[0]), note)
	}
	need := neededCount(freshSteps)
	for _, rq := range requests {
		b := limits.Bucket(serviceOf(rq.actions[0]), rq.actions[0])
		if b == "" {
			continue // IMDS: not limited, not through this proxy
		}
		buckets[b].needed += need[rq.label] * n
		row(rq.label, need[rq.label]*n, rq.actions, "")
	}
	var extra []string
	for a := range byAction {
		if !seen[a] {
			extra = append(extra, a)
		}
	}
	sort.Strings(extra)
	for _, a := range extra {
		row(a, 0, []string{a}, "REDUNDANT: not in the specification's minimum")
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\t\n", totals[0], totals[1], totals[2], totals[3], totals[4])
	tw.Flush()

	// Buckets, and the bucket-limited minimum.
	var bs []*stormBucket
	for _, b := range buckets {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].name < bs[j].name })
	var minimum time.Duration
	var binding *stormBucket
	fmt.Fprintln(out, "\nToken buckets (AWS's per account and region): the least time each takes to let through the requests needed, and those accepted")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bucket\tburst\trefill/s\tneeded\tleast time for them\taccepted\tleast time for them\tthrottled\tfirst accepted at\tfirst throttled at\trefill lost later (full)\tlast accepted at")
	at := func(d time.Duration) string {
		if d < 0 {
			return "-"
		}
		return ms(d)
	}
	for _, b := range bs {
		accepted := b.sent - b.limited
		least := bucketMin(b.needed, b.limit)
		if binding == nil || least > minimum {
			minimum, binding = least, b
		}
		first, later := b.idle()
		if len(b.accepted) == 0 {
			first = -1
		}
		fmt.Fprintf(tw, "%s\t%d\t%g\t%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", b.name, b.limit.Burst, b.limit.Rate, b.needed, ms(least),
			accepted, ms(bucketMin(accepted, b.limit)), b.limited, at(first), at(b.firstLimited), ms(later), at(b.lastAccepted))
	}
	tw.Flush()
	fmt.Fprintf(out, "bucket-limited minimum: %s (%s: (%d needed - %d burst) / %g per s)\n", ms(minimum), binding.name, binding.needed, binding.limit.Burst, binding.limit.Rate)
	if first, later := binding.idle(); len(binding.accepted) > 0 {
		accepted := len(binding.accepted)
		fmt.Fprintf(out, "  %s: its last accepted request at %s = its first at %s (the bucket full until then) + refill lost to being full later %s + least time for the %d accepted %s + %s of refill still unused at its last request (idle at the tail)\n",
			binding.name, ms(binding.lastAccepted), ms(first), ms(later), accepted, ms(bucketMin(accepted, binding.limit)),
			ms(binding.lastAccepted-first-later-bucketMin(accepted, binding.limit)))
	}

	// The claim loop's own retries, from the claimers' logs.
	retries, races := claimLoopRetries(cs)
	if len(retries) > 0 || races > 0 {
		var keys []string
		for k := range retries {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			return retries[keys[i]] > retries[keys[j]] || retries[keys[i]] == retries[keys[j]] && keys[i] < keys[j]
		})
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, retries[k]))
		}
		fmt.Fprintf(out, "claim-loop retries (after the SDK's own attempts), by op and error code: %s; pool EIPs lost to another claimer: %d\n", orNone(strings.Join(parts, ", ")), races)
	}

	fmt.Fprintln(out, "\nTargets (boot storm):")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tmeasured\ttarget\tresult")
	fmt.Fprintf(tw, "claimers that exit 0\t%d of %d\tall\t%s\n", exits[0], n, verdict(exits[0] == n))
	fmt.Fprintf(tw, "double holders, fixed claimers without their EIP, wrong CNAMEs\t%d\t0\t%s\n", len(problems), verdict(len(problems) == 0))
	ratio := 0.0
	if minimum > 0 {
		ratio = float64(wall) / float64(minimum)
	}
	fmt.Fprintf(tw, "total time / bucket-limited minimum\t%s / %s = %sx\t<= %.1fx\t%s\n", ms(wall), ms(minimum), ratioText(ratio, targetStorm), targetStorm, verdict(minimum > 0 && ratio <= targetStorm))
	limited := 0
	for _, b := range bs {
		limited += b.limited
	}
	fmt.Fprintf(tw, "requests throttled\t%d of %d\t(none)\t-\n", limited, len(records))
	tw.Flush()
	if minimum == 0 {
		fmt.Fprintf(out, "(with %d claimers every bucket's burst covers the requests needed: there is no bucket-limited minimum to compare with; run more claimers)\n", n)
	}
}

// claimLoopRetries counts the claim loop's retry lines (--log-format json)
// by op and error code, and the pool EIPs lost to another claimer.
func claimLoopRetries(cs []*stormClaimer) (map[string]int, int) {
	retries := map[string]int{}
	races := 0
	for _, c := range cs {
		sc := bufio.NewScanner(strings.NewReader(c.stderr))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Msg       string `json:"msg"`
				Op        string `json:"op"`
				ErrorCode string `json:"error_code"`
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "attempt failed, will retry":
				retries[l.Op+" "+l.ErrorCode]++
			case strings.Contains(l.Msg, "taken by another claimer"):
				races++
			}
		}
	}
	return retries, races
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// ratioText prints a ratio with two decimals, three when two would round a
// miss onto the target.
func ratioText(ratio, target float64) string {
	if t := fmt.Sprintf("%.2f", ratio); t != fmt.Sprintf("%.2f", target) || ratio <= target {
		return t
	}
	return fmt.Sprintf("%.3f", ratio)
}
