//go:build !linux

package testenv

import "os/exec"

// setProcAttr does nothing outside Linux: there is no parent-death signal,
// and the emulators do not start children of their own.
func setProcAttr(cmd *exec.Cmd) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// killGroup kills the child.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
