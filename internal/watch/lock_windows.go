//go:build windows

package watch

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// RuntimeDir is where watchers keep their locks: %ProgramData%\eipclaim,
// the directory install.ps1 creates for the logs.
func RuntimeDir(getenv func(string) string) string {
	pd := getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "eipclaim")
}

func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}

// lockRange is the byte locked: far past the PID written at the start, so
// that another process may still read it (Windows locks forbid reading the
// locked range).
var lockRange = windows.Overlapped{OffsetHigh: 1}

func tryLock(f *os.File) error {
	ol := lockRange
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}

func unlock(f *os.File) {
	ol := lockRange
	windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}
