package faultproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go"
)

// upstream is a plain HTTP server that echoes what it got, and answers the
// two AWS calls the SDK tests make with valid empty results.
type upstream struct {
	*httptest.Server
	hits  atomic.Int64
	delay time.Duration
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		time.Sleep(u.delay)
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(body), "Action=DescribeAddresses"):
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, `<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><addressesSet/></DescribeAddressesResponse>`)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/rrset"):
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, `<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets/><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>`)
		default:
			w.Header().Set("X-Host", r.Host)
			io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func newProxy(t *testing.T, target string, o Options) *Proxy {
	t.Helper()
	p, err := New(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sdkConfig points the SDK at the proxy with a fast retryer: attempts
// tries, no backoff, no client-side quota.
func sdkConfig(p *Proxy, attempts int) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(p.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

func TestForwardsAndCountsByAction(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL, Options{})
	tests := []struct {
		name, method, path, contentType, body, wantAction string
	}{
		{"EC2 query", "POST", "/", "application/x-www-form-urlencoded; charset=utf-8", "Action=AssociateAddress&Version=2016-11-15&AllocationId=eipalloc-1", "AssociateAddress"},
		{"query in URL", "GET", "/?Action=DescribeRegions&Version=2016-11-15", "", "", "DescribeRegions"},
		{"Route 53 rrset", "POST", "/2013-04-01/hostedzone/Z0123456789ABC/rrset", "application/xml", "<x/>", "POST /2013-04-01/hostedzone/{id}/rrset"},
		{"Route 53 change", "GET", "/2013-04-01/change/C2682N5HXP0BZ4", "", "", "GET /2013-04-01/change/{id}"},
		{"Route 53 final slash", "POST", "/2013-04-01/hostedzone/Z0123456789ABC/rrset/", "application/xml", "<x/>", "POST /2013-04-01/hostedzone/{id}/rrset"},
		{"Route 53 tags", "GET", "/2013-04-01/tags/hostedzone/Z0123", "", "", "GET /2013-04-01/tags/hostedzone/{id}"},
		{"Route 53 list zones", "GET", "/2013-04-01/hostedzone", "", "", "GET /2013-04-01/hostedzone"},
		{"IMDS token", "PUT", "/latest/api/token", "", "", "PUT /latest/api/token"},
		{"IMDS path", "GET", "/latest/meta-data/instance-id", "", "", "GET /latest/meta-data/instance-id"},
		{"S3 object", "GET", "/fleet-config/eipclaim.yaml", "", "", "GET /fleet-config/eipclaim.yaml"},
		{"moto API", "POST", "/moto-api/reset", "", "", "moto-api POST /moto-api/reset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.URL+tc.path, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := tc.method + " " + tc.path + " " + tc.body; string(got) != want {
				t.Errorf("upstream got %q, want %q (body restored, path and query kept)", got, want)
			}
			if host := resp.Header.Get("X-Host"); host != strings.TrimPrefix(p.URL, "http://") {
				t.Errorf("upstream saw Host %q, want the proxy's %q (SigV4 signs it)", host, p.URL)
			}
			recs := p.Records()
			last := recs[len(recs)-1]
			if last.Action != tc.wantAction || last.Status != http.StatusOK || last.Fault != None {
				t.Errorf("record = %+v, want action %q, status 200, no fault", last, tc.wantAction)
			}
		})
	}
	c := p.Counts()
	if c.Total != len(tests) || c.Requests("AssociateAddress") != 1 || c.Requests("AssociateAddress", "DescribeRegions") != 2 {
		t.Errorf("counts = %+v", c)
	}
}

func TestService(t *testing.T) {
	tests := []struct{ auth, path, want string }{
		{"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x", "/", "ec2"},
		{"AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=x", "/2013-04-01/hostedzone", "route53"},
		{"AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x", "/b/k", "s3"},
		{"", "/latest/api/token", "imds"},
		{"", "/2013-04-01/hostedzone", "route53"},
		{"", "/b/k", ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := Service(r); got != tc.want {
			t.Errorf("Service(%q, %q) = %q, want %q", tc.auth, tc.path, got, tc.want)
		}
	}
}

// TestFaultsAsTheSDKSeesThem sends real SDK calls through a proxy that
// faults every request with one kind, with the SDK's retries off.
func TestFaultsAsTheSDKSeesThem(t *testing.T) {
	up := newUpstream(t)
	tests := []struct {
		kind      Kind
		wantEC2   string // the EC2 error code, or a substring of the error
		wantR53   string
		wantCalls int64 // requests that reach the upstream
	}{
		{Throttle, "RequestLimitExceeded", "Throttling", 0},
		{HTTP500, "InternalError", "InternalFailure", 0},
		{HTTP503, "Unavailable", "ServiceUnavailable", 0},
		{Reset, "connection reset", "connection reset", 0},
		{LostResponse, "connection reset", "connection reset", 2},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			before := up.hits.Load()
			p := newProxy(t, up.URL, Options{Rate: 1, Kinds: []Kind{tc.kind}})
			cfg := sdkConfig(p, 1)
			_, err := ec2.NewFromConfig(cfg).DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
			checkErr(t, "EC2", err, tc.wantEC2)
			_, err = route53.NewFromConfig(cfg).ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String("Z1")})
			checkErr(t, "Route 53", err, tc.wantR53)
			if got := up.hits.Load() - before; got != tc.wantCalls {
				t.Errorf("upstream got %d requests, want %d", got, tc.wantCalls)
			}
			c := p.Counts()
			if c.Faults[tc.kind] != 2 || c.Surfaced[tc.kind] != 2 {
				t.Errorf("faults %v, surfaced %v; want 2 %v of each", c.Faults, c.Surfaced, tc.kind)
			}
		})
	}
}

func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, want)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == want {
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want code or text %q", what, err, want)
	}
}

func TestLatency(t *testing.T) {
	up := newUpstream(t)
	up.delay = 30 * time.Millisecond
	p := newProxy(t, up.URL, Options{Rate: 1, Kinds: []Kind{Latency}, Latency: 100 * time.Millisecond})
	began := time.Now()
	resp, err := http.Get(p.URL + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	r := p.Records()[0]
	if r.Fault != Latency || r.Status != 200 {
		t.Fatalf("record %+v, want a Latency fault answered 200", r)
	}
	if took < 130*time.Millisecond {
		t.Errorf("the request took %s, want at least the 100ms added and the 30ms upstream", took)
	}
	if r.Upstream < 30*time.Millisecond || r.Upstream >= 100*time.Millisecond {
		t.Errorf("upstream latency %s, want the upstream's ~30ms without the injected 100ms", r.Upstream)
	}
	if c := p.Counts(); c.Actions[r.Action].Upstream != r.Upstream || c.ErrorFaults() != 0 || c.SurfacedErrors() != 0 {
		t.Errorf("counts %+v: want the upstream time summed and no error fault", c)
	}
}

func TestDownFor(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL, Options{DownFor: 300 * time.Millisecond})
	get := func() error {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(p.URL + "/latest/api/token")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("during the outage: %v, want connection reset", err)
	}
	time.Sleep(350 * time.Millisecond)
	if err := get(); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	p.GoDown(time.Minute)
	if err := get(); err == nil {
		t.Fatal("after GoDown: no error, want a reset")
	}
	c := p.Counts()
	if c.Faults[Down] != 2 || c.Total != 3 {
		t.Errorf("counts %+v, want 2 Down of 3", c)
	}
}

func TestSeedIsReproducible(t *testing.T) {
	up := newUpstream(t)
	run := func(seed uint64) []Kind {
		p := newProxy(t, up.URL, Options{Rate: 0.5, Seed: seed, Kinds: []Kind{Throttle, HTTP500, HTTP503}})
		for range 40 {
			resp, err := http.Post(p.URL+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeAddresses"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		var kinds []Kind
		for _, r := range p.Records() {
			kinds = append(kinds, r.Fault)
		}
		return kinds
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 drew the same faults: %v", a)
	}
	n := 0
	for _, k := range a {
		if k != None {
			n++
		}
	}
	if n < 10 || n > 30 {
		t.Errorf("%d of 40 faulted at Rate 0.5", n)
	}
}

// TestSurfaced checks which faults the SDK's retryer passes up: with three
// attempts, only an operation whose three attempts all fail.
func TestSurfaced(t *testing.T) {
	up := newUpstream(t)
	tests := []struct {
		name         string
		faulted      int // the first n requests are throttled
		wantErr      bool
		wantRequests int
	}{
		{"two faults are retried by the SDK", 2, false, 3},
		{"three faults surface", 3, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, up.URL, Options{Plan: func(action string, n int) Kind {
				if n <= tc.faulted {
					return Throttle
				}
				return None
			}})
			_, err := ec2.NewFromConfig(sdkConfig(p, 3)).DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %t", err, tc.wantErr)
			}
			c := p.Counts()
			wantSurfaced := 0
			if tc.wantErr {
				wantSurfaced = 1
			}
			if c.Total != tc.wantRequests || c.Faults[Throttle] != tc.faulted || c.SurfacedErrors("DescribeAddresses") != wantSurfaced {
				t.Errorf("total %d, faults %v, surfaced %v; want %d, %d, %d", c.Total, c.Faults, c.Surfaced, tc.wantRequests, tc.faulted, wantSurfaced)
			}
			recs := p.Records()
			for i, r := range recs {
				if r.Attempt != i+1 || r.Invocation == "" || r.Invocation != recs[0].Invocation {
					t.Errorf("record %d: attempt %d, invocation %q; want attempt %d of one invocation", i, r.Attempt, r.Invocation, i+1)
				}
			}
		})
	}
}

func TestCountGroupsAttemptsWithoutInvocationID(t *testing.T) {
	recs := []Record{
		{Seq: 1, Action: "PUT /latest/api/token", Attempt: 1, Fault: Down},
		{Seq: 2, Action: "PUT /latest/api/token", Attempt: 2, Fault: Down},
		{Seq: 3, Action: "PUT /latest/api/token", Attempt: 3, Fault: Down}, // surfaced
		{Seq: 4, Action: "PUT /latest/api/token", Attempt: 1, Fault: Reset},
		{Seq: 5, Action: "GET /latest/user-data", Attempt: 1, Fault: HTTP500},
		{Seq: 6, Action: "PUT /latest/api/token", Attempt: 2},
		{Seq: 7, Action: "GET /latest/user-data", Attempt: 2, Fault: HTTP503}, // surfaced
		{Seq: 8, Action: "curl", Fault: Throttle},                             // surfaced: no retry header
		{Seq: 9, Action: "curl", Fault: Latency},
		// Go's transport resends a GET reset on a reused connection, with
		// the same attempt header: one attempt, not a new operation.
		{Seq: 10, Action: "GET /latest/dynamic/instance-identity/document", Attempt: 1, Fault: Reset},
		{Seq: 11, Action: "GET /latest/dynamic/instance-identity/document", Attempt: 1, Fault: Reset},
		{Seq: 12, Action: "GET /latest/dynamic/instance-identity/document", Attempt: 2},
	}
	c := Count(recs)
	if got := c.SurfacedErrors(); got != 3 {
		t.Errorf("surfaced %d (%v), want 3", got, c.Surfaced)
	}
	if c.Surfaced[Down] != 1 || c.Surfaced[HTTP503] != 1 || c.Surfaced[Throttle] != 1 {
		t.Errorf("surfaced by kind %v", c.Surfaced)
	}
	if c.ErrorFaults() != 9 || c.Faults[Latency] != 1 {
		t.Errorf("faults %v", c.Faults)
	}
}

func TestConcurrentUse(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL, Options{Rate: 0.3, Seed: 1, Latency: time.Millisecond})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				form := url.Values{"Action": {[]string{"DescribeAddresses", "AssociateAddress"}[(g+i)%2]}}
				resp, err := client.PostForm(p.URL+"/", form)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				_ = p.Counts()
			}
		})
	}
	wg.Wait()
	c := p.Counts()
	if c.Total != 400 || c.Requests("DescribeAddresses") != 200 || c.Requests("AssociateAddress") != 200 {
		t.Errorf("counts %+v, want 400 requests, 200 per action", c)
	}
	if n := c.ErrorFaults() + c.Faults[Latency]; n < 80 || n > 160 {
		t.Errorf("%d faults in 400 requests at Rate 0.3", n)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		target string
		o      Options
	}{
		{"127.0.0.1:5000", Options{}},
		{"http://127.0.0.1:5000", Options{Rate: 1.5}},
		{"http://127.0.0.1:5000", Options{Kinds: []Kind{Down}}},
		{"http://127.0.0.1:5000", Options{Kinds: []Kind{None}}},
	} {
		if p, err := New(tc.target, tc.o); err == nil {
			p.Close()
			t.Errorf("New(%q, %+v) succeeded, want an error", tc.target, tc.o)
		}
	}
}

func TestFaultableAndMotoAPI(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL, Options{Rate: 1, Kinds: []Kind{HTTP503}, Faultable: func(action string) bool { return action == "CreateTags" }})
	for _, path := range []string{"/moto-api/reset", "/"} {
		for _, action := range []string{"CreateTags", "DescribeAddresses"} {
			resp, err := http.PostForm(p.URL+path, url.Values{"Action": {action}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	var got []string
	for _, r := range p.Records() {
		got = append(got, r.Action+"="+r.Fault.String())
	}
	// Requests to moto's own API are never faulted; the action comes from
	// the form first.
	want := []string{"CreateTags=http503", "DescribeAddresses=none", "CreateTags=http503", "DescribeAddresses=none"}
	if !slices.Equal(got, want) {
		t.Errorf("faults %v, want %v", got, want)
	}
	resp, err := http.Post(p.URL+"/moto-api/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := p.Records()[4]; r.Action != "moto-api POST /moto-api/reset" || r.Fault != None {
		t.Errorf("moto API request recorded as %+v", r)
	}
}
