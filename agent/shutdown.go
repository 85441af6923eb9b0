package agent

// The agent's clean exit when Run's context ends.

import (
	"context"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// shutdown stops PostgreSQL (fast, escalating within stop_timeout) and only
// then releases the leader key, so the replicas have the shutdown
// checkpoint when they race. The member key is left to expire with the
// lease, as Patroni does, showing state "stopped" meanwhile.
func (a *Agent) shutdown(ctx context.Context) {
	if a.dyn.Pause {
		// Maintenance mode: PostgreSQL and the lock stay as the operator
		// left them (Patroni does the same); the lease lapses on its own.
		a.disarmWatchdog()
		a.log.Info("shutting down in maintenance mode: PostgreSQL left running")
		return
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(ctx, a.cfg.Postgres.StopTimeout+5*time.Second)
	defer cancel()
	a.leaveSyncDuty(sctx)
	a.pgState = PGStopping
	mode, err := a.pg.Stop(sctx, postgres.StopFast, a.cfg.Postgres.StopTimeout)
	if err != nil && a.lease.leading {
		// One rule for every release: the key goes only once writes are
		// impossible. A last immediate stop, then keep the key and the
		// watchdog (it resets the host) rather than hand over a writable
		// primary.
		a.log.Error("stopping PostgreSQL failed; trying an immediate stop", "err", err)
		if err = a.stopForSafety(context.WithoutCancel(ctx)); err != nil {
			a.log.Error("PostgreSQL could not be stopped: keeping the leader key and the watchdog armed", "err", err)
			return
		}
		mode = postgres.StopImmediate
	}
	if err != nil {
		a.log.Error("stopping PostgreSQL failed", "err", err)
	} else {
		a.log.Info("PostgreSQL stopped", "mode", mode)
		a.pgState = PGStopped
	}
	a.disarmWatchdog()
	// The member key says "stopped" before the leader key goes: a candidate
	// reads it as a clean step-down and skips fence.command.
	a.publish(sctx)
	// A stopped member suspects nobody (fast failover).
	a.fast.suspect = suspicion{}
	a.syncSuspectKey(sctx)
	if a.lease.leading {
		a.release(sctx)
	}
	a.log.Info("agent stopped")
}
