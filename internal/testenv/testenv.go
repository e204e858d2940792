// Package testenv starts the real emulators that eipclaim's integration tests
// run against, on free loopback ports, and stops them afterwards:
//
//   - moto's server for EC2, S3 and Route 53 ([SharedMoto], [StartMoto]),
//     always behind the IAM gate (iamgate.go), which judges every request
//     of a product caller ([Caller]: [Moto.Env], [Moto.EnvAs],
//     [Moto.ConfigAs]) with that caller's shipped IAM policy, evaluated by
//     @cloud-copilot/iam-simulate under node (evaluator.go), and fails the
//     test that owns a denied request,
//   - amazon-ec2-metadata-mock for IMDS ([StartIMDS]), behind a layer that
//     answers the network paths from moto's state (imdsnet.go),
//   - BIND 9's named for RFC 2136 dynamic updates ([StartBIND]),
//   - AWS's Lambda runtime interface emulator, running eipclaim built as a
//     Lambda function's bootstrap ([StartRIE], [Bootstrap]),
//   - wine, running eipclaim built for Windows ([SharedWine],
//     [EipclaimWindows], in wine.go),
//
// builds the emulated world in them, instances with their interfaces, Elastic
// IPs, hosted zones and an IMDS per instance ([World], [TestWorld], in
// world.go), and builds the eipclaim binary once per test process
// ([Eipclaim]).
//
// A package that uses it declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Every emulator runs in its own process group and, on Linux, dies with the
// test binary even when that is killed. A missing emulator fails the test
// with the command that installs it: these tests are never skipped.
// scripts/tools.sh installs everything.
//
// Binaries are looked up in this order: an environment variable (MOTO_SERVER,
// AEMM_BIN, NAMED_BIN, AWS_LAMBDA_RIE), the repository's .tools/bin, PATH, then a well-known
// location (~/.pyenv/versions/3.11.7/bin for moto_server, /usr/sbin for named).
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Main runs the tests of m, then stops every process the harness started
// (including the shared moto server) and removes the cached eipclaim binary,
// and exits with the tests' exit code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	stopShared()
	stopWine()
	stopAll()
	removeBuild()
	removeBootstrap()
	os.Exit(code)
}

// startAttempts bounds the restarts after a port collision.
const startAttempts = 4

// tool names an external program and says how to get it.
type tool struct {
	name     string   // file name, without .exe
	env      string   // variable that overrides the lookup
	fallback []string // directories tried after PATH; a leading ~ is $HOME
	install  string   // command that installs it
}

// find locates t, or fails with the command that installs it.
func (t tool) find() (string, error) {
	if p := os.Getenv(t.env); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s is not an executable file", t.env, p)
	}
	exe := t.name
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	var looked []string
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", exe)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, filepath.Join(root, ".tools", "bin"))
	}
	if p, err := exec.LookPath(t.name); err == nil {
		return p, nil
	}
	looked = append(looked, "PATH")
	home, _ := os.UserHomeDir()
	for _, dir := range t.fallback {
		if rest, ok := strings.CutPrefix(dir, "~"); ok {
			if home == "" {
				continue
			}
			dir = filepath.Join(home, rest)
		}
		p := filepath.Join(dir, exe)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, dir)
	}
	return "", fmt.Errorf("%s not found (looked at $%s, %s); install it with: %s",
		t.name, t.env, strings.Join(looked, ", "), t.install)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		return false
	}
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0
}

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory (a package's directory under go test).
func ModuleRoot() (string, error) { return moduleRoot() }

var moduleRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
})

// pickPort is freePort; tests replace it to force a collision.
var pickPort = freePort

// freePort returns a loopback port that was free for both TCP and UDP a
// moment ago. Another process may take it before the emulator binds it; the
// callers restart on a collision.
func freePort() (int, error) {
	var last error
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			u.Close()
			l.Close()
			return port, nil
		}
		l.Close()
		last = err
	}
	return 0, fmt.Errorf("pick a free port: no port free for both TCP and UDP: %w", last)
}

// process is one emulator started by the harness.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result; read only after done
}

var live struct {
	sync.Mutex
	procs map[*process]bool
}

// start runs bin in its own process group with its output captured.
func start(name, dir, bin string, args, env []string) (*process, error) {
	out := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	if err := startCmd(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	live.Lock()
	if live.procs == nil {
		live.procs = map[*process]bool{}
	}
	live.procs[p] = true
	live.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop kills the process group and waits for it.
func (p *process) stop() {
	killGroup(p.cmd)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}

// tail returns the last lines the process printed, for failure messages.
func (p *process) tail() string {
	return p.out.lastLines(25)
}

// stopAll stops every process still running.
func stopAll() {
	live.Lock()
	procs := make([]*process, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	live.Unlock()
	for _, p := range procs {
		p.stop()
	}
}

// launch describes how to start an emulator and how to tell it is ready.
type launch struct {
	name    string
	tool    tool
	timeout time.Duration
	// prepare returns the arguments, environment and working directory for
	// an attempt on port.
	prepare func(port int) (args, env []string, dir string, err error)
	// ready returns nil once the emulator answers on port.
	ready func(port int) error
}

// errCollision marks a start that failed because the port was taken.
var errCollision = errors.New("port already in use")

// launching serializes starts within this process: two emulators started
// at once could be given the same free port, and the loser's readiness
// probe would be answered by the winner.
var launching sync.Mutex

// run starts the emulator, retrying on a port collision, and waits until it
// is ready. On failure the error carries the process's last output.
func (l launch) run() (*process, int, error) {
	launching.Lock()
	defer launching.Unlock()
	bin, err := l.tool.find()
	if err != nil {
		return nil, 0, err
	}
	var last error
	for range startAttempts {
		port, err := pickPort()
		if err != nil {
			return nil, 0, err
		}
		args, env, dir, err := l.prepare(port)
		if err != nil {
			return nil, 0, err
		}
		p, err := start(l.name, dir, bin, args, env)
		if err != nil {
			return nil, 0, err
		}
		err = p.waitReady(l.timeout, func() error { return l.ready(port) })
		if err == nil {
			return p, port, nil
		}
		p.stop()
		last = fmt.Errorf("%s (%s) on 127.0.0.1:%d: %w\n--- last output of %s ---\n%s", l.name, bin, port, err, l.name, p.tail())
		if !errors.Is(err, errCollision) {
			return nil, 0, last
		}
	}
	return nil, 0, fmt.Errorf("gave up after %d port collisions: %w", startAttempts, last)
}

// waitReady polls ready until it succeeds, the process exits, or timeout.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			if looksLikeCollision(p.out.String()) {
				return errCollision
			}
			return fmt.Errorf("exited before it was ready: %v", p.err)
		}
		err := ready()
		if err == nil {
			return nil
		}
		if errors.Is(err, errCollision) {
			return err
		}
		if looksLikeCollision(p.out.String()) {
			return errCollision
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// looksLikeCollision recognises the messages moto, AEMM and named print when
// their port is taken.
func looksLikeCollision(out string) bool {
	out = strings.ToLower(out)
	return strings.Contains(out, "address already in use") ||
		strings.Contains(out, "address in use") ||
		strings.Contains(out, "unable to listen on any configured interfaces")
}

// cleanupProcess stops p when t ends, first logging its output if t failed.
func cleanupProcess(t testing.TB, p *process) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: last output of %s:\n%s", p.name, p.tail())
		}
		p.stop()
	})
}

// baseEnv is the environment of the test process without the variables
// matching any of the prefixes, so the host's settings cannot leak into an
// emulator.
func baseEnv(dropPrefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, pre := range dropPrefixes {
			if strings.HasPrefix(strings.ToUpper(kv), pre) {
				drop = true
				break
			}
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lastLines returns the last n lines written.
func (b *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
