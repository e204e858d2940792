//go:build unix

package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// DefaultPath returns the system hosts file: /etc/hosts.
func DefaultPath() string { return "/etc/hosts" }

// chown gives f the owner and group of the file described by info (nil for
// a file that did not exist: f keeps the caller's). A non-root caller cannot
// give a file away, so EPERM is ignored when not running as root: see Write.
func chown(f *os.File, info fs.FileInfo) error {
	if info == nil {
		return nil
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	err := f.Chown(int(st.Uid), int(st.Gid))
	if err == nil || errors.Is(err, syscall.EPERM) && os.Geteuid() != 0 {
		return nil
	}
	return fmt.Errorf("chown %s to %d:%d: %w", f.Name(), st.Uid, st.Gid, err)
}

// syncDir fsyncs the directory dir, so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// isMountPoint reports whether err is a rename's failure over a mount point:
// EBUSY, as for a bind-mounted file.
func isMountPoint(err error) bool { return errors.Is(err, syscall.EBUSY) }
