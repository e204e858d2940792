package shipped

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// root is the repository root, from this package's directory.
const root = "../.."

// readFile reads a file of the repository, by its slash-separated path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// acceptsArgs runs the real eipclaim with args and -h appended: that exits 0
// only when the command exists and every flag before -h is one it takes.
func acceptsArgs(t *testing.T, args []string) {
	t.Helper()
	bin := testenv.Eipclaim(t)
	cmd := exec.Command(bin, append(append([]string{}, args...), "-h")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// No AWS or eipclaim environment can change the outcome of -h.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		t.Errorf("eipclaim %s: exit code %d, want 0 (an unknown command or flag?)\n%s",
			strings.Join(args, " "), exitErr.ExitCode(), out.String())
	case err != nil:
		t.Errorf("eipclaim %s: %v", strings.Join(args, " "), err)
	}
}

// isASCII reports whether b holds only ASCII, so that Windows PowerShell 5.1
// (which reads a file without a BOM in the ANSI code page) reads it right.
func isASCII(b []byte) (line int, ok bool) {
	line = 1
	for _, c := range b {
		if c == '\n' {
			line++
		}
		if c > 0x7f {
			return line, false
		}
	}
	return 0, true
}
