package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Wine runs Windows executables (eipclaim.exe, [EipclaimWindows]) under
// Debian's wine 8 in the prefix scripts/wine.sh makes, .tools/wine/prefix:
// Windows 10, with a bcryptprimitives.dll that gives Go's runtime the
// ProcessPrng wine 8 lacks. One persistent wineserver serves every wine
// process of the test process ([SharedWine]); [Main] stops it. While it
// runs, the test process holds .tools/wine/lock, so that two test
// processes (two worktrees sharing .tools) never use the prefix at once.
//
// A wine process gets exactly the environment a test gives it ([Wine.Env]):
// a host variable such as AWS_CA_BUNDLE, a Linux path, would reach the
// Windows program and break the AWS SDK.
type Wine struct {
	// Prefix is the prefix's directory; C:\ is Prefix/drive_c.
	Prefix     string
	wine64     string
	wineserver string
}

// wineTools are wine's two programs: Debian's wine64 package puts them in
// /usr/lib/wine (the wine package's /usr/bin wrappers are not needed).
var (
	wine64Tool = tool{name: "wine64", env: "WINE64", fallback: []string{"/usr/lib/wine"},
		install: "bash scripts/tools.sh (apt-get install wine64)"}
	// Debian's /usr/lib/wine/wineserver is a script that adds -p0.
	wineserverTool = tool{name: "wineserver64", env: "WINESERVER", fallback: []string{"/usr/lib/wine"},
		install: "bash scripts/tools.sh (apt-get install wine64)"}
)

var sharedWine struct {
	sync.Mutex
	w    *Wine
	err  error
	skip string
	done bool
	lock *os.File
}

// SharedWine returns the test process's wine, starting its wineserver the
// first time. Without wine64 the test is skipped, with the command that
// installs it, except when CI is set, where that is a failure: `make test`
// installs wine (scripts/tools.sh) and runs these tests.
func SharedWine(t testing.TB) *Wine {
	t.Helper()
	sharedWine.Lock()
	defer sharedWine.Unlock()
	if !sharedWine.done {
		sharedWine.done = true
		began := time.Now()
		sharedWine.w, sharedWine.skip, sharedWine.err = startWine()
		if sharedWine.w != nil {
			t.Logf("testenv: wineserver for %s started in %s", sharedWine.w.Prefix, since(began))
		}
	}
	if sharedWine.skip != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("testenv: %s (CI is set: the Windows tests must run)", sharedWine.skip)
		}
		t.Skipf("testenv: %s", sharedWine.skip)
	}
	if sharedWine.err != nil {
		t.Fatalf("testenv: %v", sharedWine.err)
	}
	return sharedWine.w
}

// startWine finds wine and the prefix, takes the prefix's lock and starts
// a persistent wineserver. skip says why wine cannot run here at all.
func startWine() (w *Wine, skip string, err error) {
	if runtime.GOOS != "linux" {
		return nil, "the Windows tests run under wine, on Linux only", nil
	}
	wine64, err := wine64Tool.find()
	if err != nil {
		return nil, err.Error(), nil
	}
	wineserver, err := wineserverTool.find()
	if err != nil {
		p, lookErr := exec.LookPath("wineserver")
		if lookErr != nil {
			return nil, err.Error(), nil
		}
		wineserver = p
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(root, ".tools", "wine")
	w = &Wine{Prefix: filepath.Join(dir, "prefix"), wine64: wine64, wineserver: wineserver}
	if _, err := os.Stat(filepath.Join(w.Prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")); err != nil {
		return nil, "", fmt.Errorf("the wine prefix %s is not ready (%v); make it with: bash scripts/tools.sh", w.Prefix, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, "", err
	}
	if err := lockFile(f, 5*time.Minute); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("lock the wine prefix (%s): %w", f.Name(), err)
	}
	sharedWine.lock = f
	if err := w.startServer(); err != nil {
		return nil, "", err
	}
	return w, "", nil
}

// stopWine stops the wineserver and every wine process with it, and lets
// go of the prefix.
func stopWine() {
	sharedWine.Lock()
	defer sharedWine.Unlock()
	if sharedWine.w != nil {
		sharedWine.w.kill()
		sharedWine.w = nil
	}
	if sharedWine.lock != nil {
		sharedWine.lock.Close() // releases the lock
		sharedWine.lock = nil
	}
}

// kill stops the wineserver and every process of the prefix, and waits
// until it has written the registry and exited.
func (w *Wine) kill() {
	cmd := exec.Command(w.wineserver, "-k")
	cmd.Env = w.Env()
	cmd.Run()
	cmd = exec.Command(w.wineserver, "-w")
	cmd.Env = w.Env()
	cmd.WaitDelay = 10 * time.Second
	cmd.Run()
}

// Restart stops every wine process of the prefix (services included) and
// starts a new persistent wineserver: the service manager, services.exe,
// reads the system environment from the registry once, when it starts.
func (w *Wine) Restart(t testing.TB) {
	t.Helper()
	w.kill()
	if err := w.startServer(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// startServer starts a persistent wineserver for the prefix: gone a minute
// after the last wine process, even if this test process is killed before
// it can stop it.
func (w *Wine) startServer() error {
	// It forks into the background, keeping its standard output and error:
	// a file, not a pipe that would never close.
	log, err := os.CreateTemp("", "testenv-wineserver-")
	if err != nil {
		return err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := exec.Command(w.wineserver, "-p60")
	cmd.Env = w.Env()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf("start %s -p60: %w\n%s", w.wineserver, err, out)
	}
	// The first program of a session starts wine's services (services.exe,
	// winedevice.exe, ...), which inherit its standard output and error and
	// outlive it: start them with neither, or a test reading a program's
	// output would wait for them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	boot := exec.CommandContext(ctx, w.wine64, "wineboot")
	boot.Env = w.Env()
	if err := boot.Run(); err != nil {
		return fmt.Errorf("start wine's services (wine64 wineboot): %w", err)
	}
	return nil
}

// Env returns the environment of a wine process: what wine itself needs
// (WINEPREFIX, HOME, no display, no Mono or Gecko prompts, no debug
// output), then env ([WindowsEnv]), later entries winning. Nothing else of
// the host's environment.
func (w *Wine) Env(env ...string) []string {
	out := []string{
		"WINEPREFIX=" + w.Prefix,
		"WINEDEBUG=-all",
		"WINEDLLOVERRIDES=mscoree,mshtml=",
		"PATH=/usr/bin:/bin",
		"LANG=C.UTF-8",
	}
	for _, k := range []string{"HOME", "USER", "LOGNAME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return append(out, WindowsEnv(env)...)
}

// WindowsEnv returns env for a Windows program: a value of /dev/null (the
// moto environment's AWS_CONFIG_FILE) becomes NUL, its Windows name.
func WindowsEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && v == os.DevNull {
			kv = k + "=NUL"
		}
		out = append(out, kv)
	}
	return out
}

// Command returns exe (a Linux path, or a program of the prefix such as
// reg or sc) with args under wine64, with the environment [Wine.Env](env).
func (w *Wine) Command(ctx context.Context, exe string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.wine64, append([]string{exe}, args...)...)
	cmd.Env = w.Env(env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs exe with args under wine64 within timeout and returns its
// output and exit code (wine passes the Windows exit code through). A
// program that cannot start, or runs past timeout, fails t.
func (w *Wine) Run(t testing.TB, timeout time.Duration, exe string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := w.Command(ctx, exe, env, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("testenv: wine %s %s: not done within %s\nstdout: %s\nstderr: %s", filepath.Base(exe), strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("testenv: wine %s: %v", filepath.Base(exe), err)
	}
	return out.String(), errb.String(), code
}

// HostPath returns the Linux path of a path on the prefix's C: drive,
// such as C:\windows\system32\drivers\etc\hosts.
func (w *Wine) HostPath(win string) string {
	if len(win) < 3 || !strings.EqualFold(win[:3], `c:\`) {
		panic(fmt.Sprintf("testenv: %q is not on the C: drive", win))
	}
	return filepath.Join(w.Prefix, "drive_c", filepath.FromSlash(strings.ReplaceAll(win[3:], `\`, "/")))
}

// WinPath returns the Windows name of a Linux path: wine maps / to Z:.
func WinPath(p string) string {
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// WindowsArgs splits a Windows command line (a scheduled task's Exec, a
// service's binPath) into its arguments as CommandLineToArgvW does for the
// lines eipclaim ships: spaces and tabs outside double quotes separate,
// double quotes group and are dropped. A backslash before a quote, whose
// rules these lines do not need, is an error rather than a guess.
func WindowsArgs(line string) ([]string, error) {
	if strings.Contains(line, `\"`) {
		return nil, fmt.Errorf("%s: a backslash before a quote; teach testenv.WindowsArgs CommandLineToArgvW's rules", line)
	}
	var args []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if have {
				args = append(args, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}
