package agent

// A standby cluster (standby_cluster in the dynamic config) has a standby
// leader: the member holding the leader key runs PostgreSQL in recovery,
// replicating from the remote cluster's primary (standby_cluster host and
// port, or its archive), and the other members cascade from it.
//
// How it keeps the safety rule: a standby leader never accepts writes —
// PostgreSQL stays in recovery, every path here configures and starts it
// as a standby, and /primary answers 503. Holding the lease only decides
// which member replicates from the remote. The only way out of recovery is
// the ordinary promotion of a leader that holds the key (ActPromote),
// which decide plans only once standby_cluster is gone from the config
// (regentctl promote-cluster), bounded by the lease deadline as every
// promotion. A primary turned into a standby leader (demote-cluster) stops
// before anything else, and keeps the key throughout, so no other member
// races meanwhile. A switchover inside the standby cluster
// (switchover/standby.go) adds no way out of recovery: the old standby
// leader stops beside the loop and hands the key over by the failover key
// and a release; the candidate takes it by the create-if-absent race,
// which in a standby cluster only turns it to the remote (race); a failed
// one restarts the old standby leader in recovery (restoreLeader).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/postgres"
)

// standby reports whether the snapshot's config makes this a standby cluster.
func (s *Snapshot) standby() bool { return s.Config.StandbyCluster.Active() }

// decideStandbyLeader: this member holds the leader key of a standby
// cluster, PostgreSQL runs, and its watchdog is usable (decideRunning
// ruled the rest out).
func decideStandbyLeader(s Snapshot) Plan {
	sc := s.Config.StandbyCluster
	if !s.PG.Status.InRecovery {
		return plan(ActDemoteStandby, "", "standby_cluster is set but PostgreSQL runs as a primary; demoting it to the standby leader of %s (stop, pg_rewind, restart in recovery; the leader key is kept)", remoteName(sc.Host, sc.Port))
	}
	return plan(ActStandbyLead, "", "standby leader: replicating from %s; PostgreSQL stays in recovery", remoteName(sc.Host, sc.Port))
}

func remoteName(host string, port int) string {
	if host == "" {
		return "the remote archive (restore_command)"
	}
	return fmt.Sprintf("%s:%d", host, port)
}

// standbyLead keeps the standby leader pointed at the remote cluster: a
// changed standby_cluster (a new host, a moved slot) is written and
// reloaded, which PostgreSQL applies without a restart. The members'
// slots are kept here as on a primary, since they cascade from it.
func (a *Agent) standbyLead(ctx context.Context, s Snapshot) error {
	a.role = RoleStandbyLeader
	up := s.Config.StandbyCluster.Upstream()
	if a.remoteDiverged(ctx, *up, s.PG.Status) {
		return a.rewind(ctx, *up, s.PG.Status, "standby leader diverged from the remote cluster's new timeline; rewinding")
	}
	changed, err := a.repoint(ctx, up)
	if changed {
		a.log.Info("standby leader: following the remote cluster", "host", up.Host, "port", up.Port)
	}
	if err != nil {
		return fmt.Errorf("standby leader: %w", err)
	}
	sctx, cancel := a.ioContext(ctx)
	defer cancel()
	if err := a.ensureSlots(sctx, s, true); err != nil {
		a.log.Warn("standby leader: cannot keep the members' replication slots", "err", err)
	}
	// Its received position is the standby cluster's optime, as Patroni's
	// standby leader publishes it: the members' lag limit for elections.
	lctx, cancel2 := a.ioContext(ctx)
	defer cancel2()
	a.writeStatus(lctx, uint64(s.PG.Status.WALPosition()))
	return nil
}

// remoteDiverged checks, at most every rewindCheckEvery while the standby
// leader is not streaming, whether the remote moved to a new timeline
// that forked before what this server replayed (the remote failed over
// to a member that lacked WAL the standby leader had received). Then
// only pg_rewind (or a new copy) lets it follow again.
func (a *Agent) remoteDiverged(ctx context.Context, up postgres.Upstream, st postgres.Status) bool {
	if st.Streaming || up.Host == "" || a.now().Sub(a.lastRewindTry) < rewindCheckEvery {
		return false
	}
	a.lastRewindTry = a.now()
	next := st.Timeline + 1
	hctx, cancel := a.ioContext(ctx)
	defer cancel()
	history, err := a.pg.TimelineHistory(hctx, up, next)
	if err != nil || len(history) == 0 {
		// No newer timeline there (or the remote is unreachable): keep
		// retrying the stream.
		a.log.Debug("standby leader: remote has no newer timeline to check", "timeline", next, "err", err)
		return false
	}
	// The remote's control file must show its new timeline first, or
	// pg_rewind finds nothing to do (sourceReady).
	return postgres.NeedsRewind(st.Timeline, st.ReplayLSN, next, history) && a.sourceReady(ctx, up, next)
}

// startStandbyLeader starts PostgreSQL in recovery following the remote,
// bounded by the lease deadline like a leader's start.
func (a *Agent) startStandbyLeader(ctx context.Context, s Snapshot) error {
	return a.startStandbyLeaderOf(ctx, s.Config.StandbyCluster)
}

func (a *Agent) startStandbyLeaderOf(ctx context.Context, sc *config.StandbyCluster) error {
	if _, err := a.pg.ConfigureStandby(sc.Upstream()); err != nil {
		return fmt.Errorf("start standby leader: %w", err)
	}
	return a.startPG(ctx, RoleStandbyLeader)
}

// demoteToStandby turns a primary into the standby leader beside the
// loop: a fast stop (a clean shutdown checkpoint, so pg_rewind can compare
// histories), then pg_rewind against the remote — it does nothing when
// this server's history is already part of the remote's — or a wipe when
// it fails, after which the next tick clones the remote again.
func (a *Agent) demoteToStandby(ctx context.Context, s Snapshot) error {
	a.role = RoleDemoted
	a.disarmWatchdog()
	return a.rewind(ctx, *s.Config.StandbyCluster.Upstream(), s.PG.Status, "standby_cluster set: demoting the primary to the standby leader")
}

// cloneRemote copies the remote cluster beside the loop (a standby
// cluster's first member, or a standby leader whose rewind failed).
func (a *Agent) cloneRemote(ctx context.Context, s Snapshot, done func(error)) {
	up := s.Config.StandbyCluster.Upstream()
	a.pgState, a.role = PGCreatingReplica, RoleStandbyLeader
	a.startJob(ctx, "clone of the remote cluster", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, cloneTimeout)
		defer cancel()
		if err := a.pg.CreateReplica(cctx, up); err != nil {
			return fmt.Errorf("create a copy of %s: %w", remoteName(up.Host, up.Port), err)
		}
		return nil
	}, done)
}

// bootstrapStandby creates a standby cluster: after winning the initialize
// key it clones the remote and starts it in recovery beside the loop, then
// writes initialize (the remote's system id, which it shares), the config
// and the leader key. It runs no SQL that writes: the roles come with
// the copy. A failure is undone as a failed bootstrap is.
func (a *Agent) bootstrapStandby(ctx context.Context, s Snapshot) error {
	rctx, cancel := a.ioContext(ctx)
	won, err := a.dcs.CreateInitialize(rctx)
	cancel()
	if err != nil || !won {
		a.log.Info("standby bootstrap race not won", "err", err)
		return nil
	}
	a.log.Info("won the bootstrap race; creating a standby cluster from the remote cluster")
	a.cloneRemote(ctx, s, func(err error) {
		if err == nil {
			ictx, cancel := context.WithTimeout(ctx, initdbTimeout)
			err = a.finishStandbyBootstrap(ictx, s)
			cancel()
		}
		if err != nil {
			a.abortBootstrap(ctx)
			a.fatal = fmt.Errorf("standby bootstrap failed: %w", err)
		}
	})
	return nil
}

func (a *Agent) finishStandbyBootstrap(ctx context.Context, s Snapshot) error {
	a.pgState = PGStarting
	if err := a.startStandbyLeader(ctx, s); err != nil {
		return err
	}
	st, err := a.waitStatus(ctx)
	if err != nil {
		return err
	}
	if err := a.writeClusterKeys(ctx, st.SystemID); err != nil {
		return err
	}
	a.role = RoleStandbyLeader
	a.log.Info("standby cluster initialized", "system_id", st.SystemID)
	return nil
}

// waitStatus polls the status of a server that just started (a standby
// accepts connections once consistent), bounded by ctx.
func (a *Agent) waitStatus(ctx context.Context) (postgres.Status, error) {
	for {
		st, err := a.pg.Status(ctx)
		if err == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return postgres.Status{}, errors.Join(err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
