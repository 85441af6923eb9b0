package agent

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// runCallback starts the callback for action in the background.
func (a *Agent) runCallback(ctx context.Context, action, role string) {
	var argv []string
	switch action {
	case "on_role_change":
		argv = a.cfg.Callbacks.OnRoleChange
	case "on_start":
		argv = a.cfg.Callbacks.OnStart
	case "on_stop":
		argv = a.cfg.Callbacks.OnStop
	}
	if len(argv) == 0 {
		return
	}
	args := append(append([]string{}, argv[1:]...), action, role, a.cfg.Scope)
	timeout := a.cfg.Callbacks.Timeout
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, argv[0], args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case cctx.Err() != nil:
			a.log.Error("callback killed at its timeout", "action", action, "role", role, "timeout", timeout)
		case err != nil:
			a.log.Error("callback failed", "action", action, "role", role, "err", err, "took", took, "output", tail(string(out), 512))
		default:
			a.log.Info("callback ran", "action", action, "role", role, "took", took)
		}
	}()
}

// noteRoleChange fires on_role_change when the published role changed.
func (a *Agent) noteRoleChange(ctx context.Context) {
	role := a.role
	if role != "primary" && role != "replica" {
		return
	}
	if a.callbackRole != "" && a.callbackRole != role {
		a.runCallback(ctx, "on_role_change", role)
	}
	a.callbackRole = role
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
