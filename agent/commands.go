package agent

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// command is an operator request the HA loop runs between ticks, so it
// never races the loop's own actions on PostgreSQL.
type command struct {
	// run answers with a code and text, or with replyLater when it started
	// work beside the loop that answers reply itself.
	run   func(ctx context.Context, reply chan commandResult) (int, string)
	reply chan commandResult
}

// replyLater is the code of a command whose answer comes later (restart).
const replyLater = 0

type commandResult struct {
	code int
	text string
}

// submit queues fn to the loop and waits for its answer.
func (a *Agent) submit(ctx context.Context, fn func(ctx context.Context) (int, string)) (int, string) {
	return a.submitAsync(ctx, func(ctx context.Context, _ chan commandResult) (int, string) { return fn(ctx) })
}

// submitAsync queues fn, which may answer replyLater and send the answer
// on reply itself, and waits for the answer.
func (a *Agent) submitAsync(ctx context.Context, fn func(ctx context.Context, reply chan commandResult) (int, string)) (int, string) {
	c := command{run: fn, reply: make(chan commandResult, 1)}
	select {
	case a.commands <- c:
	case <-ctx.Done():
		return http.StatusServiceUnavailable, "the agent is busy; try again"
	}
	select {
	case r := <-c.reply:
		return r.code, r.text
	case <-ctx.Done():
		return http.StatusServiceUnavailable, "the command is still running"
	}
}

// runCommand executes one queued command in the loop goroutine.
func (a *Agent) runCommand(ctx context.Context, c command) {
	if code, text := c.run(ctx, c.reply); code != replyLater {
		c.reply <- commandResult{code, text}
	}
	a.publish(ctx)
}

// scheduledRestart is a restart waiting for its time (published in the
// member key as scheduled_restart).
type scheduledRestart struct {
	req restapi.RestartRequest
}

// published is the member key's scheduled_restart (Patroni's fields), so
// regentctl list and flush see it from etcd.
func (r *scheduledRestart) published() map[string]any {
	out := map[string]any{"schedule": r.req.Schedule.Format(time.RFC3339)}
	if r.req.Role != "" {
		out["role"] = r.req.Role
	}
	if r.req.PostgresVersion != "" {
		out["postgres_version"] = r.req.PostgresVersion
	}
	if r.req.RestartPending {
		out["restart_pending"] = true
	}
	if r.req.Timeout > 0 {
		out["timeout"] = r.req.Timeout.Seconds()
	}
	return out
}

// Restart restarts PostgreSQL now or schedules it (patroni-compat.md §2.4).
func (a *Agent) Restart(ctx context.Context, req restapi.RestartRequest) (int, string) {
	if req.Schedule != nil {
		return a.submit(ctx, func(context.Context) (int, string) {
			if a.dyn.Pause {
				return http.StatusInternalServerError, "Can't schedule restart in the paused state"
			}
			if a.restartAt != nil {
				return http.StatusConflict, "Another restart is already scheduled"
			}
			a.restartAt = &scheduledRestart{req: req}
			return http.StatusAccepted, "Restart scheduled"
		})
	}
	return a.submitAsync(ctx, func(ctx context.Context, reply chan commandResult) (int, string) {
		return a.restartNow(ctx, req, reply)
	})
}

// restartNow checks Patroni's conditions and restarts PostgreSQL in its
// current role, keeping the lease when leading: the stop runs beside the
// loop (restartJob), which goes on renewing; reply (nil for a scheduled
// restart) gets the answer once PostgreSQL runs again.
func (a *Agent) restartNow(ctx context.Context, req restapi.RestartRequest, reply chan commandResult) (int, string) {
	if a.restart != nil || a.quiesce != nil {
		return http.StatusServiceUnavailable, "a restart or a switchover is already in progress"
	}
	if a.job != nil {
		return http.StatusServiceUnavailable, a.busyWith() + "; PostgreSQL is its own until it ends"
	}
	st, err := a.pg.Status(ctx)
	if err != nil && a.pgState == PGStarting {
		return http.StatusServiceUnavailable, "postgres is still starting"
	}
	if !restartConditionsMet(req, st, err == nil) {
		return http.StatusServiceUnavailable, "restart conditions are not satisfied"
	}
	role := RoleReplica
	if err == nil && !st.InRecovery {
		role = RolePrimary
	}
	budget := a.cfg.Postgres.StopTimeout
	if req.Timeout > 0 {
		budget = req.Timeout
	}
	return a.beginRestart(ctx, role, budget, reply)
}

// restartConditionsMet: the conditions of POST /restart (Patroni's
// restart_pending, role, postgres_version) hold for this member now.
func restartConditionsMet(req restapi.RestartRequest, st postgres.Status, running bool) bool {
	if req.RestartPending && (!running || !st.PendingRestart) {
		return false
	}
	if req.Role != "" {
		role := RoleReplica
		if running && !st.InRecovery {
			role = RolePrimary
		}
		want := Role(req.Role)
		if want == "master" {
			want = RolePrimary
		}
		if want != role {
			return false
		}
	}
	if req.PostgresVersion != "" && running && !serverOlderThan(st.ServerVersion, req.PostgresVersion) {
		return false
	}
	return true
}

// serverOlderThan compares server_version_num (150004) with "15.5".
func serverOlderThan(num int, version string) bool {
	major, minor, _ := strings.Cut(version, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || (minor != "" && err2 != nil) {
		return false
	}
	if ma < 10 { // 9.6 → 90600
		return num < ma*10000+mi*100
	}
	return num < ma*10000+mi
}

// CancelRestart deletes a scheduled restart.
func (a *Agent) CancelRestart(ctx context.Context) (int, string) {
	return a.submit(ctx, func(context.Context) (int, string) {
		if a.restartAt == nil {
			return http.StatusNotFound, "no restarts are scheduled"
		}
		a.restartAt = nil
		return http.StatusOK, "scheduled restart deleted"
	})
}

// scheduledRestartStep is what the loop does with a scheduled restart.
type scheduledRestartStep int

const (
	// restartNotDue: none is scheduled, or its time has not come.
	restartNotDue scheduledRestartStep = iota
	// restartDue: run it now.
	restartDue
	// restartOverdue: its time passed long ago (the agent was down or
	// stuck); drop it rather than restart at a moment nobody chose.
	restartOverdue
)

// decideScheduledRestart: due once its time has come, overdue past
// 1.5·loop_wait + 1 min after it.
func decideScheduledRestart(s Snapshot) scheduledRestartStep {
	at := s.ScheduledRestart
	switch {
	case at.IsZero() || at.After(s.Now):
		return restartNotDue
	case s.Now.Sub(at) > 3*s.Config.LoopWait/2+time.Minute:
		return restartOverdue
	}
	return restartDue
}

// runScheduledRestart carries out decideScheduledRestart (every tick).
func (a *Agent) runScheduledRestart(ctx context.Context, step scheduledRestartStep) {
	r := a.restartAt
	if step == restartNotDue || r == nil { // commands run between ticks: r is the snapshot's
		return
	}
	a.restartAt = nil
	if step == restartOverdue {
		a.log.Warn("dropping an overdue scheduled restart", "schedule", r.req.Schedule)
		return
	}
	req := r.req
	req.Schedule = nil
	if code, text := a.restartNow(ctx, req, nil); code != replyLater {
		a.log.Info("scheduled restart", "code", code, "result", text)
	}
}

// Reload re-applies the configuration files and reloads PostgreSQL.
func (a *Agent) Reload(ctx context.Context) (int, string) {
	return a.submit(ctx, func(ctx context.Context) (int, string) {
		if _, err := a.pg.Reconfigure(); err != nil {
			a.log.Error("reload: rewriting the configuration failed", "err", err)
		}
		if a.pgState == PGRunning {
			rctx, cancel := a.ioContext(ctx)
			defer cancel()
			if err := a.pg.Reload(rctx); err != nil {
				a.log.Error("reload failed", "err", err)
			}
		}
		return http.StatusAccepted, "reload scheduled"
	})
}

// Reinitialize wipes this replica and clones it again from the leader.
func (a *Agent) Reinitialize(ctx context.Context, force bool) (int, string) {
	return a.submit(ctx, func(ctx context.Context) (int, string) {
		v := a.dcs.View()
		leader := v.LeaderName()
		switch {
		case leader == "":
			return http.StatusServiceUnavailable, "Cluster has no leader, can not reinitialize"
		case leader == a.name || a.lease.leading:
			return http.StatusServiceUnavailable, "I am the leader, can not reinitialize"
		}
		// The guard first (it only reads), so a refusal leaves PostgreSQL
		// running too and says why even while a clone retries in vain.
		rctx, cancel := a.ioContext(ctx)
		defer cancel()
		if err := a.checkWipe(rctx); err != nil {
			a.log.Error("reinitialize refused", "err", err)
			return reinitializeFailed(err)
		}
		if a.job != nil || a.restart != nil {
			return http.StatusServiceUnavailable, "reinitialize failed: " + a.busyWith()
		}
		a.log.Warn("reinitializing on request: wiping the data directory and cloning", "leader", leader, "force", force)
		// The stop and the wipe (minutes for a large data directory) run
		// beside the loop; decide waits while the job runs, and the next
		// ticks after it clone from the leader (empty data directory).
		a.pgState = PGStopping
		a.startJob(ctx, "reinitialize", func(ctx context.Context) error {
			if err := a.stopForSafety(ctx); err != nil {
				return fmt.Errorf("reinitialize: stop: %w", err)
			}
			return a.wipeDataDir(ctx)
		}, func(err error) {
			a.pgState = PGStopped
			if err == nil {
				a.pgState = PGCreatingReplica
			}
		})
		return http.StatusOK, "reinitialize started"
	})
}
