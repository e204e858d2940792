//go:build !unix

package failover

import "os/exec"

// processGroup: on Windows the hook alone is killed at its timeout
// (exec.Cmd's default cancellation).
func processGroup(cmd *exec.Cmd) {}
