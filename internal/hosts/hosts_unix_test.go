//go:build unix

package hosts

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
