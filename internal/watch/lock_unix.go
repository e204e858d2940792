//go:build unix

package watch

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// RuntimeDir is where watchers keep their locks: systemd's
// $RUNTIME_DIRECTORY (the unit's RuntimeDirectory=), else /run/eipclaim.
func RuntimeDir(getenv func(string) string) string {
	if d, _, _ := strings.Cut(getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return d
	}
	return "/run/eipclaim"
}

// openLockFile opens path without blocking (a named pipe there would block
// a plain open) and without following a symbolic link.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
}

func tryLock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

func unlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }
