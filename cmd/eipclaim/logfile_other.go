//go:build !unix

package main

import "os"

// openLogFile opens the --log-file for appending.
func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, usageError("--log-file: %v", err)
	}
	return f, nil
}
