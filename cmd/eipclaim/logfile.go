package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// fallbackWriter writes the logs to the --log-file. When a write fails (a
// full disk, a file system gone read-only), it says so once on stderr and
// writes that line and every later one to stderr: no line is lost silently.
type fallbackWriter struct {
	w      io.Writer // the log file
	path   string
	stderr io.Writer

	mu     sync.Mutex
	failed bool
}

func (f *fallbackWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rest := p
	if !f.failed {
		n, err := f.w.Write(p)
		if err == nil {
			return n, nil
		}
		f.failed = true
		f.report("writing", err, "logs go to stderr from now on")
		rest = p[n:] // the part the file did not take
	}
	if _, err := f.stderr.Write(rest); err != nil {
		return 0, err
	}
	return len(p), nil
}

// closed reports a failure to close the log file (where a file system that
// defers writes reports them), unless a write failure was reported already.
func (f *fallbackWriter) closed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil && !f.failed {
		f.failed = true
		f.report("closing", err, "its last lines may be lost")
	}
}

func (f *fallbackWriter) report(what string, err error, then string) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	fmt.Fprintf(f.stderr, "eipclaim: %s the log file %s failed: %v; %s\n", what, f.path, err, then)
}
