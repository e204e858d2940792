//go:build unix

package failover

import (
	"os/exec"
	"syscall"
	"time"
)

// processGroup puts the hook in a process group of its own, so that its
// cancellation reaches the children it started (a shell script's) too.
func processGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// kill kills the hook's whole process group at once (its timeout).
func kill(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// terminate asks the hook's process group to stop (SIGTERM), and kills it
// after grace.
func terminate(cmd *exec.Cmd, grace time.Duration) error {
	pid := cmd.Process.Pid
	if grace <= 0 {
		return syscall.Kill(-pid, syscall.SIGKILL)
	}
	time.AfterFunc(grace, func() { syscall.Kill(-pid, syscall.SIGKILL) })
	return syscall.Kill(-pid, syscall.SIGTERM)
}

// killLeftovers kills what is left of a stopped hook's process group once
// the hook itself has exited.
func killLeftovers(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
