package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ec2State is an upstream with one piece of EC2 state, a version: every
// mutation adds one, and DescribeAddresses answers "v<version> <allocation>".
type ec2State struct {
	*httptest.Server
	version atomic.Int64
	hits    atomic.Int64
}

func newEC2State(t *testing.T) *ec2State {
	t.Helper()
	u := &ec2State{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(b))
		w.Header().Set("Content-Type", "text/xml")
		if strings.HasPrefix(v.Get("Action"), "Describe") {
			io.WriteString(w, "v"+strconv.FormatInt(u.version.Load(), 10)+" "+v.Get("AllocationId.1"))
			return
		}
		io.WriteString(w, "mutated to v"+strconv.FormatInt(u.version.Add(1), 10))
	}))
	t.Cleanup(u.Close)
	return u
}

// ec2Call sends a signed-looking EC2 query request through p and returns
// the answer's body.
func ec2Call(t *testing.T, p *Proxy, form string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL+"/", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %s", form, resp.Status, b)
	}
	return string(b)
}

func newStale(t *testing.T, o StaleOptions) *Stale {
	t.Helper()
	s, err := NewStale(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	describe1 = "Action=DescribeAddresses&Version=2016-11-15&AllocationId.1=eipalloc-1"
	// describe1 with its fields in another order: the same read.
	describe1Reordered = "AllocationId.1=eipalloc-1&Action=DescribeAddresses&Version=2016-11-15"
	describe2          = "Action=DescribeAddresses&Version=2016-11-15&AllocationId.1=eipalloc-2"
	associate          = "Action=AssociateAddress&Version=2016-11-15&AllocationId=eipalloc-1&NetworkInterfaceId=eni-1"
)

// staleSeed draws, with MaxLag 1s, a first lag of 0.78s and a second
// of 0.83s: long enough for the reads below to fall inside.
const staleSeed = 10

// TestStaleWithinLagFreshAfter: after a mutation, a read sent before it
// gets the state from before the mutation until the mutation's lag ends,
// then the fresh state; a second mutation's window serves the state just
// before it (the snapshot), not an older answer; a read never sent before
// the mutation is forwarded. Deterministic: the seed fixes the lags.
func TestStaleWithinLagFreshAfter(t *testing.T) {
	up := newEC2State(t)
	st := newStale(t, StaleOptions{MaxLag: time.Second, Seed: staleSeed})
	p := newProxy(t, up.URL, Options{Stale: st})

	if got := ec2Call(t, p, describe1); got != "v0 eipalloc-1" {
		t.Fatalf("first read: %q, want v0", got)
	}
	began := time.Now()
	ec2Call(t, p, associate) // upstream now at v1
	lags := st.Lags()
	if len(lags) != 1 || lags[0] < 500*time.Millisecond {
		t.Fatalf("lags %v: the seed no longer draws a first lag >= 0.5s; pick another staleSeed", lags)
	}
	if got := ec2Call(t, p, describe1Reordered); got != "v0 eipalloc-1" {
		t.Errorf("read within the lag (%s after the mutation, lag %s): %q, want the old v0", time.Since(began), lags[0], got)
	}
	if got := ec2Call(t, p, describe2); got != "v1 eipalloc-2" {
		t.Errorf("a read never sent before the mutation: %q, want it forwarded (v1)", got)
	}
	time.Sleep(time.Until(began.Add(lags[0])) + 20*time.Millisecond)
	if got := ec2Call(t, p, describe1); got != "v1 eipalloc-1" {
		t.Errorf("read after the lag: %q, want the fresh v1", got)
	}

	began = time.Now()
	ec2Call(t, p, associate) // v2
	lags = st.Lags()
	if len(lags) != 2 || lags[1] < 500*time.Millisecond {
		t.Fatalf("lags %v: the seed no longer draws a second lag >= 0.5s; pick another staleSeed", lags)
	}
	if got := ec2Call(t, p, describe1); got != "v1 eipalloc-1" {
		t.Errorf("first read after the second mutation: %q, want v1, the state just before it", got)
	}
	if got := ec2Call(t, p, describe2); got != "v1 eipalloc-2" {
		t.Errorf("second read's first read after the second mutation: %q, want v1", got)
	}
	time.Sleep(time.Until(began.Add(lags[1])) + 20*time.Millisecond)
	if got := ec2Call(t, p, describe1); got != "v2 eipalloc-1" {
		t.Errorf("read after the second lag: %q, want v2", got)
	}

	c := p.Counts()
	if c.Stale != 3 || st.Served() != 3 {
		t.Errorf("Counts().Stale %d, Served() %d, want 3 and 3", c.Stale, st.Served())
	}
	var stale []int
	for _, r := range p.Records() {
		if r.Stale {
			stale = append(stale, r.Seq)
		}
	}
	if want := []int{3, 7, 8}; !slices.Equal(stale, want) {
		t.Errorf("stale records %v, want %v", stale, want)
	}

	// The same seed draws the same lags.
	st2 := newStale(t, StaleOptions{MaxLag: time.Second, Seed: staleSeed})
	p2 := newProxy(t, up.URL, Options{Stale: st2})
	ec2Call(t, p2, associate)
	ec2Call(t, p2, associate)
	if got := st2.Lags(); !slices.Equal(got, lags) {
		t.Errorf("seed %d drew %v, then %v", staleSeed, lags, got)
	}
}

// TestStaleSharedAndFaults: a mutation through one proxy makes another
// proxy's reads stale (one Stale shared: EC2's consistency is the
// account's); a faulted mutation, not forwarded, changes nothing and opens
// no window; reads of other services and other actions are never stale.
func TestStaleSharedAndFaults(t *testing.T) {
	up := newEC2State(t)
	st := newStale(t, StaleOptions{MaxLag: time.Second, Seed: staleSeed})
	plan := func(action string, n int) Kind {
		if action == "AssociateAddress" && n == 1 {
			return Throttle
		}
		return None
	}
	a := newProxy(t, up.URL, Options{Stale: st, Plan: plan})
	b := newProxy(t, up.URL, Options{Stale: st})

	ec2Call(t, b, describe1)
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/", strings.NewReader(associate))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(st.Lags()) != 0 {
		t.Fatalf("throttled mutation: %s, lags %v; want 503 and no lag drawn", resp.Status, st.Lags())
	}
	if got := ec2Call(t, b, describe1); got != "v0 eipalloc-1" || b.Counts().Stale != 0 {
		t.Errorf("after a faulted mutation: %q (%d stale), want v0 forwarded", got, b.Counts().Stale)
	}
	ec2Call(t, a, associate) // v1, through a
	if got := ec2Call(t, b, describe1); got != "v0 eipalloc-1" || b.Counts().Stale != 1 {
		t.Errorf("b's read after a's mutation: %q (%d stale), want the old v0 served stale", got, b.Counts().Stale)
	}
	// Not an EC2 signature: not EC2, never stale.
	r2, _ := http.NewRequest(http.MethodPost, b.URL+"/", strings.NewReader(describe1))
	r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "v1 eipalloc-1" {
		t.Errorf("unsigned read: %q, want it forwarded (v1)", body)
	}
	if st.Served() != 1 {
		t.Errorf("Served() %d, want 1", st.Served())
	}
}

func TestNewStaleRejects(t *testing.T) {
	for _, o := range []StaleOptions{{MaxLag: -time.Second}, {Recent: -1}} {
		if _, err := NewStale(o); err == nil || !strings.Contains(err.Error(), "StaleOptions") {
			t.Errorf("NewStale(%+v): %v, want an error naming StaleOptions", o, err)
		}
	}
}
