// Package localfile is the one way eipclaim opens a local file it reads:
// the configuration (--config FILE), the role table (hosts --from FILE),
// a dyndns password_file, a tsig_secret_file, the hosts file. Open never
// waits: on Unix it opens with O_NONBLOCK, so that a named pipe with no
// writer (or a device) does not hold the process past its deadline and
// past SIGTERM (an open(2) that waits for a writer is ended by no
// deadline and no signal handler), and it refuses everything that is not
// a regular file (a named pipe, a device, a directory, a socket) with
// *NotRegularError.
package localfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// NotRegularError is the error for a path that holds something other than
// a regular file: a named pipe, a device, a directory, a socket.
type NotRegularError struct {
	Path string // the file, after following symbolic links
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file", e.Path, e.Kind())
}

// Kind names what the path is: "named pipe", "character device", ...
func (e *NotRegularError) Kind() string {
	switch t := e.Mode.Type(); {
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeSocket != 0:
		return "socket"
	default:
		return "special file (" + t.String() + ")"
	}
}

// Open opens the regular file at path for reading, without waiting (see
// the package comment), and returns it with its file info. What is not a
// regular file is closed and refused with a *NotRegularError; the other
// errors are os.OpenFile's (fs.ErrNotExist, fs.ErrPermission).
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, &NotRegularError{Path: path, Mode: info.Mode()}
	}
	return f, info, nil
}

// Read returns at most max bytes of the regular file at path (Open), and
// whether there was more.
func Read(path string, max int64) (data []byte, more bool, err error) {
	f, _, err := Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		return data[:max], true, nil
	}
	return data, false, nil
}

// Describe says what is wrong with the file that key (a configuration key,
// a flag) names, after Open or Read failed with err, and carries the exit
// code: a missing file, or one that is not a regular file, is bad
// configuration (2); one that may not be read is 3; anything else is 1.
func Describe(key, path string, err error) error {
	var nr *NotRegularError
	switch {
	case errors.As(err, &nr):
		return exitcode.With(exitcode.Usage, fmt.Errorf("%s %s: a %s, not a regular file: point %s at a file (a named pipe or a device would make eipclaim wait for a writer past its deadline)", key, path, nr.Kind(), key))
	case errors.Is(err, fs.ErrNotExist):
		return exitcode.With(exitcode.Usage, fmt.Errorf("%s %s: no such file: check the path: %w", key, path, unwrapPath(err)))
	case errors.Is(err, fs.ErrPermission):
		return exitcode.With(exitcode.Denied, fmt.Errorf("%s %s: permission denied: run as a user that may read it, or fix its mode: %w", key, path, unwrapPath(err)))
	}
	return exitcode.With(exitcode.Failed, fmt.Errorf("%s %s: %w", key, path, unwrapPath(err)))
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
