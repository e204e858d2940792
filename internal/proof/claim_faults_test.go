package proof_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/eipclaim/eipclaim/internal/faultproxy"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

// fixedRole is the user-data of a claimer of one EIP.
func fixedRole(alloc string) string {
	return "role: db\nroles:\n  db:\n    allocation_id: " + alloc + "\n"
}

// outsideLoop are the actions whose failures do not go through the claim
// loop (retry.Retrier), so that an error the SDK passes up logs no retry
// line. None since 41d0171; before it CreateTags, the public-DNS
// DescribeNetworkInterfaces and the IMDS user-data were called once, and
// the proof found claims failing on them.
var outsideLoop []string

// category groups faults and error codes by what the client saw.
func category(k faultproxy.Kind) string {
	switch k {
	case faultproxy.Throttle:
		return "throttle"
	case faultproxy.HTTP500:
		return "500"
	case faultproxy.HTTP503:
		return "503"
	}
	return "network" // Reset, Down, LostResponse
}

// codeCategory is the category of a retry line's error_code.
func codeCategory(code string) string {
	switch code {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "HTTP 429":
		return "throttle"
	case "InternalError", "InternalFailure", "HTTP 500":
		return "500"
	case "Unavailable", "ServiceUnavailable", "HTTP 503":
		return "503"
	}
	return "network" // "network"; "HTTP 0" is how a reset shows today
}

// TestClaimsUnderFaults runs the real binary, one process per instance, each
// with its own EIP, through proxies that fault 30% of the requests to EC2 and
// to IMDS (throttling, 500, 503, connection resets, latency) and reset every
// IMDS request in the first 2 s of each claimer's life (IMDS not up yet at
// boot). Every claim must succeed within its --timeout, every EIP must end on
// its claimer's primary interface, tagged, and the logs must account for the
// faults.
//
// What the logs can be held to: eipclaim has two layers of retries. The
// SDK's standard retryer (3 attempts, no client-side quota: ratelimit.None)
// retries throttling, 5xx and connection errors silently; only an operation
// whose 3 attempts all fail reaches the claim loop, which logs one line per
// failed attempt ("attempt failed, will retry", with error_code and
// next_delay). The proxy sees the SDK's attempt headers (Amz-Sdk-Request,
// Amz-Sdk-Invocation-Id) and so knows which operations ended on a fault:
// Counts.Surfaced. Each claimer has proxies of its own, so for each claimer
//
//	surfaced in-loop operations <= retry lines <= all surfaced operations
//
// where the gap is the surfaced operations of outsideLoop (none today):
// when none of those surfaced, the two are equal, fault category by fault
// category.
//
// make test runs 200 claims, 40 at once; EIPCLAIM_PROOF=1 runs 1000.
func TestClaimsUnderFaults(t *testing.T) {
	n, batch := 200, 40
	if proof() {
		n = 1000
	}
	claimsUnderFaults(t, n, batch, nil)
}

// TestClaimsUnderFaultsAndStale is TestClaimsUnderFaults with EC2's
// eventual consistency too: every claimer's EC2 proxy shares one
// stale-read mode (faultproxy.Stale, lags up to 2 s), so that after any
// claimer's AssociateAddress or CreateTags every claimer's reads may show
// the state before it. The same assertions hold, and stale answers must
// have been served. make test runs 40 claims, 20 at once;
// EIPCLAIM_PROOF=1 200, 40 at once.
func TestClaimsUnderFaultsAndStale(t *testing.T) {
	n, batch := 40, 20
	if proof() {
		n, batch = 200, 40
	}
	st := newStale(t, 11)
	claimsUnderFaults(t, n, batch, st)
	if st.Served() == 0 {
		t.Errorf("the stale-read mode served no stale answer in %d claims: the proof proves nothing", n)
	}
}

// claimsUnderFaults runs n faulted claims, batch at once, their EC2
// proxies sharing st when it is set.
func claimsUnderFaults(t *testing.T, n, batch int, st *faultproxy.Stale) {
	const rate = 0.3
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	insts := world.NewInstances(n)
	allocs := allocate(world, n, nil)
	claimers := make([]*claimer, n)
	for i := range claimers {
		claimers[i] = &claimer{inst: insts[i], alloc: allocs[i], userData: fixedRole(allocs[i])}
	}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 90 * time.Second,
		imdsOpts: func(seed uint64) faultproxy.Options {
			return faultproxy.Options{Rate: rate, Seed: seed, DownFor: 2 * time.Second}
		},
		ec2Opts: func(seed uint64) faultproxy.Options {
			return faultproxy.Options{Rate: rate, Seed: seed + 1<<32, Stale: st}
		},
	}
	f.run(claimers, batch)

	addrs := world.Addresses()
	var (
		total, faults, surfaced, lines, untagged int
		byKind                                   = map[faultproxy.Kind]int{}
		tooks                                    []time.Duration
	)
	exits := map[int]int{}
	for _, c := range claimers {
		exits[c.code]++
		if c.code != 0 {
			t.Errorf("exit %d, want 0: %s", c.code, c)
			continue
		}
		tooks = append(tooks, c.took)
		if c.took >= f.timeout {
			t.Errorf("took %s, beyond its --timeout %s: %s", c.took, f.timeout, c)
		}
		if got := aws.ToString(addrs[c.alloc].NetworkInterfaceId); got != c.inst.ENI {
			t.Errorf("%s: EIP %s is on %q, want its primary interface %s", c.inst.ID, c.alloc, got, c.inst.ENI)
		}
		tagged := false
		for _, tg := range addrs[c.alloc].Tags {
			tagged = tagged || aws.ToString(tg.Key) == "eipclaim:holder" && aws.ToString(tg.Value) == c.inst.ID
		}
		if !tagged {
			untagged++
			t.Errorf("%s: EIP %s is not tagged eipclaim:holder=%s\n%s\n%s", c.inst.ID, c.alloc, c.inst.ID, describeOps(c), c)
		}

		im, ec := c.imds.Counts(), c.ec2.Counts()
		total += im.Total + ec.Total
		faults += im.ErrorFaults() + ec.ErrorFaults() + im.Faults[faultproxy.Latency] + ec.Faults[faultproxy.Latency]
		for _, cnt := range []faultproxy.Counts{im, ec} {
			for k, v := range cnt.Faults {
				byKind[k] += v
			}
		}
		all := im.SurfacedErrors() + ec.SurfacedErrors()
		outside := im.SurfacedErrors(outsideLoop...) + ec.SurfacedErrors(outsideLoop...)
		surfaced += all
		var retries []logLine
		for _, l := range c.retries() {
			if l.ErrorCode == "NotVisibleYet" { // eventual consistency, not a fault
				continue
			}
			retries = append(retries, l)
			if l.ErrorCode == "" || l.Op == "" || l.Attempt < 1 {
				t.Errorf("%s: retry line without op, attempt or error_code: %+v", c.inst.ID, l)
			}
			if d, err := time.ParseDuration(l.NextDelay); err != nil || d < 0 {
				t.Errorf("%s: retry line with next_delay %q: %+v", c.inst.ID, l.NextDelay, l)
			}
		}
		lines += len(retries)
		if len(retries) < all-outside || len(retries) > all {
			t.Errorf("%s: %d retry lines; the proxies saw %d operations fail after the SDK's retries, %d of them in the claim loop\n%s\n%s",
				c.inst.ID, len(retries), all, all-outside, describeOps(c), c)
		} else if outside == 0 {
			// Line for line, the codes say which fault it was; except for
			// a failed IMDS token request, whose error the SDK wraps in a
			// type that hides its cause (any code goes).
			want, got := map[string]int{}, map[string]int{}
			for _, cnt := range []faultproxy.Counts{im, ec} {
				for a, ac := range cnt.Actions {
					for k, v := range ac.Surfaced {
						if a != "PUT /latest/api/token" {
							want[category(k)] += v
						}
					}
				}
			}
			for _, l := range retries {
				got[codeCategory(l.ErrorCode)]++
			}
			for cat, w := range want {
				if got[cat] < w {
					t.Errorf("%s: retry lines by fault %v, want at least %v as the proxies injected them\n%s\n%s", c.inst.ID, got, want, describeOps(c), c)
					break
				}
			}
		}
	}
	sort.Slice(tooks, func(i, j int) bool { return tooks[i] < tooks[j] })
	med, worst := time.Duration(0), time.Duration(0)
	if len(tooks) > 0 {
		med, worst = tooks[len(tooks)/2], tooks[len(tooks)-1]
	}
	stale := ""
	if st != nil {
		stale = fmt.Sprintf(" (stale reads: %d stale answers served)", st.Served())
	}
	t.Logf("PROOF faults%s: %d claims (%d at once) in %s of claiming, exit codes %v; of the successful ones: %d requests, %d faulted (%v), %d operations failed after the SDK's retries, %d retry lines, %d EIPs left untagged; claim time median %s, max %s (timeout %s)",
		stale, n, batch, f.claiming.Round(time.Millisecond), exits, total, faults, kinds(byKind), surfaced, lines, untagged, med.Round(time.Millisecond), worst.Round(time.Millisecond), f.timeout)
}

func kinds(m map[faultproxy.Kind]int) string {
	var parts []string
	for k := faultproxy.Throttle; k <= faultproxy.Down; k++ {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// describeOps lists a claimer's requests, for failure messages.
func describeOps(c *claimer) string {
	var b strings.Builder
	for _, p := range []*faultproxy.Proxy{c.imds, c.ec2} {
		for _, r := range p.Records() {
			fmt.Fprintf(&b, "  %-48s attempt %d  %-13s %d\n", r.Action, r.Attempt, r.Fault, r.Status)
		}
	}
	return b.String()
}

// TestIMDSDownAtBoot: the instance metadata service does not answer for
// longer than the SDK's own retries last (3 attempts within ~2 s), as at an
// early boot. The claim must wait for it, within --timeout, not fail.
func TestIMDSDownAtBoot(t *testing.T) {
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	alloc := world.NewEIP(nil).AllocationID
	c := &claimer{inst: world.NewInstance(), alloc: alloc, userData: fixedRole(alloc)}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second,
		imdsOpts: func(uint64) faultproxy.Options { return faultproxy.Options{DownFor: 5 * time.Second} },
	}
	f.run([]*claimer{c}, 1)
	if c.code != 0 {
		t.Fatalf("IMDS down for the first 5s: exit %d, want 0 (retry until --timeout)\n%s\n%s", c.code, describeOps(c), c)
	}
	if c.took < 5*time.Second || len(c.retries()) == 0 {
		t.Errorf("took %s with %d retry lines; want at least the 5s outage, with retry lines", c.took, len(c.retries()))
	}
	if got := aws.ToString(world.Addresses()[alloc].NetworkInterfaceId); got != c.inst.ENI {
		t.Errorf("EIP on %q, want %s", got, c.inst.ENI)
	}
}

// TestUserDataFaultRetried: reading the user-data fails once after the
// SDK's three attempts (503 each time). The claim must retry it.
func TestUserDataFaultRetried(t *testing.T) {
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	alloc := world.NewEIP(nil).AllocationID
	c := &claimer{inst: world.NewInstance(), alloc: alloc, userData: fixedRole(alloc)}
	plan := func(action string, n int) faultproxy.Kind {
		if action == "GET /latest/user-data" && n <= 3 {
			return faultproxy.HTTP503
		}
		return faultproxy.None
	}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second,
		imdsOpts: func(uint64) faultproxy.Options { return faultproxy.Options{Plan: plan} },
	}
	f.run([]*claimer{c}, 1)
	if c.code != 0 {
		t.Fatalf("user-data answered 503 three times in a row: exit %d, want 0 (retry until --timeout)\n%s\n%s", c.code, describeOps(c), c)
	}
	if n := c.imds.Counts().Requests("GET /latest/user-data"); n != 4 {
		t.Errorf("%d user-data requests, want 4 (3 faulted, then one answered)", n)
	}
}

// TestPermissionDeniedEndsAtOnce: the instance's IAM user may do everything
// but ec2:AssociateAddress. moto enforces IAM after its first setupCalls
// requests (INITIAL_NO_AUTH_ACTION_COUNT), which create the instance, the
// EIP and the user. The claim must fail at once with exit 3 naming the
// action, after exactly one AssociateAddress request: no retry, neither by
// the SDK nor by the claim loop.
func TestPermissionDeniedEndsAtOnce(t *testing.T) {
	// RunInstances, AllocateAddress, CreateUser, PutUserPolicy, CreateAccessKey.
	const setupCalls = 5
	moto := testenv.StartMotoEnv(t, fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", setupCalls))
	world := testenv.NewTestWorld(t, moto.Config())
	inst := world.NewInstance()
	alloc := world.NewEIP(nil).AllocationID
	key, secret := iamUser(t, moto, "claimer", `{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": "*", "Resource": "*"},
		{"Effect": "Deny", "Action": "ec2:AssociateAddress", "Resource": "*"}]}`)

	c := &claimer{inst: inst, alloc: alloc, userData: fixedRole(alloc)}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second,
		env: []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret},
	}
	f.run([]*claimer{c}, 1)
	if c.code != 3 {
		t.Fatalf("exit %d, want 3 (not permitted)\n%s\n%s", c.code, describeOps(c), c)
	}
	if !strings.Contains(c.stderr, "AssociateAddress") || !strings.Contains(c.stderr, "not permitted") {
		t.Errorf("the error does not say AssociateAddress is not permitted:\n%s", c.stderr)
	}
	if n := c.ec2.Counts().Requests("AssociateAddress"); n != 1 {
		t.Errorf("%d AssociateAddress requests, want exactly 1\n%s", n, describeOps(c))
	}
	if c.took > 10*time.Second {
		t.Errorf("took %s of its %s timeout: a denial must end at once", c.took, f.timeout)
	}
	// moto now wants the user's keys from the test too.
	cfg := moto.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(key, secret, "")
	if got := aws.ToString(testenv.NewTestWorld(t, cfg).Addresses()[alloc].AssociationId); got != "" {
		t.Errorf("the EIP was associated (%s) although AssociateAddress is denied", got)
	}
	t.Logf("PROOF denied: exit %d in %s after %d EC2 requests (%d AssociateAddress): %s", c.code, c.took.Round(time.Millisecond), c.ec2.Counts().Total, c.ec2.Counts().Requests("AssociateAddress"), lastError(c.stderr))
}

// iamUser creates an IAM user with an inline policy and an access key, and
// returns the key. The SDK's IAM client is not a dependency of eipclaim, so
// these are signed query-protocol requests.
func iamUser(t *testing.T, moto *testenv.Moto, name, policy string) (key, secret string) {
	t.Helper()
	moto.IAMQuery(t, url.Values{"Action": {"CreateUser"}, "UserName": {name}})
	moto.IAMQuery(t, url.Values{"Action": {"PutUserPolicy"}, "UserName": {name}, "PolicyName": {"eipclaim"}, "PolicyDocument": {policy}})
	body := moto.IAMQuery(t, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}})
	var out struct {
		Key    string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.Key == "" || out.Secret == "" {
		t.Fatalf("CreateAccessKey: %v\n%s", err, body)
	}
	return out.Key, out.Secret
}

// lastError is the error line eipclaim prints last, "eipclaim: ...".
func lastError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "eipclaim: ") {
			return lines[i]
		}
	}
	return ""
}

// TestRoute53FaultRetried: the first read of the record and the UPSERT are
// each throttled three times in a row, past the SDK's own attempts. The
// claim must retry each call alone (not the whole publication) and end with
// the CNAME, exit 0, not exit 5.
func TestRoute53FaultRetried(t *testing.T) {
	moto := testenv.SharedMoto(t)
	world := testenv.NewTestWorld(t, moto.Config())
	alloc := world.NewEIP(nil).AllocationID
	zoneID := world.NewZone("example.internal", false)
	c := &claimer{inst: world.NewInstance(), alloc: alloc,
		userData: fixedRole(alloc) + "    dns:\n      route53: {zone_id: " + zoneID + ", name: db.example.internal, ttl: 60}\n"}
	plan := func(action string, n int) faultproxy.Kind {
		if (action == "GET /2013-04-01/hostedzone/{id}/rrset" || action == "POST /2013-04-01/hostedzone/{id}/rrset") && n <= 3 {
			return faultproxy.Throttle
		}
		return faultproxy.None
	}
	f := &fleet{t: t, bin: testenv.Eipclaim(t), moto: moto, timeout: 60 * time.Second,
		ec2Opts: func(uint64) faultproxy.Options { return faultproxy.Options{Plan: plan} },
	}
	f.run([]*claimer{c}, 1)
	if c.code != 0 {
		t.Fatalf("Route 53 throttled past the SDK's retries: exit %d, want 0 (retry until --timeout)\n%s\n%s", c.code, describeOps(c), c)
	}
	if got, want := len(c.retries()), c.ec2.Counts().SurfacedErrors(); got != want || want != 2 {
		t.Errorf("%d retry lines for %d operations failed past the SDK, want 2 and 2\n%s", got, want, describeOps(c))
	}
	out, err := world.Route53.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rr := range out.ResourceRecordSets {
		found = found || aws.ToString(rr.Name) == "db.example.internal." && rr.Type == r53types.RRTypeCname
	}
	if !found {
		t.Errorf("no CNAME db.example.internal. after the claim: %+v", out.ResourceRecordSets)
	}
}
