package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
}

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

// buildInto builds cmd/eipclaim into dir.
func buildInto(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build eipclaim: %w", err)
	}
	out := filepath.Join(dir, "eipclaim")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.Command(goBin, "build", "-o", out, EipclaimPackage)
	cmd.Dir = root
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
}
