//go:build unix

package pluginhost

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup starts the plugin as the leader of its own process group.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to the plugin's process group.
func killGroup(_ *exec.Cmd, pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
