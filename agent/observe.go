package agent

import (
	"context"
	"errors"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// observe builds the tick's Snapshot, complete: nothing modifies it
// afterwards. The only I/O is the PostgreSQL status query and, when the
// cluster has no leader, the peers' status. restart is the phase of a
// requested restart, collected before (restartProgress).
func (a *Agent) observe(ctx context.Context, restart RestartPhase) Snapshot {
	now := a.now()
	s := Snapshot{
		Now: now, Name: a.name, Tags: a.cfg.Tags, Config: a.dyn,
		CreateWithoutLeader: len(a.cfg.Postgres.ReplicaMethods(false)) > 0,
		View:                a.dcs.View(),
		ViewFresh:           now.Sub(a.dcs.LastContact()) < a.dyn.TTL,
		Lease:               a.leaseState(),
		WatchdogUsable:      a.wd.Usable(),
		Restart:             restart,
		Busy:                a.busy(),
	}
	if r := a.restartAt; r != nil {
		s.ScheduledRestart = *r.req.Schedule
	}
	s.PreviousLeader, s.StonithConfigured = a.previousLeader, len(a.cfg.Fence.Command) > 0
	s.FailsafeHold = a.failsafeHold()
	if s.View != nil {
		if t, ok := s.View.Failsafe(); ok {
			s.FailsafeTopology = t
		}
	}
	s.Switchover = a.activeSwitchover(s.View)
	s.Quiescing = a.quiesce != nil
	s.PG = a.observePostgres(ctx)
	s.Now = a.now()
	s.WALSeen, a.walSeen = a.walSeen, a.walSeen.noteWAL(s.PG, s.Now)
	// The named candidate of a switchover or failover races without
	// comparing itself with its peers (decideDesignated; only maintenance
	// mode reads them): asking them would only delay its promotion.
	designated := s.View != nil && s.View.Failover.Member == a.name && !a.dyn.Pause
	if s.View != nil && s.View.Leader == nil && s.PG.Running && s.PG.Status.InRecovery && !a.lease.leading && !designated {
		s.Peers = a.fetchPeers(ctx, s.View, "")
		s.Now = a.now()
	}
	a.observeFastPath(ctx, &s)
	// The leaderless episode, as of this snapshot (PreviousLeader above is
	// the leader seen before it).
	a.trackLeader(s.View, s.Now)
	s.LeaderlessSince = a.leaderlessSince
	if l := s.View.LeaderName(); l != "" && l != a.name && s.PG.Running && s.PG.Status.Streaming {
		a.streamLastSeen = s.Now
	}
	return s
}

func (a *Agent) observePostgres(ctx context.Context) PGState {
	var st PGState
	empty, err := a.pg.DataDirEmpty()
	if err != nil {
		a.log.Warn("cannot read the data directory", "err", err)
	}
	st.DataDirEmpty = empty && err == nil
	asked := a.now()
	if !st.DataDirEmpty {
		qctx, cancel := a.ioContext(ctx)
		status, err := a.pg.Status(qctx)
		// Out of time, whatever the error says (a connect that timed out
		// reads as "not running"): the server is there but hung or frozen.
		st.Unresponsive = err != nil && qctx.Err() != nil
		cancel()
		if err == nil {
			st.Running, st.Status, st.SystemID = true, status, status.SystemID
		} else if !errors.Is(err, postgres.ErrNotRunning) {
			a.log.Debug("postgres status", "err", err)
		}
		if !st.Running {
			cctx, cancel := a.ioContext(ctx)
			if cd, err := a.pg.ControlData(cctx); err == nil {
				st.SystemID = cd.SystemID
			}
			cancel()
		}
	}
	switch {
	case st.Running:
		a.pgDownSince = time.Time{}
		a.pgState = PGRunning
	case a.pgDownSince.IsZero():
		// Down since the query that went unanswered was sent, not since it
		// timed out: a hung server is detected retry_timeout sooner.
		a.pgDownSince = asked
		if a.pgState == PGRunning {
			a.pgState = PGCrashed
		}
	}
	st.DownSince = a.pgDownSince
	return st
}
