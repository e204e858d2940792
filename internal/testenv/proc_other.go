//go:build !linux

package testenv

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

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

// lockFile is not needed outside Linux: wine runs on Linux only.
func lockFile(f *os.File, limit time.Duration) error {
	return errors.New("file locks are used on Linux only")
}
