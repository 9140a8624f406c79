package chaos

import (
	"os"
	"syscall"
)

// processAlive reports whether a process with that pid exists (signal 0:
// no signal is sent, only the check). Where signals do not exist
// (Windows), it reports false: the /proc check that follows it is
// Linux-only anyway.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

// killProcess kills the process (SIGKILL where signals exist), as a plugin
// crash does.
func killProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
