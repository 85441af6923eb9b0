package agent

import (
	"context"
	"os/exec"
	"time"

	"github.com/regent-ha/regent/internal/pgroup"
)

// runCallback starts the callback for action in the background.
func (a *Agent) runCallback(ctx context.Context, action string, role Role) {
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
	args := append(append([]string{}, argv[1:]...), action, string(role), a.cfg.Scope)
	timeout := a.cfg.Callbacks.Timeout
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		cmd := exec.CommandContext(cctx, argv[0], args...)
		pgroup.Own(cmd)
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

// decideRoleChange: on_role_change fires when the role this tick settled
// on (primary or replica; a demoted or uninitialized member is between
// roles) differs from the one last reported; the first role seen is only
// remembered. It returns whether to fire and the role to remember.
func decideRoleChange(reported, role Role) (fire bool, remember Role) {
	if role != RolePrimary && role != RoleReplica {
		return false, reported
	}
	return reported != "" && reported != role, role
}

// noteRoleChange fires on_role_change when the published role changed.
// The role is the one act left, so this runs after act, not over the
// snapshot.
func (a *Agent) noteRoleChange(ctx context.Context) {
	fire, remember := decideRoleChange(a.callbackRole, a.role)
	if fire {
		a.runCallback(ctx, "on_role_change", a.role)
	}
	a.callbackRole = remember
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
