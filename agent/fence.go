package agent

// Fencing is the agent stopping its own PostgreSQL so it cannot accept
// writes: past the lease deadline (fence), without the leader key
// (demote), before giving the key away (fenceBeforeRelease). The operator's
// STONITH hook against another member is in stonith.go.

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// fenceBeforeRelease stops PostgreSQL before the leader key is given away
// (nobody may promote while it can still accept writes), unless it is
// known to be a replica: a running primary, and one that does not answer —
// hung or frozen, it looks "not running" from here, and would serve as a
// primary again when it wakes. Immediate stop, up to SIGKILL of every
// server process; if even that fails the key is kept. Not in maintenance
// mode: nobody promotes automatically then, and Regent leaves PostgreSQL
// alone. The next tick starts it again as a replica.
func (a *Agent) fenceBeforeRelease(ctx context.Context, s Snapshot) error {
	if s.Config.Pause || (s.PG.Running && s.PG.Status.InRecovery) {
		return nil
	}
	if err := a.stopForSafety(ctx); err != nil {
		return fmt.Errorf("keeping the leader key: PostgreSQL could not be stopped: %w", err)
	}
	a.disarmWatchdog()
	a.pgState, a.role = PGStopped, RoleDemoted
	return nil
}

// stopForSafety is the stop of every path that must end writes: immediate,
// escalating to SIGKILL of every server process (at once for a stopped
// postmaster), all within the fence budget (leadership.fenceBudget, at
// most safety_margin).
func (a *Agent) stopForSafety(ctx context.Context) error {
	_, err := a.pg.Stop(ctx, postgres.StopImmediate, fenceBudget(a.dyn.TTL, a.cfg.Watchdog.SafetyMargin))
	return err
}

// fence stops a leader that is past its deadline (or whose earlier fence
// failed): immediate stop first, no etcd call before it, then a read-only
// restart and a best-effort release of the key (guarded by value and
// lease, so it never touches a key that someone else holds now). A failed
// stop keeps every protection: the key is not released, the watchdog stays
// armed (it fires if the agent hangs now), and the next tick fences again.
func (a *Agent) fence(ctx context.Context) {
	a.role = RoleDemoted
	if err := a.stopForSafety(ctx); err != nil {
		a.log.Error("fence: stopping PostgreSQL failed; keeping the leader key and the watchdog, retrying next tick", "err", err)
		a.setLease(a.lease.fenceFailed())
		return
	}
	// Writes are impossible now: disarm before anything slower (the
	// read-only restart, the key release) so the host is not reset.
	a.setLease(a.lease.lost())
	a.disarmWatchdog()
	a.pgState = PGStopped
	if _, err := a.pg.ConfigureStandby(nil); err != nil {
		a.log.Error("fence: cannot write standby configuration", "err", err)
		return
	}
	// ConfigureStandby made any start a read-only one; a failed start
	// leaves PostgreSQL stopped (pgState PGStartFailed) and the key is
	// still released: writes are impossible either way, and the next
	// tick starts it again as a replica.
	if err := a.startPG(ctx, RoleReplica); err != nil {
		a.log.Error("fence: restarting PostgreSQL as a replica failed; it stays stopped", "err", err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = a.dcs.ReleaseLeader(rctx, a.name)
}

// demote turns a primary that does not hold the leader key into a replica
// of leader ("" = no upstream yet): immediate stop, as Patroni's
// immediate-nolock, because someone else may already be writing.
func (a *Agent) demote(ctx context.Context, v *dcs.Cluster, leader string) error {
	a.role = RoleDemoted
	if err := a.stopForSafety(ctx); err != nil {
		return fmt.Errorf("demote: stop: %w", err)
	}
	a.disarmWatchdog()
	a.pgState = PGStopped
	return a.startReplica(ctx, v, leader)
}
