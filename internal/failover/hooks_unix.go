//go:build unix

package failover

import (
	"os/exec"
	"syscall"
)

// processGroup puts the hook in a process group of its own, and makes its
// cancellation kill the whole group: a hook that started children (a shell
// script's) leaves none behind at its timeout.
func processGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
