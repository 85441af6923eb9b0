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
	run   func(ctx context.Context) (int, string)
	reply chan commandResult
}

type commandResult struct {
	code int
	text string
}

// submit queues fn to the loop and waits for its answer.
func (a *Agent) submit(ctx context.Context, fn func(ctx context.Context) (int, string)) (int, string) {
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
	code, text := c.run(ctx)
	c.reply <- commandResult{code, text}
	a.publish(ctx)
}

// scheduledRestart is a restart waiting for its time (published in the
// member key as scheduled_restart).
type scheduledRestart struct {
	req restapi.RestartRequest
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
	return a.submit(ctx, func(ctx context.Context) (int, string) { return a.restartNow(ctx, req) })
}

// restartNow checks Patroni's conditions and restarts PostgreSQL in its
// current role, keeping the lease when leading.
func (a *Agent) restartNow(ctx context.Context, req restapi.RestartRequest) (int, string) {
	st, err := a.pg.Status(ctx)
	if err != nil && a.pgState == "starting" {
		return http.StatusServiceUnavailable, "postgres is still starting"
	}
	if !a.restartConditionsMet(req, st, err == nil) {
		return http.StatusServiceUnavailable, "restart conditions are not satisfied"
	}
	role := "replica"
	if err == nil && !st.InRecovery {
		role = "primary"
	}
	a.log.Info("restarting PostgreSQL on request", "role", role)
	a.runCallback(ctx, "on_stop", role)
	budget := a.cfg.Postgres.StopTimeout
	if req.Timeout > 0 {
		budget = req.Timeout
	}
	a.pgState = "restarting"
	if _, err := a.pg.Stop(ctx, postgres.StopFast, budget); err != nil {
		a.pgState = "restart failed (stop)"
		return http.StatusServiceUnavailable, "restart failed"
	}
	if err := a.startPG(ctx, role); err != nil {
		a.log.Error("restart: start failed", "err", err)
		return http.StatusServiceUnavailable, "restart failed"
	}
	return http.StatusOK, "restarted successfully"
}

func (a *Agent) restartConditionsMet(req restapi.RestartRequest, st postgres.Status, running bool) bool {
	if req.RestartPending && !(running && st.PendingRestart) {
		return false
	}
	if req.Role != "" {
		role := "replica"
		if running && !st.InRecovery {
			role = "primary"
		}
		want := req.Role
		if want == "master" {
			want = "primary"
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

// runScheduledRestart runs a due scheduled restart (called every tick).
func (a *Agent) runScheduledRestart(ctx context.Context) {
	r := a.restartAt
	if r == nil || time.Until(*r.req.Schedule) > 0 {
		return
	}
	a.restartAt = nil
	if time.Since(*r.req.Schedule) > 3*a.dyn.LoopWait/2+time.Minute {
		a.log.Warn("dropping an overdue scheduled restart", "schedule", r.req.Schedule)
		return
	}
	req := r.req
	req.Schedule = nil
	code, text := a.restartNow(ctx, req)
	a.log.Info("scheduled restart", "code", code, "result", text)
}

// Reload re-applies the configuration files and reloads PostgreSQL.
func (a *Agent) Reload(ctx context.Context) (int, string) {
	return a.submit(ctx, func(ctx context.Context) (int, string) {
		if _, err := a.pg.Reconfigure(); err != nil {
			a.log.Error("reload: rewriting the configuration failed", "err", err)
		}
		if a.pgState == "running" {
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
		a.log.Warn("reinitializing on request: wiping the data directory and cloning", "leader", leader, "force", force)
		if err := a.stopForSafety(ctx); err != nil {
			return http.StatusServiceUnavailable, fmt.Sprintf("reinitialize failed: %v", err)
		}
		if err := a.pg.WipeDataDir(); err != nil {
			return http.StatusServiceUnavailable, fmt.Sprintf("reinitialize failed: %v", err)
		}
		a.pgState = "creating replica"
		// The next ticks clone from the leader (empty data directory).
		return http.StatusOK, "reinitialize started"
	})
}
