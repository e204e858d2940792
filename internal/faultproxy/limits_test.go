package faultproxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestBucketRefill(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &bucket{limit: Limit{Burst: 3, Rate: 2}, tokens: 3, last: start}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	steps := []struct {
		at   time.Duration
		want bool
		why  string
	}{
		{0, true, "full: 3 tokens"},
		{0, true, "2 left"},
		{0, true, "1 left"},
		{0, false, "empty"},
		{0, false, "a throttled request takes nothing and the bucket stays empty"},
		{250 * time.Millisecond, false, "half a token back"},
		{500 * time.Millisecond, true, "one token back after 1/Rate"},
		{500 * time.Millisecond, false, "and it is taken"},
		{time.Hour, true, "refilled after a long pause..."},
		{time.Hour, true, "..."},
		{time.Hour, true, "..."},
		{time.Hour, false, "...but never beyond Burst"},
		{time.Hour - time.Second, false, "a clock that goes back gives nothing back"},
		{time.Hour + 500*time.Millisecond, true, "one token in the 500ms since"},
	}
	for i, s := range steps {
		if got := b.take(at(s.at)); got != s.want {
			t.Fatalf("step %d (%s) at +%s: take = %t, want %t (bucket %+v)", i, s.why, s.at, got, s.want, *b)
		}
	}
}

func TestAWSBucket(t *testing.T) {
	tests := []struct{ service, action, want string }{
		{"ec2", "AssociateAddress", BucketEC2Mutating},
		{"ec2", "DisassociateAddress", BucketEC2Mutating},
		{"ec2", "RunInstances", BucketEC2Mutating},
		{"ec2", "DescribeAddresses", BucketEC2NonMutating},
		{"ec2", "DescribeInstances", BucketEC2NonMutating},
		{"ec2", "DescribeNetworkInterfaces", BucketEC2NonMutating},
		{"ec2", "GetConsoleOutput", BucketEC2NonMutating},
		{"ec2", "CreateTags", BucketEC2CreateTags},
		{"route53", "GET /2013-04-01/hostedzone/{id}/rrset", BucketRoute53},
		{"route53", "POST /2013-04-01/hostedzone/{id}/rrset", BucketRoute53},
		{"route53", "GET /2013-04-01/change/{id}", BucketRoute53},
		{"imds", "GET /latest/meta-data/instance-id", ""},
		{"s3", "GET /fleet-config/eipclaim.yaml", ""},
		{"moto", "moto-api POST /moto-api/reset", ""},
	}
	for _, tc := range tests {
		if got := AWSBucket(tc.service, tc.action); got != tc.want {
			t.Errorf("AWSBucket(%q, %q) = %q, want %q", tc.service, tc.action, got, tc.want)
		}
	}
	for name, l := range AWSLimits().Buckets {
		if l.Burst < 1 || l.Rate <= 0 {
			t.Errorf("AWSLimits: bucket %q = %+v", name, l)
		}
	}
}

// signed sends a request as the SDK would sign it for service: the proxy
// tells the service by the SigV4 credential scope.
func signed(t *testing.T, p *Proxy, service, method, path string, form url.Values) int {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, p.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRateLimitPerBucket sends requests through a proxy enforcing AWS's
// buckets on an injected clock: each class of action is throttled once
// its own bucket is empty, and gets tokens back at its own rate.
func TestRateLimitPerBucket(t *testing.T) {
	up := newUpstream(t)
	clock := newFakeClock()
	limits := AWSLimits()
	limits.Now = clock.Now
	p := newProxy(t, up.URL, Options{Limits: limits})
	ec2Action := func(action string) int {
		return signed(t, p, "ec2", http.MethodPost, "/", url.Values{"Action": {action}, "Version": {"2016-11-15"}})
	}
	rrset := func() int { return signed(t, p, "route53", http.MethodGet, "/2013-04-01/hostedzone/Z1/rrset", nil) }
	// send makes n requests and counts the answers by status.
	send := func(n int, do func() int) map[int]int {
		got := map[int]int{}
		for range n {
			got[do()]++
		}
		return got
	}
	check := func(what string, got map[int]int, ok, throttled, status int) {
		t.Helper()
		if got[http.StatusOK] != ok || got[status] != throttled || len(got) > 2 {
			t.Errorf("%s: answers by status %v, want %d OK and %d throttled (%d)", what, got, ok, throttled, status)
		}
	}
	before := up.hits.Load()
	check("55 AssociateAddress at once", send(55, func() int { return ec2Action("AssociateAddress") }), 50, 5, http.StatusServiceUnavailable)
	check("3 DisassociateAddress, same bucket", send(3, func() int { return ec2Action("DisassociateAddress") }), 0, 3, http.StatusServiceUnavailable)
	check("105 DescribeAddresses, a bucket of their own", send(105, func() int { return ec2Action("DescribeAddresses") }), 100, 5, http.StatusServiceUnavailable)
	check("101 CreateTags, a bucket of its own", send(101, func() int { return ec2Action("CreateTags") }), 100, 1, http.StatusServiceUnavailable)
	check("52 ListResourceRecordSets", send(52, rrset), 50, 2, http.StatusBadRequest)
	if got := up.hits.Load() - before; got != 300 {
		t.Errorf("the upstream got %d requests, want the 300 let through", got)
	}

	clock.Advance(time.Second)
	check("1s later: AssociateAddress, 5 per second", send(6, func() int { return ec2Action("AssociateAddress") }), 5, 1, http.StatusServiceUnavailable)
	check("1s later: DescribeAddresses, 20 per second", send(21, func() int { return ec2Action("DescribeAddresses") }), 20, 1, http.StatusServiceUnavailable)
	check("1s later: CreateTags, 10 per second", send(11, func() int { return ec2Action("CreateTags") }), 10, 1, http.StatusServiceUnavailable)
	check("1s later: Route 53, 10 per second", send(11, rrset), 10, 1, http.StatusBadRequest)
	check("IMDS is not limited", send(200, func() int {
		resp, err := http.Get(p.URL + "/latest/meta-data/instance-id")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}), 200, 0, 0)

	c := p.Counts()
	want := map[string]int{"AssociateAddress": 6, "DisassociateAddress": 3, "DescribeAddresses": 6, "CreateTags": 2, "GET /2013-04-01/hostedzone/{id}/rrset": 3}
	total := 0
	for action, n := range want {
		total += n
		if a := c.Actions[action]; a == nil || a.Limited != n || a.Faults[Throttle] != n {
			t.Errorf("%s: counts %+v, want %d limited (Throttle faults)", action, a, n)
		}
	}
	if c.Limited != total || c.Faults[Throttle] != total {
		t.Errorf("limited %d, throttle faults %d, want %d", c.Limited, c.Faults[Throttle], total)
	}
	for _, r := range p.Records() {
		if r.Limited != (r.Fault == Throttle) || (r.Limited && r.Upstream != 0) {
			t.Errorf("record %+v: a limited request is a Throttle fault, never forwarded", r)
		}
	}
}

// TestRateLimitThrottlingAsTheSDKSeesThem sends real SDK calls through a
// proxy whose buckets hold one token and never refill: the second call of
// each service is throttled, and the SDK decodes the answer as the
// service's throttling error, which its retryer treats as throttling.
func TestRateLimitThrottlingAsTheSDKSeesThem(t *testing.T) {
	up := newUpstream(t)
	clock := newFakeClock()
	p := newProxy(t, up.URL, Options{Limits: &Limits{
		Bucket:  AWSBucket,
		Buckets: map[string]Limit{BucketEC2NonMutating: {Burst: 1}, BucketRoute53: {Burst: 1}},
		Now:     clock.Now,
	}})
	cfg := sdkConfig(p, 1)
	ec2c, r53c := ec2.NewFromConfig(cfg), route53.NewFromConfig(cfg)
	calls := []struct {
		service    string
		call       func() error
		wantCode   string
		wantStatus int
	}{
		{"EC2", func() error {
			_, err := ec2c.DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
			return err
		}, "RequestLimitExceeded", http.StatusServiceUnavailable},
		{"Route 53", func() error {
			_, err := r53c.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String("Z1")})
			return err
		}, "Throttling", http.StatusBadRequest},
	}
	for _, c := range calls {
		t.Run(c.service, func(t *testing.T) {
			if err := c.call(); err != nil {
				t.Fatalf("first call, the bucket's one token: %v", err)
			}
			err := c.call()
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != c.wantCode {
				t.Fatalf("second call: %v, want the API error %s", err, c.wantCode)
			}
			if m := apiErr.ErrorMessage(); m == "" {
				t.Errorf("the SDK decoded no message from %v", err)
			}
			var re *smithyhttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != c.wantStatus {
				t.Errorf("second call: %v, want HTTP %d", err, c.wantStatus)
			}
			if got := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err); got != aws.TrueTernary {
				t.Errorf("the SDK's retryer does not count %v as throttling (%v)", err, got)
			}
			if got := retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err); got != aws.TrueTernary {
				t.Errorf("the SDK's retryer would not retry %v (%v)", err, got)
			}
		})
	}
	if c := p.Counts(); c.Limited != 2 || c.Total != 4 {
		t.Errorf("counts: %d limited of %d, want 2 of 4", c.Limited, c.Total)
	}
}

func TestNewRejectsBadRateLimits(t *testing.T) {
	for i, l := range []*Limits{
		{Buckets: map[string]Limit{"b": {Burst: 1, Rate: 1}}},
		{Bucket: AWSBucket, Buckets: map[string]Limit{"b": {Burst: 0, Rate: 1}}},
		{Bucket: AWSBucket, Buckets: map[string]Limit{"b": {Burst: 1, Rate: -1}}},
	} {
		if p, err := New("http://127.0.0.1:5000", Options{Limits: l}); err == nil {
			p.Close()
			t.Errorf("case %d: New with Limits %+v succeeded, want an error", i, l)
		} else if !strings.Contains(err.Error(), "Limits") {
			t.Errorf("case %d: error %q does not name Limits", i, err)
		}
	}
	if p, err := New("http://127.0.0.1:5000", Options{Limits: AWSLimits()}); err != nil {
		t.Errorf("New with AWSLimits: %v", err)
	} else {
		p.Close()
	}
}
