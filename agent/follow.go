package agent

// A running replica follows the leader: repointed by a reload, rewound
// beside the loop when its timeline diverged.

import (
	"context"
	"fmt"

	"github.com/regent-ha/regent/postgres"
)

// follow keeps a running replica pointed at the leader. A replica that is
// not streaming from a leader on a newer timeline is checked for divergence
// and rewound (or re-cloned when rewind fails).
func (a *Agent) follow(ctx context.Context, s Snapshot, leader string) error {
	up, err := a.upstream(s.View, leader)
	if err != nil {
		return err
	}
	a.role = RoleReplica
	st := s.PG.Status
	lm := s.View.Members[leader]
	if !st.Streaming && lm.Timeline > int(st.Timeline) && a.now().Sub(a.lastRewindTry) >= rewindCheckEvery {
		a.lastRewindTry = a.now()
		hctx, cancel := a.ioContext(ctx)
		history, err := a.pg.TimelineHistory(hctx, *up, uint32(lm.Timeline))
		cancel()
		if err != nil {
			return fmt.Errorf("read %s's timeline history: %w", leader, err)
		}
		// The replay position, not the receive position: received WAL past
		// the switch point that was never replayed does not need a rewind.
		if postgres.NeedsRewind(st.Timeline, st.ReplayLSN, uint32(lm.Timeline), history) && a.sourceReady(ctx, *up, uint32(lm.Timeline)) {
			return a.rewind(ctx, *up, st, "timeline diverged from the leader; rewinding")
		}
	}
	changed, err := a.repoint(ctx, up)
	if changed {
		a.log.Info("following new upstream", "leader", leader)
	}
	if err != nil {
		return fmt.Errorf("follow %s: %w", leader, err)
	}
	// A failover candidate keeps the permanent physical slots (and drops
	// the unknown ones a former primary kept, which would hold WAL here).
	sctx, cancel := a.ioContext(ctx)
	defer cancel()
	if err := a.ensureSlots(sctx, s, false); err != nil {
		a.log.Warn("cannot keep this replica's replication slots", "err", err)
	}
	a.copyLogicalSlots(ctx, *up)
	return nil
}

// repoint writes up as PostgreSQL's upstream and, when that changed
// anything, reloads PostgreSQL, which applies the new primary_conninfo
// and slot without a restart. changed says whether the configuration
// was rewritten, even when the reload then failed.
func (a *Agent) repoint(ctx context.Context, up *postgres.Upstream) (changed bool, err error) {
	if changed, err = a.pg.ConfigureStandby(up); err != nil || !changed {
		return changed, err
	}
	rctx, cancel := a.ioContext(ctx)
	defer cancel()
	if err := a.pg.Reload(rctx); err != nil {
		return true, fmt.Errorf("reload after repointing: %w", err)
	}
	return true, nil
}

// sourceReady reports whether pg_rewind may run against up now, to bring
// this server onto target, the timeline up is on (rewindSourceReady). A
// source whose control file is still on an older timeline is asked for a
// CHECKPOINT first — a restartpoint on a standby leader, which moves its
// control file to the newest checkpoint record it replayed — and read
// again; not there yet, the rewind waits for the next check
// (rewindCheckEvery), as Patroni waits for checkpoint_after_promote.
//
// Bounded by ioContext (retry_timeout, and a leader's lease deadline), as
// every call the loop waits on: a CHECKPOINT cut short by the bound still
// completes on the source, and the next check reads its result. It writes
// nothing locally and never makes anything writable.
func (a *Agent) sourceReady(ctx context.Context, up postgres.Upstream, target uint32) bool {
	cctx, cancel := a.ioContext(ctx)
	defer cancel()
	tl, err := a.pg.SourceCheckpointTimeline(cctx, up, false)
	if err == nil && tl < target {
		tl, err = a.pg.SourceCheckpointTimeline(cctx, up, true)
	}
	ready, why := rewindSourceReady(tl, target, err)
	if !ready {
		a.log.Warn("diverged, but not rewinding yet: retrying at the next check", "source", up.Member, "reason", why)
	}
	return ready
}

// rewindIfCannotStart checks a stopped replica whose last start failed
// against the leader's timeline history with pg_controldata (the running
// check needs a running server), at most every rewindCheckEvery, and
// rewinds it beside the loop when it diverged — or wipes it for a new copy
// when pg_rewind fails, as the running path does. It reports whether the
// rewind started (then nothing else is done this tick). Found by the
// chaos suite: a replica whose every start failed ("requested timeline N
// does not contain minimum recovery point") otherwise stayed down.
//
// Safety rule: only a member without the lease gets here; its reads are
// bounded by ioContext, the rewind runs beside the loop, and the server
// it leaves starts in recovery: nothing here makes PostgreSQL writable.
func (a *Agent) rewindIfCannotStart(ctx context.Context, up postgres.Upstream, leaderTL uint32) bool {
	if a.lease.leading || a.pgState != PGStartFailed || leaderTL == 0 || a.now().Sub(a.lastRewindTry) < rewindCheckEvery {
		return false
	}
	a.lastRewindTry = a.now()
	cctx, cancel := a.ioContext(ctx)
	cd, err := a.pg.ControlData(cctx)
	var history []postgres.TimelineSwitch
	if err == nil {
		history, err = a.pg.TimelineHistory(cctx, up, leaderTL)
	}
	cancel()
	if err != nil {
		a.log.Warn("cannot check whether the replica that failed to start diverged", "leader", up.Member, "err", err)
		return false
	}
	if !stoppedDiverged(cd, leaderTL, history) || !a.sourceReady(ctx, up, leaderTL) {
		return false
	}
	tl, end, _ := cd.WALEnd()
	st := postgres.Status{InRecovery: true, Timeline: tl, ReplayLSN: end}
	_ = a.rewind(ctx, up, st, "replica cannot start and its control file diverged from the leader's timeline; rewinding")
	return true
}

// rewind brings a diverged former primary back onto the leader's history.
// When pg_rewind fails the data directory is wiped and the next tick
// re-clones: never stuck "waiting for WAL" forever.
func (a *Agent) rewind(ctx context.Context, up postgres.Upstream, st postgres.Status, why string) error {
	a.log.Warn(why, "leader", up.Member, "timeline", st.Timeline, "lsn", st.WALPosition())
	a.pgState = PGStopping
	stopTimeout := a.cfg.Postgres.StopTimeout
	// Stop and pg_rewind can take minutes: beside the loop. The next tick
	// starts the rewound replica, or clones after a wipe.
	a.startJob(ctx, "rewind", func(ctx context.Context) error {
		if _, err := a.pg.Stop(ctx, postgres.StopFast, stopTimeout); err != nil {
			return fmt.Errorf("rewind: stop: %w", err)
		}
		rctx, cancel := context.WithTimeout(ctx, cloneTimeout)
		defer cancel()
		if err := a.pg.Rewind(rctx, up); err != nil {
			a.log.Error("pg_rewind failed; wiping the data directory to re-clone", "err", err)
			if werr := a.wipeDataDir(ctx); werr != nil {
				return fmt.Errorf("rewind failed (%w) and wipe failed: %w", err, werr)
			}
			return nil
		}
		a.log.Info("rewound", "leader", up.Member)
		return nil
	}, func(error) { a.pgState = PGStopped })
	return nil
}
