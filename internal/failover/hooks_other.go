//go:build !unix

package failover

import (
	"os/exec"
	"time"
)

// processGroup: on Windows the hook alone is killed (exec.Cmd's Kill).
func processGroup(cmd *exec.Cmd) {}

func kill(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// terminate kills at once: Windows has no SIGTERM to send a process.
func terminate(cmd *exec.Cmd, _ time.Duration) error { return cmd.Process.Kill() }

func killLeftovers(*exec.Cmd) {}
