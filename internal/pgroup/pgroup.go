package pgroup

import (
	"os/exec"
	"syscall"
	"time"
)

// waitDelay is how long Wait waits, after the command exited or was
// killed, for stray descendants still holding its output pipe.
const waitDelay = time.Second

// Own puts cmd (made with exec.CommandContext) in a process group of its
// own and makes the context's end kill that whole group. Call it before
// cmd starts.
func Own(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
}
