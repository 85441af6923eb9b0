package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// Budgets for PostgreSQL operations that are not bounded by the lease.
const (
	startTimeout   = 60 * time.Second
	cloneTimeout   = 30 * time.Minute
	promoteTimeout = 30 * time.Second
	// rewindCheckEvery throttles the divergence check of a replica that is
	// not streaming, which costs a query to the leader.
	rewindCheckEvery = 5 * time.Second
)

// act executes a plan. Destructive steps re-check their preconditions.
// It returns an error only when the agent must stop.
func (a *Agent) act(ctx context.Context, s Snapshot, p Plan) error {
	var err error
	switch p.Action.Kind {
	case ActWait:
	case ActFence:
		a.fence(ctx)
	case ActDemote:
		err = a.demote(ctx, s.View, p.Action.Leader)
	case ActBootstrap:
		return a.bootstrap(ctx)
	case ActClone:
		err = a.clone(ctx, s.View, p.Action.Leader)
	case ActStartPrimary:
		err = a.startPrimary(ctx)
	case ActStartReplica:
		err = a.startReplica(ctx, s.View, p.Action.Leader)
	case ActFollow:
		err = a.follow(ctx, s, p.Action.Leader)
	case ActRace:
		err = a.race(ctx, s, p)
	case ActFastFence:
		a.startFastFence(ctx, s, p)
	case ActFastTakeover:
		err = a.fastTakeover(ctx, s, p)
	case ActPromote:
		err = a.promote(ctx, s.View)
	case ActAcquire:
		err = a.acquire(ctx)
	case ActLead:
		err = a.lead(ctx, s)
	case ActRelease:
		if err = a.fenceBeforeRelease(ctx, s); err == nil {
			a.release(ctx)
		}
	case ActRefuse:
		return fmt.Errorf("%w: %s", ErrRefused, p.Reason)
	case ActBootstrapStandby:
		err = a.bootstrapStandby(ctx, s)
	case ActCloneRemote:
		a.cloneRemote(ctx, s, func(error) { a.pgState = PGStopped })
	case ActStartStandbyLeader:
		err = a.startStandbyLeader(ctx, s)
	case ActStandbyLead:
		err = a.standbyLead(ctx, s)
	case ActDemoteStandby:
		err = a.demoteToStandby(ctx, s)
	}
	if err != nil {
		a.log.Error("action failed", "action", p.Action.Kind, "err", err)
	}
	a.syncHBA(ctx, s)
	return nil
}

func (a *Agent) startPrimary(ctx context.Context) error {
	if _, err := a.pg.ConfigurePrimary(); err != nil {
		return fmt.Errorf("start primary: %w", err)
	}
	return a.startPG(ctx, RolePrimary)
}

// startReplica starts PostgreSQL in recovery, following leader's member
// key in the view the plan was decided on. With a leader on another
// timeline it starts without an upstream first: the running replica's
// replay position then tells follow whether a rewind is needed.
func (a *Agent) startReplica(ctx context.Context, v *dcs.Cluster, leader string) error {
	up, err := a.upstream(v, leader)
	if err != nil {
		a.log.Warn("cannot follow leader yet", "leader", leader, "err", err)
	}
	if up != nil {
		m, ok := v.Members[leader]
		if ok && a.rewindIfCannotStart(ctx, *up, uint32(m.Timeline)) {
			return nil
		}
		if ok && !a.sameTimeline(ctx, m.Timeline) {
			up = nil
		}
	}
	if _, err := a.pg.ConfigureStandby(up); err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	err = a.startPG(ctx, RoleReplica)
	if errors.Is(err, postgres.ErrDivergedHistory) && !a.lease.leading {
		// A replica past the fork of the timeline it must follow (pg_rewind
		// saw nothing to undo): it holds nothing the leader has not, and
		// can never start, so it is copied again — remove_data_directory_
		// on_diverged_timelines, which Regent always does. The wipe runs as
		// a job so nothing (pg_hba.conf) is written into the emptied
		// directory this tick; the next tick clones from the leader.
		a.log.Warn("replica diverged from the leader's timeline and cannot start; wiping the data directory to re-clone", "err", err)
		a.startJob(ctx, "wipe of a diverged replica", a.wipeDataDir, func(error) { a.pgState = PGStopped })
	}
	return err
}

// sameTimeline reports whether the stopped local server is on timeline tl.
func (a *Agent) sameTimeline(ctx context.Context, tl int) bool {
	cctx, cancel := a.ioContext(ctx)
	defer cancel()
	cd, err := a.pg.ControlData(cctx)
	return err == nil && int(cd.Timeline) == tl
}

func (a *Agent) startPG(ctx context.Context, role Role) error {
	a.pgState = PGStarting
	if role != RolePrimary {
		a.applyStandbyFloor(ctx)
		// Publish the member key before pg_ctl waits for consistency: the
		// leader recreates this member's replication slot from it, and a
		// standby that needs WAL from the slot could not start without it.
		// The key needs a lease: this tick may just have found ours
		// expired (a member cut off long enough to be rewound).
		lctx, lcancel := a.ioContext(ctx)
		a.ensureLease(lctx)
		lcancel()
		a.publish(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	if a.lease.leading {
		// A leader must not outlive its deadline inside pg_ctl start.
		sctx, cancel = a.ioContextUntilDeadline(ctx)
	}
	defer cancel()
	if err := a.pg.Start(sctx); err != nil {
		a.pgState = PGStartFailed
		return fmt.Errorf("start as %s: %w", role, err)
	}
	a.pgState, a.role = PGRunning, role
	if role != RolePrimary {
		a.dropStandbyFloor(ctx)
	}
	a.runCallback(ctx, "on_start", role)
	return nil
}

// dropStandbyFloor removes the start-time floor once the standby runs: the
// running server keeps the values it started with, and the file says what
// is configured, so a setting below the primary's shows as pending_restart
// (as in Patroni) instead of being hidden; the next start applies the
// floor again from pg_control.
func (a *Agent) dropStandbyFloor(ctx context.Context) {
	if !a.floorRaises {
		a.pg.SetStandbyFloor(nil)
		return
	}
	a.floorRaises = a.pg.SetStandbyFloor(nil)
	changed, err := a.pg.Reconfigure()
	if err != nil {
		a.log.Warn("cannot rewrite postgresql.conf without the standby floor", "err", err)
		return
	}
	if changed {
		rctx, cancel := a.ioContext(ctx)
		defer cancel()
		_ = a.pg.Reload(rctx)
	}
}

func (a *Agent) ioContextUntilDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, a.lease.deadline())
}

func (a *Agent) clone(ctx context.Context, v *dcs.Cluster, leader string) error {
	up, err := a.upstream(v, leader)
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	a.pgState, a.role = PGCreatingReplica, RoleReplica
	// Minutes for a large database: beside the loop. The next tick starts
	// the new replica (or clones again after a failure: Clone removes a
	// partial copy).
	a.startJob(ctx, "clone", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, cloneTimeout)
		defer cancel()
		if err := a.pg.CreateReplica(cctx, up); err != nil {
			return fmt.Errorf("create replica of %s: %w", leader, err)
		}
		return nil
	}, func(error) { a.pgState = PGStopped })
	return nil
}

// release gives up the leader key (guarded by value and lease).
func (a *Agent) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeout)
	defer cancel()
	if err := a.dcs.ReleaseLeader(rctx, a.name); err != nil {
		a.log.Warn("releasing the leader key failed", "err", err)
	}
	a.setLease(a.lease.lost())
}

// upstream resolves a member's PostgreSQL address from its conn_url in v
// (the snapshot's view: act works from what decide saw).
func (a *Agent) upstream(v *dcs.Cluster, leader string) (*postgres.Upstream, error) {
	if leader == "" {
		return nil, nil
	}
	m, ok := v.Members[leader]
	if !ok {
		return nil, fmt.Errorf("leader %s has no member key", leader)
	}
	host, port, err := parseConnURL(m.ConnURL)
	if err != nil {
		return nil, fmt.Errorf("leader %s: %w", leader, err)
	}
	return &postgres.Upstream{Member: leader, Host: host, Port: port}, nil
}

func parseConnURL(s string) (string, int, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", 0, fmt.Errorf("conn_url %q: %w", s, err)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portStr = u.Host, "5432"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("conn_url %q has no usable host:port", s)
	}
	return host, port, nil
}

// applyStandbyFloor keeps a standby's max_connections & co. at least at the
// primary's values recorded in pg_control: lower, PostgreSQL refuses to
// start ("insufficient parameter settings") until the change is replayed.
// It returns whether postgresql.conf changed.
func (a *Agent) applyStandbyFloor(ctx context.Context) bool {
	cctx, cancel := a.ioContext(ctx)
	defer cancel()
	cd, err := a.pg.ControlData(cctx)
	if err != nil {
		return false
	}
	a.floorRaises = a.pg.SetStandbyFloor(cd.PrimarySettings)
	changed, err := a.pg.Reconfigure()
	if err != nil {
		a.log.Warn("cannot rewrite postgresql.conf for the standby floor", "err", err)
	}
	return changed
}
