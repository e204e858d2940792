//go:build unix

package localfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// TestOpenNeverWaits: a named pipe without a writer, a device, a
// directory are refused at once; a regular file is read, capped.
func TestOpenNeverWaits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, kind string
	}{{fifo, "named pipe"}, {"/dev/null", "character device"}, {dir, "directory"}} {
		began := time.Now()
		_, _, err := Read(tc.path, 100)
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Kind() != tc.kind {
			t.Errorf("Read(%s): %v, want a %s refused", tc.path, err, tc.kind)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("Read(%s) took %s", tc.path, took)
		}
		d := Describe("password_file", tc.path, err)
		if exitcode.Of(d) != exitcode.Usage || !strings.Contains(d.Error(), "password_file "+tc.path+": a "+tc.kind+", not a regular file") {
			t.Errorf("Describe: %v (exit %d)", d, exitcode.Of(d))
		}
	}
	data, more, err := Read(file, 4)
	if err != nil || string(data) != "0123" || !more {
		t.Errorf("Read capped: %q %v %v", data, more, err)
	}
	data, more, err = Read(file, 10)
	if err != nil || string(data) != "0123456789" || more {
		t.Errorf("Read: %q %v %v", data, more, err)
	}
	_, _, err = Read(filepath.Join(dir, "nope"), 1)
	if !errors.Is(err, fs.ErrNotExist) || exitcode.Of(Describe("k", "p", err)) != exitcode.Usage {
		t.Errorf("missing: %v", err)
	}
}
