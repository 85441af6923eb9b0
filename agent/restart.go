package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// restartJob is a restart in progress (POST /restart or a scheduled one).
// Its stop can take up to stop_timeout or the request's timeout — longer
// than the lease — so it runs beside the loop, the way a switchover's stop
// does: the loop keeps renewing, fence-checking and pinging meanwhile, and
// once the stop ends, the loop itself starts PostgreSQL again in its role
// (decide's in-place start, bounded by the lease deadline for a leader).
// The background stop never starts anything: only the loop, which holds
// or does not hold the lease at that moment, decides what PostgreSQL
// becomes.
type restartJob struct {
	// stop is the background stop; nil once it ended, and then the loop
	// starts PostgreSQL.
	stop *job
	// reply, when set, answers the waiting POST /restart.
	reply chan commandResult
}

// beginRestart starts the background stop. It returns replyLater: the
// loop answers reply when PostgreSQL runs again (or failed to).
func (a *Agent) beginRestart(ctx context.Context, role Role, budget time.Duration, reply chan commandResult) (int, string) {
	a.log.Info("restarting PostgreSQL on request: stopping beside the loop", "role", role, "budget", budget)
	a.runCallback(ctx, "on_stop", role)
	r := &restartJob{reply: reply}
	a.restart = r
	a.pgState = PGRestarting
	r.stop = a.goBeside(context.WithoutCancel(ctx), "restart stop", func(ctx context.Context) error {
		// Bounded inside Stop (fast, escalating within budget).
		sctx, cancel := context.WithTimeout(ctx, budget+stopSlack)
		defer cancel()
		_, err := a.pg.Stop(sctx, postgres.StopFast, budget)
		return err
	}, a.restartStopped)
	return replyLater, ""
}

// RestartPhase is where a requested restart stands, as decide sees it.
type RestartPhase int

const (
	// RestartNone: no restart in progress.
	RestartNone RestartPhase = iota
	// RestartStopping: the stop runs beside the loop; PostgreSQL is going
	// down on purpose and must not be started yet.
	RestartStopping
	// RestartStarting: the stop ended; PostgreSQL is to start again in
	// its role (also in maintenance mode: the operator asked for it).
	RestartStarting
)

// stopSlack is the context slack around a stop budget: Stop itself ends
// within its budget, the context only guards against a stuck pg_ctl.
const stopSlack = 5 * time.Second

// restartProgress collects the background stop's result without blocking
// (the loop calls it at the start of every tick) and reports the phase.
func (a *Agent) restartProgress() RestartPhase {
	if r := a.restart; r != nil && r.stop != nil && !a.collect(r.stop) {
		return RestartStopping
	}
	if a.restart != nil {
		return RestartStarting
	}
	return RestartNone
}

// restartStopped records the end of the stop. A failed stop ends the
// restart; a successful one leaves PostgreSQL down for the loop to start,
// with a fresh down-since (the in-place start of a leader is measured
// from now against primary_start_timeout, not from the stop's start).
func (a *Agent) restartStopped(err error) {
	a.restart.stop = nil
	if err != nil {
		a.pgState = PGRestartFailed
		a.finishRestart(http.StatusServiceUnavailable, "restart failed")
		return
	}
	a.pgState = PGStopped
	a.pgDownSince = time.Time{}
}

// settleRestart answers a restart whose stop ended, once this tick's act
// started PostgreSQL (or failed to).
func (a *Agent) settleRestart() {
	if r := a.restart; r == nil || r.stop != nil {
		return
	}
	switch a.pgState {
	case PGRunning:
		a.finishRestart(http.StatusOK, "restarted successfully")
	case PGStartFailed:
		a.finishRestart(http.StatusServiceUnavailable, "restart failed")
	}
}

func (a *Agent) finishRestart(code int, text string) {
	if job := a.restart; job != nil && job.reply != nil {
		job.reply <- commandResult{code, text}
	}
	a.log.Info("restart finished", "code", code, "result", text)
	a.restart = nil
}
