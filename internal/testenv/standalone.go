package testenv

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Emulators starts emulators for programs that are not tests (the demo,
// the benchmarks). Close stops them all; the zero value is ready to use.
type Emulators struct {
	mu    sync.Mutex
	procs []*process
	dirs  []string
	gates []*gate
	imds  []*imdsLayer
}

// Moto starts a moto server.
func (e *Emulators) Moto() (*Moto, error) {
	dir, err := e.tempDir("moto")
	if err != nil {
		return nil, err
	}
	p, port, err := motoLaunch(dir).run()
	if err != nil {
		return nil, err
	}
	e.add(p)
	m, err := newMoto(fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.gates = append(e.gates, m.gate)
	e.mu.Unlock()
	return m, nil
}

// IMDS starts an IMDS emulator serving o.
func (e *Emulators) IMDS(o IMDSOptions) (*IMDS, error) {
	dir, err := e.tempDir("aemm")
	if err != nil {
		return nil, err
	}
	conf, err := writeAEMMConfig(dir, o)
	if err != nil {
		return nil, err
	}
	p, port, err := imdsLaunch(conf, o, dir).run()
	if err != nil {
		return nil, err
	}
	e.add(p)
	l, err := startIMDSLayer(fmt.Sprintf("http://127.0.0.1:%d", port), o)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.imds = append(e.imds, l)
	e.mu.Unlock()
	return &IMDS{Endpoint: l.url(), layer: l}, nil
}

// Close stops every emulator started and removes their files.
func (e *Emulators) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.procs {
		p.stop()
	}
	for _, l := range e.imds {
		l.close()
	}
	for _, g := range e.gates {
		g.close()
	}
	for _, d := range e.dirs {
		os.RemoveAll(d)
	}
	e.procs, e.dirs, e.gates, e.imds = nil, nil, nil, nil
}

func (e *Emulators) add(p *process) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procs = append(e.procs, p)
}

func (e *Emulators) tempDir(name string) (string, error) {
	dir, err := os.MkdirTemp("", "eipclaim-"+name+"-")
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dirs = append(e.dirs, dir)
	return dir, nil
}

// writeAEMMConfig writes AEMM's configuration for o into dir.
func writeAEMMConfig(dir string, o IMDSOptions) (string, error) {
	conf := filepath.Join(dir, "aemm-config.json")
	b, err := json.MarshalIndent(aemmConfig(o), "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode AEMM config: %w", err)
	}
	return conf, os.WriteFile(conf, b, 0o600)
}

// Config is the admin's SDK configuration for this server, for seeding and
// inspecting it: static credentials the IAM gate lets through unevaluated
// ([AdminAccessKey]), region us-east-1, BaseEndpoint set to the server.
// Product code gets [Moto.ConfigAs] instead.
func (m *Moto) Config() aws.Config {
	return m.config(AdminAccessKey)
}

// ConfigAs is the SDK configuration of caller c (see [Caller]), whose
// requests the IAM gate judges with c's shipped policy.
func (m *Moto) ConfigAs(c Caller) aws.Config {
	key, ok := accessKeys[c]
	if !ok {
		panic(fmt.Sprintf("testenv: no caller %q", c))
	}
	return m.config(key)
}

func (m *Moto) config(key string) aws.Config {
	return aws.Config{
		Region:       MotoRegion,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, key, "")),
		BaseEndpoint: aws.String(m.Endpoint),
	}
}

// Build builds cmd/eipclaim into dir and returns the binary's path.
func Build(dir string) (string, error) { return buildInto(dir) }

// GateSummary says how many requests the IAM gates of e's moto servers
// evaluated and allowed, per caller and the policy it was judged by, e.g.
// "41 requests judged by docs/iam-policy.json (instance)".
func (e *Emulators) GateSummary() string {
	e.mu.Lock()
	gates := slices.Clone(e.gates)
	e.mu.Unlock()
	n := map[Caller]int{}
	for _, g := range gates {
		g.mu.Lock()
		for c, k := range g.judged {
			n[c] += k
		}
		g.mu.Unlock()
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d requests judged by %s (%s)", n[c], c.PolicyFile(), c))
	}
	if len(parts) == 0 {
		return "no request judged"
	}
	return strings.Join(parts, ", ")
}

// GateError returns an error naming the requests the IAM gates of e's moto
// servers denied (see [Moto.Denials]), nil when there were none: a program
// that is not a test (the demo, the benchmark) fails with it, as a test
// would.
func (e *Emulators) GateError() error {
	e.mu.Lock()
	gates := slices.Clone(e.gates)
	e.mu.Unlock()
	var msgs []string
	for _, g := range gates {
		for _, d := range g.denialsSince(0) {
			msgs = append(msgs, d.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > 10 {
		msgs = append(msgs[:10], fmt.Sprintf("… and %d more", len(msgs)-10))
	}
	return fmt.Errorf("the IAM gate denied %d request(s) the shipped policies should allow:\n%s", len(msgs), strings.Join(msgs, "\n"))
}
