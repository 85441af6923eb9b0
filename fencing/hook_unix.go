//go:build unix

package fencing

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group whose id is its pid, and
// makes the context's cancellation kill the whole group, so children such as
// a `sleep` or an `ipmitool` the script started die with it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killProcessGroup(cmd.Process.Pid)
		return nil
	}
}

// killProcessGroup sends SIGKILL to the process group pgid. ESRCH (the
// group is already gone) is the normal case after a clean exit.
func killProcessGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
