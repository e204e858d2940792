package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/eipclaim/eipclaim/internal/localfile"
)

// NotRegularError is the error for a hosts file path that holds something
// other than a regular file: a named pipe, a device, a directory, a socket.
// Write refuses it before opening it: opening a named pipe for reading
// blocks until a writer comes, and no deadline or signal ends that wait.
// It is internal/localfile's, which opens every file eipclaim reads.
type NotRegularError = localfile.NotRegularError

// CheckRegular returns a *NotRegularError, naming the file the symbolic
// links lead to, if path exists and is not a regular file. It opens nothing.
// A path that does not exist is fine: Write creates the file.
func CheckRegular(path string) error {
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	info, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("stat %s: %w", target, err)
	}
	if !info.Mode().IsRegular() {
		return &NotRegularError{Path: target, Mode: info.Mode()}
	}
	return nil
}

// ReadFile returns the content of the hosts file at path, nil if it does not
// exist. Like Write, it refuses what is not a regular file, without waiting
// on a named pipe.
func ReadFile(path string) ([]byte, error) {
	if err := CheckRegular(path); err != nil {
		return nil, err
	}
	b, _, err := readFile(path)
	return b, err
}

// ErrMountPoint marks a hosts file that is a mount point: a file
// bind-mounted over another, as container runtimes mount /etc/hosts.
// Nothing can be renamed over a mount point (the rename fails with EBUSY),
// so such a file cannot be replaced atomically.
var ErrMountPoint = errors.New("is a mount point (a bind mount, as containers mount /etc/hosts): it cannot be replaced atomically")

// rename is os.Rename, a variable so that tests can make it fail as it
// does over a mount point.
var rename = os.Rename
