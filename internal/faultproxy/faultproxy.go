// Package faultproxy is test infrastructure: an HTTP reverse proxy, on
// loopback, that stands between eipclaim (or any AWS client) and an emulator
// (moto, amazon-ec2-metadata-mock), counts every request by API action,
// measures the upstream's latency, and injects faults: throttling and 5xx
// answers in the service's own error format, connection resets, latency,
// and an outage window at start (IMDS not up yet at boot). With
// Options.Limits it also enforces API rate limits as AWS meters them: token
// buckets per class of action, shared by every client of the proxy as
// AWS's are by every caller in an account and region (see [AWSLimits]).
//
// Point a client at it as at the emulator: AWS_ENDPOINT_URL=p.URL for moto,
// AWS_EC2_METADATA_SERVICE_ENDPOINT=p.URL for IMDS.
//
// Which requests are faulted is drawn from a math/rand/v2 PCG seeded with
// Options.Seed, so a single-client run is reproducible; with concurrent
// clients the draws are shared and their order is the arrival order.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is a kind of fault.
type Kind int

// The faults. None is a request passed through untouched.
const (
	None Kind = iota
	// Throttle answers with the service's throttling error: EC2's
	// RequestLimitExceeded (HTTP 503, EC2 query-protocol XML), Route 53's
	// Throttling (HTTP 400, REST-XML ErrorResponse), IAM/STS Throttling
	// (HTTP 400), S3 SlowDown (HTTP 503), IMDS HTTP 429.
	Throttle
	// HTTP500 answers 500 with the service's internal-error body.
	HTTP500
	// HTTP503 answers 503 with the service's unavailable body.
	HTTP503
	// Reset closes the client's connection with an RST (SO_LINGER 0)
	// before the request is forwarded: the upstream never sees it.
	Reset
	// Latency waits Options.Latency, then forwards the request.
	Latency
	// LostResponse forwards the request, then resets the connection
	// instead of answering: the upstream acted, the client does not know.
	// Not in the default mix.
	LostResponse
	// Down is a reset during an outage window (Options.DownFor, GoDown).
	Down
)

var kindNames = [...]string{"none", "throttle", "http500", "http503", "reset", "latency", "lost-response", "down"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// IsError reports whether the client sees the fault as a failed request
// (every kind but None and Latency).
func (k Kind) IsError() bool { return k != None && k != Latency }

// DefaultKinds is the mix used when Options.Kinds is empty.
var DefaultKinds = []Kind{Throttle, HTTP500, HTTP503, Reset, Latency}

// Options say which faults to inject.
type Options struct {
	// Rate is the fraction of requests faulted, in [0, 1].
	Rate float64
	// Kinds are the faults drawn from, uniformly; DefaultKinds when empty.
	Kinds []Kind
	// Seed seeds the draws.
	Seed uint64
	// Latency is the delay of a Latency fault; 200ms when zero.
	Latency time.Duration
	// DownFor resets every request in this long after New returns.
	DownFor time.Duration
	// Faultable says which actions (see [Record.Action]) may be faulted;
	// all when nil. Requests to moto's own API (/moto-api/) never are.
	Faultable func(action string) bool
	// Plan, when set, decides instead of Rate and Kinds: the fault for the
	// n-th request (from 1) of an action.
	Plan func(action string, n int) Kind
	// Limits, when set, enforces token buckets: a request whose bucket is
	// empty is answered with the service's throttling error (a Throttle
	// fault, [Record.Limited]) and not forwarded. The buckets are checked
	// before the faults above are drawn, and outside an outage window.
	Limits *Limits
	// Stale, when set, is the stale-read mode: EC2's eventual
	// consistency. After a mutating EC2 request, DescribeAddresses,
	// DescribeInstances, DescribeInstanceStatus and
	// DescribeNetworkInterfaces answer the state as it was before it, for
	// a lag of up to StaleOptions.MaxLag (see [Stale], [NewStale]). One
	// Stale may be shared by several proxies. Faults are drawn first: a
	// faulted read or mutation is not forwarded, and changes nothing.
	Stale *Stale
}

// Record is one request seen by the proxy.
type Record struct {
	Seq    int    // 1, 2, ... in arrival order
	Action string // see [Action]
	// Service is the SigV4 signing name (ec2, route53, s3, iam, sts),
	// "imds" for instance metadata, "" if unknown.
	Service string
	Fault   Kind
	// Limited says the Throttle fault was the rate limiter's (Options.Limits):
	// the request's bucket was empty.
	Limited bool
	// Stale says the answer was the stale-read mode's older one
	// (Options.Stale), not forwarded.
	Stale bool
	// Status is the HTTP status the client got; 0 for a reset.
	Status int
	// Attempt is the AWS SDK's attempt number (Amz-Sdk-Request), 0 when
	// the client did not say; Invocation its Amz-Sdk-Invocation-Id.
	Attempt    int
	Invocation string
	// Start is when the request arrived, End when its answer was complete
	// (or the connection reset).
	Start, End time.Time
	// Upstream is the time spent in the upstream round trip, from sending
	// the request to the end of the response body; 0 when not forwarded.
	Upstream time.Duration
}

// Counts is a snapshot of what the proxy saw.
type Counts struct {
	Total int
	// Limited counts the requests throttled by the rate limiter; they are
	// counted in Faults[Throttle] too.
	Limited int
	// Stale counts the stale answers served (Options.Stale).
	Stale int
	// Faults counts the faults injected, by kind.
	Faults map[Kind]int
	// Surfaced counts, by kind, the SDK operations whose last attempt got
	// an error fault: the failures the SDK's own retryer passed up to its
	// caller. Attempts are grouped into operations by Amz-Sdk-Invocation-Id,
	// or, without it, per action by the Amz-Sdk-Request attempt number
	// (attempt=1 starts a new operation, unless it is the transport's resend
	// of a reset attempt=1); a request without either is an operation of
	// its own. Exact when one client at a time uses the proxy.
	Surfaced map[Kind]int
	Actions  map[string]*ActionCounts
}

// ActionCounts is what the proxy saw of one action.
type ActionCounts struct {
	Requests int
	Limited  int // throttled by the rate limiter
	Faults   map[Kind]int
	Surfaced map[Kind]int
	// Upstream is the sum of the upstream latencies of its requests.
	Upstream time.Duration
}

// Proxy is a running fault-injecting reverse proxy.
type Proxy struct {
	// URL is where it listens: http://127.0.0.1:PORT.
	URL string

	target *url.URL
	opts   Options
	srv    *http.Server
	rp     *httputil.ReverseProxy
	tr     *http.Transport

	mu        sync.Mutex
	rnd       *rand.Rand
	downUntil time.Time
	records   []Record
	pending   int // requests reserved in records and not answered yet
	perAction map[string]int
	limiter   *limiter
}

// New starts a proxy on 127.0.0.1 forwarding to target (a base URL such as
// http://127.0.0.1:5000).
func New(target string, opts Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q: want a base URL such as http://127.0.0.1:5000", target)
	}
	if opts.Rate < 0 || opts.Rate > 1 {
		return nil, fmt.Errorf("faultproxy: Rate %v: want a fraction in [0, 1]", opts.Rate)
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = DefaultKinds
	}
	for _, k := range opts.Kinds {
		if k <= None || k >= Down {
			return nil, fmt.Errorf("faultproxy: Kinds: %v cannot be drawn", k)
		}
	}
	if opts.Latency == 0 {
		opts.Latency = 200 * time.Millisecond
	}
	var lim *limiter
	if opts.Limits != nil {
		if lim, err = newLimiter(*opts.Limits); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		limiter:   lim,
		URL:       "http://" + l.Addr().String(),
		target:    u,
		opts:      opts,
		rnd:       rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)),
		perAction: map[string]int{},
		tr: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	if opts.DownFor > 0 {
		p.downUntil = time.Now().Add(opts.DownFor)
	}
	p.rp = &httputil.ReverseProxy{
		// The Host header is kept as the client sent it: SigV4 signs it,
		// and moto checks signatures when IAM enforcement is on.
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = u.Scheme
			r.Out.URL.Host = u.Host
			r.Out.URL.Path = singleJoin(u.Path, r.In.URL.Path)
			r.Out.URL.RawPath = ""
		},
		Transport: timedTransport{p.tr},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errLost) {
				return // the handler resets the connection
			}
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(l)
	return p, nil
}

// Close stops the proxy; requests in flight are cut.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.tr.CloseIdleConnections()
	return err
}

// GoDown resets every request for the next d, as an upstream that is not
// up yet would.
func (p *Proxy) GoDown(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downUntil = time.Now().Add(d)
}

// Records returns a copy of every request seen so far, in arrival order.
// It first waits, a second at most, for the requests in flight to be
// answered, so that a client that has seen its answers finds them counted.
func (p *Proxy) Records() []Record {
	deadline := time.Now().Add(time.Second)
	for {
		p.mu.Lock()
		if p.pending == 0 || time.Now().After(deadline) {
			defer p.mu.Unlock()
			return append([]Record(nil), p.records...)
		}
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// Counts returns a snapshot of the counters.
func (p *Proxy) Counts() Counts { return Count(p.Records()) }

// Count sums records, as [Proxy.Counts] does; pass a slice of
// [Proxy.Records] to count part of a run.
func Count(records []Record) Counts {
	c := Counts{Faults: map[Kind]int{}, Surfaced: map[Kind]int{}, Actions: map[string]*ActionCounts{}}
	type op struct {
		action string
		fault  Kind
	}
	ops := map[string]*op{}
	var order []string
	seqOp := map[string]int{}   // action -> current operation number, without an invocation id
	last := map[string]Record{} // action -> its previous record
	for _, r := range records {
		c.Total++
		a := c.Actions[r.Action]
		if a == nil {
			a = &ActionCounts{Faults: map[Kind]int{}, Surfaced: map[Kind]int{}}
			c.Actions[r.Action] = a
		}
		a.Requests++
		a.Upstream += r.Upstream
		if r.Limited {
			c.Limited++
			a.Limited++
		}
		if r.Stale {
			c.Stale++
		}
		if r.Fault != None {
			c.Faults[r.Fault]++
			a.Faults[r.Fault]++
		}
		var key string
		switch {
		case r.Invocation != "":
			key = "id:" + r.Invocation
		case r.Attempt > 0:
			// attempt=1 starts an operation, unless it repeats an attempt=1
			// that was reset: Go's transport resends an idempotent request
			// (GET, PUT) by itself when a reused connection is reset
			// before any answer, with the same headers.
			prev, seen := last[r.Action]
			resent := seen && prev.Attempt == r.Attempt && (prev.Fault == Reset || prev.Fault == Down || prev.Fault == LostResponse)
			if (r.Attempt == 1 && !resent) || seqOp[r.Action] == 0 {
				seqOp[r.Action]++
			}
			last[r.Action] = r
			key = fmt.Sprintf("seq:%s#%d", r.Action, seqOp[r.Action])
		default:
			key = fmt.Sprintf("req:%d", r.Seq)
		}
		o := ops[key]
		if o == nil {
			o = &op{action: r.Action}
			ops[key] = o
			order = append(order, key)
		}
		o.fault = r.Fault // the last attempt's
	}
	for _, key := range order {
		o := ops[key]
		if o.fault.IsError() {
			c.Surfaced[o.fault]++
			c.Actions[o.action].Surfaced[o.fault]++
		}
	}
	return c
}

// Requests is the number of requests of the actions named, or of all when
// none is named.
func (c Counts) Requests(actions ...string) int {
	if len(actions) == 0 {
		return c.Total
	}
	n := 0
	for _, a := range actions {
		if ac := c.Actions[a]; ac != nil {
			n += ac.Requests
		}
	}
	return n
}

// ErrorFaults is the number of faults the client saw as failed requests.
func (c Counts) ErrorFaults() int {
	n := 0
	for k, v := range c.Faults {
		if k.IsError() {
			n += v
		}
	}
	return n
}

// SurfacedErrors is the number of SDK operations that failed because of a
// fault (see [Counts.Surfaced]), over the actions named, or all.
func (c Counts) SurfacedErrors(actions ...string) int {
	n := 0
	if len(actions) == 0 {
		for _, v := range c.Surfaced {
			n += v
		}
		return n
	}
	for _, a := range actions {
		if ac := c.Actions[a]; ac != nil {
			for _, v := range ac.Surfaced {
				n += v
			}
		}
	}
	return n
}

type ctxKey struct{}

// timing is where the transport notes the upstream latency of a request.
type timing struct {
	mu       sync.Mutex
	start    time.Time
	upstream time.Duration
	lost     bool // LostResponse: drop the answer
}

func (t *timing) set(d time.Duration) {
	t.mu.Lock()
	t.upstream = d
	t.mu.Unlock()
}

func (t *timing) get() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.upstream
}

var errLost = errors.New("faultproxy: response dropped (LostResponse)")

// timedTransport measures the upstream round trip: from sending the request
// to the end (or close) of the response body.
type timedTransport struct{ rt http.RoundTripper }

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tm, _ := r.Context().Value(ctxKey{}).(*timing)
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	if tm == nil {
		return resp, err
	}
	if err != nil {
		tm.set(time.Since(start))
		return nil, err
	}
	if tm.lost {
		// The upstream has acted; read its answer to the end, then drop it.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tm.set(time.Since(start))
		return nil, errLost
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, start: start, tm: tm}
	return resp, nil
}

type timedBody struct {
	io.ReadCloser
	start time.Time
	tm    *timing
	once  sync.Once
}

func (b *timedBody) done() { b.once.Do(func() { b.tm.set(time.Since(b.start)) }) }

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done()
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.done()
	return b.ReadCloser.Close()
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Read the body so that the action can be read from it, then restore it.
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, "faultproxy: read the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	service := Service(r)
	action := Action(r, body)
	rec := Record{Action: action, Service: service, Start: start, Invocation: r.Header.Get("Amz-Sdk-Invocation-Id")}
	rec.Attempt = sdkAttempt(r.Header.Get("Amz-Sdk-Request"))

	// The record is reserved now, in arrival order, and completed when the
	// answer is: the client may see the answer before this handler returns.
	p.mu.Lock()
	p.perAction[action]++
	rec.Fault, rec.Limited = p.decide(service, action, p.perAction[action], start)
	rec.Seq = len(p.records) + 1
	p.records = append(p.records, rec)
	p.pending++
	p.mu.Unlock()

	sw := &statusWriter{ResponseWriter: w}
	tm := &timing{start: start}
	switch rec.Fault {
	case Reset, Down:
		reset(w)
	case Throttle, HTTP500, HTTP503:
		writeError(sw, service, rec.Fault)
	case Latency, LostResponse, None:
		if rec.Fault == Latency {
			t := time.NewTimer(p.opts.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		if st := p.opts.Stale; st != nil && service == "ec2" {
			if st.isRead(action) && rec.Fault != LostResponse {
				if a, ok := st.old(readKey(r, body), time.Now(), p.replayer(r, body)); ok {
					rec.Stale = true
					a.write(sw)
					break
				}
			} else if isMutation(action) {
				defer st.beforeMutation(r.Context())()
			}
		}
		tm.lost = rec.Fault == LostResponse
		p.rp.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tm)))
		if tm.lost {
			reset(w)
		}
	}
	rec.Status = sw.status
	if rec.Fault == LostResponse {
		rec.Status = 0
	}
	rec.Upstream = tm.get()
	rec.End = time.Now()

	p.mu.Lock()
	p.records[rec.Seq-1] = rec
	p.pending--
	p.mu.Unlock()
}

// decide draws the fault for the n-th request of action, and says whether
// the rate limiter throttled it; p.mu is held.
func (p *Proxy) decide(service, action string, n int, now time.Time) (Kind, bool) {
	if strings.HasPrefix(action, "moto-api ") {
		return None, false
	}
	if now.Before(p.downUntil) {
		return Down, false
	}
	if p.limiter != nil && !p.limiter.allow(service, action) {
		return Throttle, true
	}
	if p.opts.Faultable != nil && !p.opts.Faultable(action) {
		return None, false
	}
	if p.opts.Plan != nil {
		return p.opts.Plan(action, n), false
	}
	if p.opts.Rate == 0 || p.rnd.Float64() >= p.opts.Rate {
		return None, false
	}
	return p.opts.Kinds[p.rnd.IntN(len(p.opts.Kinds))], false
}

// reset hijacks the connection and closes it with SO_LINGER 0, so that the
// client sees "connection reset by peer".
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // cannot hijack: abort the response instead
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func sdkAttempt(h string) int {
	for part := range strings.SplitSeq(h, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func singleJoin(a, b string) string {
	switch {
	case a == "" || a == "/":
		return b
	case strings.HasSuffix(a, "/") && strings.HasPrefix(b, "/"):
		return a + b[1:]
	case !strings.HasSuffix(a, "/") && !strings.HasPrefix(b, "/"):
		return a + "/" + b
	}
	return a + b
}

var credentialScope = regexp.MustCompile(`Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request`)

// Service names the service a request is for: the SigV4 signing name
// (ec2, route53, s3, iam, sts, ...), "imds" for /latest/ paths without a
// signature, "route53" for Route 53 paths, "" if unknown.
func Service(r *http.Request) string {
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/latest/"):
		return "imds"
	case strings.HasPrefix(r.URL.Path, "/2013-04-01/"):
		return "route53"
	case strings.HasPrefix(r.URL.Path, "/moto-api/"):
		return "moto"
	}
	return ""
}

// route53IDAfter are the Route 53 path segments followed by an id.
var route53IDAfter = map[string]bool{
	"hostedzone": true, "change": true, "healthcheck": true, "delegationset": true,
	"trafficpolicy": true, "trafficpolicyinstance": true, "queryloggingconfig": true,
	"keysigningkey": true, "cidrcollection": true,
}

// Action names what a request does, for counting:
//   - the Action form value of query-protocol services (EC2, IAM, STS):
//     "DescribeAddresses";
//   - Route 53: the method and the path with ids replaced:
//     "POST /2013-04-01/hostedzone/{id}/rrset";
//   - IMDS: the method and the path: "GET /latest/meta-data/instance-id";
//   - moto's own API: "moto-api POST /moto-api/reset";
//   - anything else (S3): the method and the path: "GET /bucket/key".
//
// body is the request's body, already read.
func Action(r *http.Request, body []byte) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return v.Get("Action")
		}
	}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/moto-api/"):
		return "moto-api " + r.Method + " " + path
	case strings.HasPrefix(path, "/2013-04-01/"):
		// The aws CLI adds a final slash that the SDKs do not.
		segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
		for i := 1; i < len(segs); i++ {
			if route53IDAfter[segs[i-1]] && segs[i] != "" {
				segs[i] = "{id}"
			}
			if segs[i-1] == "tags" && i+1 < len(segs) { // tags/{type}/{id}
				segs[i+1] = "{id}"
				i++
			}
		}
		return r.Method + " " + strings.Join(segs, "/")
	}
	return r.Method + " " + path
}

// writeError answers with the service's error for the fault.
func writeError(w http.ResponseWriter, service string, k Kind) {
	id := requestID()
	type answer struct {
		status      int
		code, msg   string
		contentType string
	}
	var a answer
	switch service {
	case "imds":
		a = map[Kind]answer{
			Throttle: {http.StatusTooManyRequests, "", "Too Many Requests", "text/plain"},
			HTTP500:  {http.StatusInternalServerError, "", "Internal Server Error", "text/plain"},
			HTTP503:  {http.StatusServiceUnavailable, "", "Service Unavailable", "text/plain"},
		}[k]
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		io.WriteString(w, a.msg+"\n")
		return
	case "route53", "iam", "sts":
		a = map[Kind]answer{
			Throttle: {http.StatusBadRequest, "Throttling", "Rate exceeded", "text/xml"},
			HTTP500:  {http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.", "text/xml"},
			HTTP503:  {http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.", "text/xml"},
		}[k]
		errType := "Sender"
		if a.status >= 500 {
			errType = "Receiver"
		}
		ns := ""
		if service == "route53" {
			ns = ` xmlns="https://route53.amazonaws.com/doc/2013-04-01/"`
		}
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse%s><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			ns, errType, a.code, a.msg, id)
		return
	case "s3":
		a = map[Kind]answer{
			Throttle: {http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.", "application/xml"},
			HTTP500:  {http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.", "application/xml"},
			HTTP503:  {http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unable to handle request.", "application/xml"},
		}[k]
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`, a.code, a.msg, id)
		return
	}
	// EC2 and unknown query-protocol services: EC2's format. EC2 answers
	// its RequestLimitExceeded with 503 Service Unavailable.
	a = map[Kind]answer{
		Throttle: {http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.", "text/xml"},
		HTTP500:  {http.StatusInternalServerError, "InternalError", "An internal error has occurred.", "text/xml"},
		HTTP503:  {http.StatusServiceUnavailable, "Unavailable", "The server is overloaded and can't handle the request.", "text/xml"},
	}[k]
	w.Header().Set("Content-Type", a.contentType)
	w.WriteHeader(a.status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`, a.code, a.msg, id)
}

func requestID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
