//go:build !unix && !windows

package hosts

import (
	"io/fs"
	"os"
)

// DefaultPath returns the system hosts file: /etc/hosts.
func DefaultPath() string { return "/etc/hosts" }

// chown does nothing on systems without Unix owners.
func chown(*os.File, fs.FileInfo) error { return nil }

// syncDir does nothing on systems where directories cannot be fsynced.
func syncDir(string) error { return nil }

// isMountPoint is false on these systems.
func isMountPoint(error) bool { return false }
