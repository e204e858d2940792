package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// EipclaimPackage is the import path [Eipclaim] builds.
const EipclaimPackage = "github.com/eipclaim/eipclaim/cmd/eipclaim"

var build struct {
	sync.Mutex
	done bool
	dir  string
	path string
	err  error
	// tagged are the builds with build tags (EipclaimTestHooks), by tags.
	tagged map[string]*taggedBuild
}

type taggedBuild struct {
	path string
	err  error
}

// TestHooksTag is the build tag of the test-only seams of cmd/eipclaim:
// EIPCLAIM_TEST_DIAL maps the health checks' private IPs (moto's 10.x,
// never dialled by a test) to loopback listeners. A release build has no
// such seam.
const TestHooksTag = "eipclaim_testhooks"

// EipclaimTestHooks builds cmd/eipclaim with the [TestHooksTag] seams the
// first time it is called in a test process, and returns the binary's path.
func EipclaimTestHooks(t testing.TB) string {
	t.Helper()
	build.Lock()
	defer build.Unlock()
	if build.tagged == nil {
		build.tagged = map[string]*taggedBuild{}
	}
	b := build.tagged[TestHooksTag]
	if b == nil {
		b = &taggedBuild{}
		build.tagged[TestHooksTag] = b
		began := time.Now()
		dir, err := os.MkdirTemp("", "testenv-eipclaim-tags-")
		if err == nil {
			b.path, b.err = buildInto(dir, "-tags", ReleaseTags+","+TestHooksTag)
			extraDirs = append(extraDirs, dir)
		} else {
			b.err = err
		}
		if b.err == nil {
			t.Logf("testenv: built %s -tags %s in %s", EipclaimPackage, TestHooksTag, since(began))
		}
	}
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return b.path
}

// extraDirs are build directories besides build.dir, removed with it.
var extraDirs []string

// Eipclaim builds cmd/eipclaim the first time it is called in a test process
// and returns the binary's path; later calls return the same binary, or the
// same build failure. [Main] removes it.
func Eipclaim(t testing.TB) string {
	t.Helper()
	build.Lock()
	defer build.Unlock()
	if !build.done {
		build.done = true
		began := time.Now()
		build.path, build.err = buildEipclaim()
		if build.err == nil {
			t.Logf("testenv: built %s in %s", EipclaimPackage, since(began))
		}
	}
	if build.err != nil {
		t.Fatalf("testenv: %v", build.err)
	}
	return build.path
}

func buildEipclaim() (string, error) {
	dir, err := os.MkdirTemp("", "testenv-eipclaim-")
	if err != nil {
		return "", err
	}
	build.dir = dir
	return buildInto(dir)
}

// ReleaseTags are the build tags of every eipclaim binary (Makefile,
// release.mk): lambda.norpc leaves out aws-lambda-go's RPC mode (the
// retired go1.x runtime), whose net/rpc brings html/template, which turns
// the linker's dead-code elimination off: 57 MB instead of 17.
const ReleaseTags = "lambda.norpc"

// EipclaimWindows builds cmd/eipclaim for windows/amd64 (eipclaim.exe,
// with ReleaseTags and the extra tags) the first time it is called in a
// test process for those tags, and returns the executable's path: the
// binary the Windows tests run under wine ([Wine]).
func EipclaimWindows(t testing.TB, tags ...string) string {
	t.Helper()
	all := strings.Join(append([]string{ReleaseTags}, tags...), ",")
	key := "windows/amd64 " + all
	build.Lock()
	defer build.Unlock()
	if build.tagged == nil {
		build.tagged = map[string]*taggedBuild{}
	}
	b := build.tagged[key]
	if b == nil {
		b = &taggedBuild{}
		build.tagged[key] = b
		began := time.Now()
		dir, err := os.MkdirTemp("", "testenv-eipclaim-windows-")
		if err == nil {
			extraDirs = append(extraDirs, dir)
			b.path, b.err = buildFor(dir, "windows", "amd64", "-tags", all)
		} else {
			b.err = err
		}
		if b.err == nil {
			t.Logf("testenv: built %s for windows/amd64 -tags %s in %s", EipclaimPackage, all, since(began))
		}
	}
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return b.path
}

// buildInto builds cmd/eipclaim into dir, with ReleaseTags unless flags
// name tags.
func buildInto(dir string, flags ...string) (string, error) {
	return buildFor(dir, runtime.GOOS, runtime.GOARCH, flags...)
}

// buildFor is buildInto for goos/goarch.
func buildFor(dir, goos, goarch string, flags ...string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build eipclaim: %w", err)
	}
	out := filepath.Join(dir, "eipclaim")
	if goos == "windows" {
		out += ".exe"
	}
	args := append([]string{"build", "-o", out}, flags...)
	if !slices.Contains(flags, "-tags") {
		args = append(args, "-tags", ReleaseTags)
	}
	cmd := exec.Command(goBin, append(args, EipclaimPackage)...)
	cmd.Dir = root
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", EipclaimPackage, err, b)
	}
	return out, nil
}

// removeBuild deletes the binary Eipclaim built.
func removeBuild() {
	build.Lock()
	defer build.Unlock()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	for _, d := range extraDirs {
		os.RemoveAll(d)
	}
}
