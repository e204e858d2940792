//go:build unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openLogFile opens the --log-file for appending. It opens without
// blocking: a named pipe that no process reads fails at once (ENXIO)
// instead of waiting for a reader, past --timeout and SIGTERM.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o640)
	if errors.Is(err, syscall.ENXIO) {
		if info, serr := os.Stat(path); serr == nil && info.Mode()&fs.ModeNamedPipe != 0 {
			return nil, usageError("--log-file %s is a named pipe that no process reads: start its reader first, or point --log-file at a file", path)
		}
	}
	if err != nil {
		return nil, usageError("--log-file: %v", err)
	}
	// Writes block as on any file: O_NONBLOCK was for the open only.
	// (Fd puts the descriptor back in blocking mode.)
	f.Fd()
	return f, nil
}
