//go:build unix

package hosts

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

func TestWriteKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: only root can give the original file to another user to check that Write keeps it")
	}
	dir := t.TempDir()
	path := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o640)
	const uid, gid = 4242, 4343
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if changed, err := Write(path, testEntries); err != nil || !changed {
		t.Fatalf("Write = %v, %v; want true, nil", changed, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if info.Mode() != 0o640 {
		t.Errorf("mode = %v, want %v", info.Mode(), os.FileMode(0o640))
	}
	checkNoTemp(t, filepath.Dir(path))
}

// TestWriteRefusesFIFO: a named pipe at the path (or behind a link) is
// refused before it is opened. Opening one for reading blocks until a
// writer comes, which no deadline or signal interrupts.
func TestWriteRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	funcs := map[string]func(string) error{
		"Write":    func(path string) error { _, err := Write(path, testEntries); return err },
		"ReadFile": func(path string) error { _, err := ReadFile(path); return err },
	}
	for _, path := range []string{fifo, link} {
		for name, fn := range funcs {
			done := make(chan error, 1)
			go func() { done <- fn(path) }()
			select {
			case err := <-done:
				var nr *NotRegularError
				if !errors.As(err, &nr) {
					t.Fatalf("%s(%s) = %v; want a *NotRegularError", name, path, err)
				}
				if nr.Path != fifo || nr.Kind() != "named pipe" {
					t.Errorf("%s(%s): NotRegularError{%s, %s}, want %s, named pipe", name, path, nr.Path, nr.Kind(), fifo)
				}
				if want := fifo + " is a named pipe, not a regular file"; err.Error() != want {
					t.Errorf("%s(%s) error %q, want %q", name, path, err, want)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s(%s) still blocked after 5s: it opened the named pipe", name, path)
				unblock(t, fifo)
				<-done
			}
		}
		if info, err := os.Lstat(fifo); err != nil || info.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("the named pipe was replaced: %v, %v", info, err)
		}
	}
	checkNoTemp(t, dir)
}

// unblock opens fifo for writing and closes it, so that a reader blocked
// in open returns.
func unblock(t *testing.T, fifo string) {
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestNotRegularKinds(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{{"/dev/null", "character device"}, {t.TempDir(), "directory"}} {
		err := CheckRegular(tc.path)
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Kind() != tc.want {
			t.Errorf("CheckRegular(%s) = %v, want a %s", tc.path, err, tc.want)
		}
	}
	dir := t.TempDir()
	if err := CheckRegular(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("CheckRegular(a missing file) = %v, want nil: Write creates it", err)
	}
	if err := CheckRegular(writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)); err != nil {
		t.Errorf("CheckRegular(a regular file) = %v, want nil", err)
	}
}

// TestWriteBindMountBusy: renaming over a mount point (a bind-mounted
// file, as containers have /etc/hosts) fails with EBUSY. Write says why
// and what to do, and leaves the file and no temporary file.
func TestWriteBindMountBusy(t *testing.T) {
	dir := t.TempDir()
	path := writeHosts(t, dir, "127.0.0.1 localhost\n", 0o644)
	ageFile(t, path)
	before := stateOf(t, path)
	defer func(r func(string, string) error) { rename = r }(rename)
	rename = func(oldpath, newpath string) error {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EBUSY}
	}
	changed, err := Write(path, testEntries)
	if err == nil || changed {
		t.Fatalf("Write = %v, %v; want false and an error", changed, err)
	}
	for _, want := range []string{path + " is a mount point", "bind mount", "cannot be replaced atomically", "--out", "device or resource busy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, ErrMountPoint) || !errors.Is(err, syscall.EBUSY) {
		t.Errorf("error %v: want it to be ErrMountPoint and EBUSY", err)
	}
	if code := exitcode.Of(err); code != exitcode.Failed {
		t.Errorf("exit code %d, want %d", code, exitcode.Failed)
	}
	if after := stateOf(t, path); after != before {
		t.Errorf("file after a failed Write = %+v, want untouched %+v", after, before)
	}
	checkNoTemp(t, dir)

	// Another rename error is reported as it is, not as a mount point.
	rename = func(oldpath, newpath string) error {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EIO}
	}
	if _, err := Write(path, testEntries); err == nil || errors.Is(err, ErrMountPoint) || strings.Contains(err.Error(), "mount point") {
		t.Errorf("Write with EIO = %v; want an error that does not blame a mount point", err)
	}
	checkNoTemp(t, dir)
}
