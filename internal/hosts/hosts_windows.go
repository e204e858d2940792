package hosts

import (
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultPath returns the system hosts file:
// %SystemRoot%\System32\drivers\etc\hosts (C:\Windows if SystemRoot is unset).
func DefaultPath() string {
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	return filepath.Join(root, "System32", "drivers", "etc", "hosts")
}

// chown does nothing on Windows: files have no Unix owner, and the new file
// inherits the ACLs of its directory, as the original did.
func chown(*os.File, fs.FileInfo) error { return nil }

// syncDir does nothing on Windows, which cannot fsync a directory handle;
// the rename is os.Rename's MoveFileEx.
func syncDir(string) error { return nil }

// isMountPoint is false: Windows does not mount a file over another.
func isMountPoint(error) bool { return false }
