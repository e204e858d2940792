package watch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockError is Lock's refusal: another watcher holds the role's lock on
// this instance.
type LockError struct {
	Role string
	Path string
	PID  int // the holder's, 0 when its file did not say
}

func (e *LockError) Error() string {
	who := "another eipclaim watch"
	if e.PID > 0 {
		who += fmt.Sprintf(" (PID %d)", e.PID)
	}
	return fmt.Sprintf("%s already watches role %s on this instance (lock %s): stop it first; two watchers of one role would both run its hooks", who, e.Role, e.Path)
}

// Lock takes the per-role lock of a watcher on this instance: a file in
// dir (RuntimeDir) locked for as long as the process lives (flock on Unix,
// LockFileEx on Windows), so that the operating system releases it
// whatever way the process ends. A second watcher of the same role on the
// same instance gets a *LockError naming the first's PID. release unlocks
// it (the file is left in place: removing it would let a third watcher
// lock a new file while the second still holds the old one).
func Lock(dir, role, instanceID string) (release func(), err error) {
	for _, s := range []string{role, instanceID} {
		if s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return nil, fmt.Errorf("watch lock: %q cannot name a lock file", s)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("watch lock: %w (set RUNTIME_DIRECTORY to a directory this user may write)", err)
	}
	// Role names are the same whatever their case.
	path := filepath.Join(dir, "watch-"+strings.ToLower(role)+"-"+instanceID+".lock")
	f, err := openLockFile(path)
	if err != nil {
		return nil, fmt.Errorf("watch lock: %w (set RUNTIME_DIRECTORY to a directory this user may write)", err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("watch lock %s: not a regular file: remove it", path)
	}
	if err := tryLock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLocked) {
			return nil, &LockError{Role: role, Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("watch lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		unlock(f)
		f.Close()
	}, nil
}

// errLocked is tryLock's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")

// readPID reads the PID the lock's holder wrote, 0 when none.
func readPID(f *os.File) int {
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 32))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
