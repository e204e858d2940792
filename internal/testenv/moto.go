package testenv

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Moto is a running moto server, which emulates EC2, S3 and Route 53 (and
// the rest of AWS) on one endpoint.
type Moto struct {
	// Endpoint is the base URL of the IAM gate in front of the server
	// (iamgate.go), http://127.0.0.1:PORT: every AWS request goes there.
	Endpoint string
	direct   string // moto itself
	gate     *gate
}

// newMoto puts an IAM gate in front of the moto server at direct.
func newMoto(direct string) (*Moto, error) {
	g, err := startGate(direct)
	if err != nil {
		return nil, err
	}
	m := &Moto{Endpoint: g.url(), direct: direct, gate: g}
	motos.Store(m.Endpoint, m)
	return m, nil
}

// motos maps the endpoint of each open Moto of this process to it, so that
// a [World] seeded through [Moto.Config] knows which server its instances'
// IMDS reads ([Instance.IMDSOptions]).
var motos sync.Map

// motoAt returns the open Moto whose endpoint is endpoint, nil if none.
func motoAt(endpoint string) *Moto {
	if m, ok := motos.Load(endpoint); ok {
		return m.(*Moto)
	}
	return nil
}

// MotoRegion is the region that [Moto.Env] and [Moto.AWSConfig] use.
const MotoRegion = "us-east-1"

var motoTool = tool{
	name:     "moto_server",
	env:      "MOTO_SERVER",
	fallback: []string{"~/.pyenv/versions/3.11.7/bin"},
	install:  `python3 -m pip install 'moto[server]'  (or set MOTO_SERVER to its moto_server)`,
}

var shared struct {
	sync.Mutex
	moto *Moto
	proc *process
}

// SharedMoto returns the test process's moto server, starting it on the
// first call, with its state cleared (POST /moto-api/reset) on every call.
// [Main] stops it. Tests that use it must not run in parallel with each
// other, since each call wipes what the others created; use [StartMoto] for
// a server of one's own.
func SharedMoto(t testing.TB) *Moto {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.proc != nil && shared.proc.exited() {
		t.Logf("testenv: the shared moto server exited (%v); starting another. Its last output:\n%s",
			shared.proc.err, shared.proc.tail())
		shared.proc.stop()
		shared.proc, shared.moto = nil, nil
	}
	if shared.proc == nil {
		p, m, err := startMoto(t)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		shared.proc, shared.moto = p, m
	}
	if err := shared.moto.reset(); err != nil {
		t.Fatalf("testenv: %v\n--- last output of moto_server ---\n%s", err, shared.proc.tail())
	}
	shared.moto.watchDenials(t)
	return shared.moto
}

// StartMoto starts a moto server for t alone, stopped when t ends.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	p, m, err := startMoto(t)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanupProcess(t, p)
	t.Cleanup(m.gate.close)
	m.watchDenials(t)
	return m
}

// stopShared stops the shared moto server, if any.
func stopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.proc != nil {
		shared.proc.stop()
		shared.moto.gate.close()
		shared.proc, shared.moto = nil, nil
	}
}

func startMoto(t testing.TB) (*process, *Moto, error) {
	t.Helper()
	began := time.Now()
	dir, err := os.MkdirTemp("", "testenv-moto-")
	if err != nil {
		return nil, nil, err
	}
	p, port, err := motoLaunch(dir).run()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	go func() { <-p.done; os.RemoveAll(dir) }()
	m, err := newMoto(fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		p.stop()
		return nil, nil, err
	}
	t.Logf("testenv: moto_server ready on 127.0.0.1:%d in %s, behind the IAM gate on %s", port, since(began), m.Endpoint)
	return p, m, nil
}

// motoLaunch starts moto_server with dir as its working directory, and
// extraEnv (KEY=VALUE) added to its environment.
func motoLaunch(dir string, extraEnv ...string) launch {
	return launch{
		name:    "moto_server",
		tool:    motoTool,
		timeout: 30 * time.Second,
		prepare: func(port int) ([]string, []string, string, error) {
			args := []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port)}
			// Credentials and endpoints of the host mean nothing to moto;
			// drop them so that it behaves the same everywhere.
			return args, append(baseEnv("AWS_", "MOTO_"), extraEnv...), dir, nil
		},
		ready: func(port int) error {
			return httpOK(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/moto-api/", port), nil, probeTimeout)
		},
	}
}

// reset clears every resource moto holds.
func (m *Moto) reset() error {
	if err := httpOK(http.MethodPost, m.direct+"/moto-api/reset", nil, 30*time.Second); err != nil {
		return fmt.Errorf("reset moto at %s: %w", m.direct, err)
	}
	m.gate.reset()
	return nil
}

// Env returns the environment of eipclaim on an instance
// ([CallerInstance]): it points the AWS SDK's default chain at this server
// (through the IAM gate) with that caller's keys. Append it to os.Environ()
// (later entries win) for a child process, or t.Setenv each entry. It also
// hides the host's shared config files and profile, so nothing of the
// developer's AWS account can leak into a test. IMDS is separate: see
// [IMDS.Env].
func (m *Moto) Env() []string { return m.EnvAs(CallerInstance) }

// EnvAs is [Moto.Env] for caller c.
func (m *Moto) EnvAs(c Caller) []string {
	key, ok := accessKeys[c]
	if !ok {
		panic(fmt.Sprintf("testenv: no caller %q", c))
	}
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_REGION=" + MotoRegion,
		"AWS_DEFAULT_REGION=" + MotoRegion,
		"AWS_ACCESS_KEY_ID=" + key,
		"AWS_SECRET_ACCESS_KEY=" + key,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
}

// AWSConfig returns an SDK configuration for seeding and inspecting this
// server's state from a test: the admin's static credentials, region
// us-east-1, and BaseEndpoint set to the server. It reads nothing from the
// environment. S3 needs no UsePathStyle: for an IP-address endpoint the SDK
// sends path-style requests by itself.
func (m *Moto) AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	return m.Config()
}

// SetPolicyValues makes the IAM gate judge the callers with the shipped
// policies instantiated with v (the test's bucket, keys and zones) until
// the next [SharedMoto].
func (m *Moto) SetPolicyValues(v PolicyValues) { m.gate.setValues(v) }

// ExpectDenied declares that the test sends requests the shipped policy
// denies for these actions (e.g. "s3:GetObject"): the gate still answers
// them with AccessDenied, and the test fails if none of them was denied.
// Other denials fail the test as always.
func (m *Moto) ExpectDenied(t testing.TB, actions ...string) {
	t.Helper()
	m.gate.mu.Lock()
	defer m.gate.mu.Unlock()
	for _, a := range actions {
		if _, ok := m.gate.expected[a]; !ok {
			m.gate.expected[a] = 0
		}
	}
}

// Denials returns every request the IAM gate denied so far, for programs
// that are not tests (the demo, the benchmark): each is a defect.
func (m *Moto) Denials() []Denial { return m.gate.denialsSince(0) }

// watchDenials fails t, when it ends, for each request the gate denied
// from now on that t did not expect.
func (m *Moto) watchDenials(t testing.TB) {
	t.Helper()
	n := m.gate.denialCount()
	m.gate.mu.Lock()
	m.gate.expected = map[string]int{}
	exp := m.gate.expected
	m.gate.mu.Unlock()
	t.Cleanup(func() { checkDenials(t, m.gate, n, exp) })
}

// probeTimeout bounds one readiness probe; the probes repeat until the
// emulator's deadline.
const probeTimeout = time.Second

// httpOK sends one request and wants a 2xx answer within timeout.
func httpOK(method, url string, header http.Header, timeout time.Duration) error {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}

// since is the time elapsed since began, rounded for logs.
func since(began time.Time) time.Duration {
	return time.Since(began).Round(time.Millisecond)
}
