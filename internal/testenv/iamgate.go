package testenv

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The IAM gate: a loopback reverse proxy in front of every moto server the
// harness starts, so that every AWS request of the tests, the proofs, the
// benchmark and the demo passes it. It tells the caller by the access key id
// of the request's SigV4 signature:
//
//   - [AdminAccessKey], the test's own seeding and inspection: through,
//     unevaluated;
//   - a [Caller]'s key: the request is mapped to what AWS authorizes (action,
//     each resource's ARN, the context keys) and each resource is evaluated
//     against that caller's shipped policy, instantiated with the test's
//     [PolicyValues], by the IAM evaluator (evaluator.go). All must be
//     allowed, as on AWS;
//   - anything else, or a request the gate cannot map: denied.
//
// A denial is answered in the service's own error format (EC2
// UnauthorizedOperation, Route 53 and S3 AccessDenied, all 403) and
// recorded: the test that owns the server fails (see [Moto.ExpectDenied]).
//
// S3 is answered as AWS does where moto differs: a missing object is 403
// AccessDenied for a caller not allowed s3:ListBucket on the bucket (with
// s3:prefix), and the writes of one object are serialized, so that a
// conditional write (If-Match, If-None-Match) is atomic.
//
// IAMGATE_REPORT names a file to which each distinct evaluated (policy,
// action, resource type, context keys, decision) is appended as a line of
// tab-separated fields; scripts/test.sh summarizes it.
type gate struct {
	target *url.URL // moto
	proxy  *httputil.ReverseProxy
	srv    *http.Server
	ln     net.Listener

	mu       sync.Mutex
	values   PolicyValues
	policies map[Caller]json.RawMessage
	denials  []Denial
	judged   map[Caller]int         // requests evaluated and allowed, by caller
	expected map[string]int         // the current test's expected denials, by action
	objects  map[string]*sync.Mutex // bucket/key -> writes of that object
	// privateIPs serializes the checks and calls of EC2's secondary
	// private IP moves (ec2strict.go); strictRefusals counts the moves it
	// refused as AWS would, and actions the EC2 requests of callers by
	// action (ActionCounts).
	privateIPs     sync.Mutex
	routes         sync.Mutex // serializes route changes (ec2strict.go)
	strictRefusals int
	actions        map[string]int
	// motoJudgesUnknownKeys: moto enforces IAM (StartMotoEnv with
	// INITIAL_NO_AUTH_ACTION_COUNT), and the keys of its IAM users pass.
	motoJudgesUnknownKeys bool
}

// Denial is one request the gate refused.
type Denial struct {
	Caller  Caller
	Action  string
	Message string
}

func startGate(motoURL string) (*gate, error) {
	target, err := url.Parse(motoURL)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("iam gate: %w", err)
	}
	g := &gate{target: target, ln: ln, policies: map[Caller]json.RawMessage{}, objects: map[string]*sync.Mutex{}}
	g.proxy = httputil.NewSingleHostReverseProxy(target)
	// A client that gives up mid-request (a timeout, a killed process) is
	// no news: the proxy's log would only clutter the test's output.
	g.proxy.ErrorLog = log.New(io.Discard, "", 0)
	g.srv = &http.Server{Handler: g}
	go g.srv.Serve(ln)
	return g, nil
}

func (g *gate) url() string { return "http://" + g.ln.Addr().String() }

func (g *gate) close() {
	motos.Delete(g.url())
	g.srv.Close()
}

// reset forgets the test's policy values.
func (g *gate) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.values = PolicyValues{}
	clear(g.policies)
}

// setValues makes the gate instantiate the policies with v.
func (g *gate) setValues(v PolicyValues) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.values = v
	clear(g.policies)
}

func (g *gate) policy(c Caller) (json.RawMessage, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.policies[c]; ok {
		return p, nil
	}
	p, err := Policy(c, g.values)
	if err != nil {
		return nil, err
	}
	g.policies[c] = p
	return p, nil
}

// denialsSince returns the denials recorded after the first n.
func (g *gate) denialsSince(n int) []Denial {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n > len(g.denials) {
		return nil
	}
	return slices.Clone(g.denials[n:])
}

func (g *gate) denialCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.denials)
}

// request is what the gate understood of one request.
type request struct {
	service string // ec2, route53, s3, autoscaling, ...
	summary string // METHOD path and the action's name, for messages
	checks  []Authorization
	// S3 object requests
	bucket, key string
	s3read      bool // GetObject or HeadObject
	s3write     bool
}

var credentialRE = regexp.MustCompile(`Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/aws4_request`)

// identify returns the access key id and the service of a SigV4 request.
func identify(r *http.Request) (key, service string) {
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1], m[2]
	}
	if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
		parts := strings.Split(c, "/")
		if len(parts) == 5 {
			return parts[0], parts[3]
		}
	}
	return "", ""
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/moto-api/") {
		g.proxy.ServeHTTP(w, r) // the emulator's own control plane, not AWS
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	key, service := identify(r)
	if key == AdminAccessKey {
		g.forward(w, r, body, service, "", nil)
		return
	}
	caller, known := callerOfKey(key)
	if !known && key != "" && g.motoJudgesUnknownKeys {
		g.forward(w, r, body, service, "", nil)
		return
	}
	req, mapErr := g.mapRequest(r, body, service)
	if !known {
		g.deny(w, r, service, caller, Denial{Caller: Caller(key), Action: "?",
			Message: fmt.Sprintf("iam gate: %s: access key id %q is no caller of the test world (want %s's key %q, or a caller's: Moto.EnvAs/ConfigAs)",
				req.summaryOr(r), key, "the admin", AdminAccessKey)})
		return
	}
	if mapErr != nil {
		g.deny(w, r, service, caller, Denial{Caller: caller, Action: "?",
			Message: fmt.Sprintf("iam gate: %s caller: %s: the gate cannot map this request to (action, resource, context keys): %v", caller, req.summaryOr(r), mapErr)})
		return
	}
	policy, err := g.policy(caller)
	if err != nil {
		g.deny(w, r, service, caller, Denial{Caller: caller, Action: "?", Message: fmt.Sprintf("iam gate: %s caller's policy: %v", caller, err)})
		return
	}
	ev, err := sharedEvaluator()
	if err != nil {
		g.deny(w, r, service, caller, Denial{Caller: caller, Action: "?", Message: fmt.Sprintf("iam gate: %v", err)})
		return
	}
	for _, c := range req.checks {
		d := ev.evaluate(policy, c.Action, c.Resource, c.Context)
		report(caller, c, d, g.isExpected(c.Action))
		if !d.Allowed() && d.Error == "" && service == "s3" && !g.bucketExists(req.bucket) {
			// S3 answers NoSuchBucket before it evaluates the policy.
			break
		}
		if !d.Allowed() {
			why := fmt.Sprintf("%s does not allow %s (%s)", caller.PolicyFile(), c.Action, d.Decision)
			switch {
			case d.Error != "":
				why = "the evaluator cannot evaluate it: " + d.Error
			case len(d.Ignored) > 0:
				why = fmt.Sprintf("the evaluator says %s takes no context key %v", c.Action, d.Ignored)
			}
			g.deny(w, r, service, caller, Denial{Caller: caller, Action: c.Action,
				Message: fmt.Sprintf("iam gate: %s caller denied: %s: %s on %s with context %s: %s",
					caller, req.summary, c.Action, c.Resource, contextString(c.Context), why)})
			return
		}
	}
	g.mu.Lock()
	if g.judged == nil {
		g.judged = map[Caller]int{}
	}
	g.judged[caller]++
	if service == "ec2" {
		if g.actions == nil {
			g.actions = map[string]int{}
		}
		for _, c := range req.checks[:min(1, len(req.checks))] {
			g.actions[c.Action]++
		}
	}
	g.mu.Unlock()
	g.forward(w, r, body, service, caller, req)
}

func (req *request) summaryOr(r *http.Request) string {
	if req != nil && req.summary != "" {
		return req.summary
	}
	return r.Method + " " + r.URL.RequestURI()
}

func contextString(ctx map[string]any) string {
	if len(ctx) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(ctx)
	return string(b)
}

// forward sends the request to moto, with S3's semantics where moto's
// differ.
func (g *gate) forward(w http.ResponseWriter, r *http.Request, body []byte, service string, caller Caller, req *request) {
	if service == "ec2" && g.ec2Strict(w, r, body) {
		return
	}
	if service == "s3" && (r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost) {
		if bucket, key := s3Object(r.URL.Path); key != "" {
			m := g.objectLock(bucket + "/" + key)
			m.Lock()
			defer m.Unlock()
		}
	}
	if req != nil && req.s3read && caller != "" {
		rec := &captured{header: http.Header{}}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		g.proxy.ServeHTTP(rec, r2)
		if rec.status == http.StatusNotFound && g.missingKey(r, rec) {
			list := Authorization{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + req.bucket,
				Context: map[string]any{"s3:prefix": req.key}}
			policy, err := g.policy(caller)
			if err == nil {
				ev, e2 := sharedEvaluator()
				if e2 == nil {
					d := ev.evaluate(policy, list.Action, list.Resource, list.Context)
					report(caller, list, d, false)
					if !d.Allowed() {
						// AWS: "If you don't have the s3:ListBucket
						// permission, Amazon S3 returns an HTTP status
						// code 403 (Access Denied) error."
						s3Error(w, r, "AccessDenied", "Access Denied")
						return
					}
				}
			}
		}
		rec.writeTo(w)
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// bucketExists asks moto, directly, whether bucket exists.
func (g *gate) bucketExists(bucket string) bool {
	if bucket == "" {
		return true
	}
	resp, err := http.Head(g.target.String() + "/" + bucket)
	if err != nil {
		return true
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

// missingKey reports whether a 404 of an object read means "no such key"
// (not "no such bucket").
func (g *gate) missingKey(r *http.Request, rec *captured) bool {
	if r.Method != http.MethodHead {
		return bytes.Contains(rec.body.Bytes(), []byte("NoSuchKey"))
	}
	bucket, _ := s3Object(r.URL.Path)
	return g.bucketExists(bucket)
}

func (g *gate) objectLock(name string) *sync.Mutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.objects[name]
	if !ok {
		m = &sync.Mutex{}
		g.objects[name] = m
	}
	return m
}

// captured is a response held back by the gate.
type captured struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (c *captured) Header() http.Header { return c.header }
func (c *captured) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *captured) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *captured) writeTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), c.header)
	if c.status == 0 {
		c.status = http.StatusOK
	}
	w.WriteHeader(c.status)
	w.Write(c.body.Bytes())
}

// deny records d and answers as the service would.
func (g *gate) deny(w http.ResponseWriter, r *http.Request, service string, caller Caller, d Denial) {
	g.mu.Lock()
	g.denials = append(g.denials, d)
	g.mu.Unlock()
	msg := fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/eipclaim-%s/test is not authorized to perform: %s (%s)", motoAccount, caller, d.Action, d.Message)
	switch service {
	case "ec2", "autoscaling":
		code := "UnauthorizedOperation"
		if service == "autoscaling" {
			code = "AccessDenied"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>iamgate</RequestID></Response>`, code, xmlText(msg))
	case "route53":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>%s</Message></Error><RequestId>iamgate</RequestId></ErrorResponse>`, xmlText(msg))
	default:
		s3Error(w, r, "AccessDenied", "Access Denied")
	}
}

func s3Error(w http.ResponseWriter, r *http.Request, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "iamgate")
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>iamgate</RequestId></Error>`, code, xmlText(msg))
	}
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// s3Object splits a path-style S3 path into bucket and key.
func s3Object(path string) (bucket, key string) {
	p := strings.TrimPrefix(path, "/")
	bucket, key, _ = strings.Cut(p, "/")
	if k, err := url.PathUnescape(key); err == nil {
		key = k
	}
	return bucket, key
}

// isExpected reports whether the current test declared denials of action
// (Moto.ExpectDenied).
func (g *gate) isExpected(action string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.expected[action]
	return ok
}

// report appends a distinct evaluation to $IAMGATE_REPORT; expected marks
// a denial the test declared (a test of the gate or of a denial's
// handling), which no product request of a passing test meets otherwise.
func report(caller Caller, c Authorization, d Decision, expected bool) {
	file := os.Getenv("IAMGATE_REPORT")
	if file == "" {
		return
	}
	keys := slices.Sorted(maps.Keys(c.Context))
	for i, k := range keys {
		if strings.HasPrefix(k, "aws:RequestTag/") {
			keys[i] = "aws:RequestTag/*"
		}
		if strings.HasPrefix(k, "aws:ResourceTag/") {
			keys[i] = "aws:ResourceTag/*"
		}
	}
	keys = slices.Compact(keys)
	decision := d.Decision
	if d.Error != "" {
		decision = "Error"
	}
	if expected && decision != "Allowed" {
		decision += " (declared by the test)"
	}
	rt := d.ResourceType
	if rt == "" {
		rt = "*"
	}
	line := strings.Join([]string{caller.PolicyFile(), c.Action, rt, strings.Join(keys, ","), decision}, "\t")
	reported.Lock()
	defer reported.Unlock()
	if reported.seen == nil {
		reported.seen = map[string]bool{}
	}
	if reported.seen[line] {
		return
	}
	reported.seen[line] = true
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write([]byte(line + "\n")) // one write: O_APPEND keeps the lines of parallel test binaries whole
}

var reported struct {
	sync.Mutex
	seen map[string]bool
}

// checkDenials fails t for every denial after the first n, except the
// actions t declared with expect.
func checkDenials(t testing.TB, g *gate, n int, expected map[string]int) {
	t.Helper()
	for _, d := range g.denialsSince(n) {
		if _, ok := expected[d.Action]; ok {
			expected[d.Action]++
			continue
		}
		t.Errorf("%s", d.Message)
	}
	for _, a := range slices.Sorted(maps.Keys(expected)) {
		if expected[a] == 0 {
			t.Errorf("iam gate: the test expected a denial of %s, and there was none", a)
		}
	}
}
