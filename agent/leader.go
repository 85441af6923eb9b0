package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// memberRefresh bounds how often a changing WAL position alone causes an
// etcd write (member key, status key): an idle cluster writes nothing.
const memberRefresh = 10 * time.Second

// race tries to take the leader key and, on winning, promotes. The
// keepalive right before the attempt gives a fresh deadline; the local
// state is re-checked after winning and before promoting.
func (a *Agent) race(ctx context.Context, s Snapshot, p Plan) error {
	fenced, ok := a.stonithOldLeader(ctx, s)
	if !ok {
		a.record(restapi.Decision{Kind: "fence_failed", Reason: fmt.Sprintf("fence.command against %s failed (%s); not promoting over a leader that may still be alive", fenced.Target, fenced.Error),
			PreviousLeader: a.previousLeader, Candidates: electionRecord(p.Election), Stonith: fenced})
		return fmt.Errorf("race: fence.command against %s failed: %s", fenced.Target, fenced.Error)
	}
	won, err := a.takeLeaderKey(ctx)
	if err != nil {
		return fmt.Errorf("race: %w", err)
	}
	if !won {
		a.log.Info("lost the leader race")
		return nil
	}
	electedAt := time.Now()
	if err := a.armWatchdog(); err != nil {
		a.release(ctx)
		return fmt.Errorf("race: watchdog required but cannot be armed; released the leader key: %w", err)
	}
	a.log.Info("won the leader race", "lsn", s.PG.Status.WALPosition())
	st, err := a.pg.Status(ctx) // bounded by the new lease deadline (boundedPostgres)
	switch {
	case err != nil:
		a.release(ctx)
		return fmt.Errorf("race: re-check before promote: %w", err)
	case !st.InRecovery || st.WALPosition() < s.PG.Status.WALPosition():
		a.release(ctx)
		return fmt.Errorf("race: state moved before promote (in recovery %t, lsn %s, decided at %s); released the leader key",
			st.InRecovery, st.WALPosition(), s.PG.Status.WALPosition())
	}
	if s.standby() {
		// A standby cluster's new leader stays in recovery (standby.go):
		// it only turns to the remote; its peers cascade from it.
		a.clearFailoverKey(ctx)
		a.record(restapi.Decision{Kind: "standby_leader", Reason: p.Reason, PreviousLeader: a.previousLeader,
			Candidates: electionRecord(p.Election), Stonith: fenced})
		return a.standbyLead(ctx, s)
	}
	if err := a.promote(ctx, s.View); err != nil {
		return err
	}
	// The member that won the key clears the request (Patroni: {}).
	a.clearFailoverKey(ctx)
	detected := time.Now().Add(-a.now().Sub(a.leaderlessSince))
	if !a.leaderLastSeen.IsZero() && p.Election != nil {
		// A switchover's hand-over is measured by its record instead.
		a.metrics.unavailable("failover", a.now().Sub(a.leaderLastSeen))
	}
	kind := "failover"
	if p.Election == nil {
		kind = "promotion_on_request" // designated by a switchover or failover request
	}
	pr := a.promotion
	t := restapi.FailoverTimings{
		LeaderLastSeen: time.Now().Add(-a.now().Sub(a.leaderLastSeen)), DetectedAt: detected,
		ElectedAt: electedAt, PromotedAt: pr.promotedAt, FirstWriteAt: pr.firstWriteAt, Timeline: int(pr.timeline),
		ElectionMs: electedAt.Sub(detected).Milliseconds(), PromotionMs: pr.promotedAt.Sub(electedAt).Milliseconds(),
	}
	if a.leaderLastSeen.IsZero() {
		t.LeaderLastSeen = time.Time{} // never saw a leader: no detect phase
	}
	if !a.streamLastSeen.IsZero() {
		t.UpstreamLastSeen = time.Now().Add(-a.now().Sub(a.streamLastSeen))
	}
	if at := a.fastAgreedAt(); !at.IsZero() {
		t.AgreedAt = time.Now().Add(-a.now().Sub(at))
	}
	t.Phases = failoverPhases(t, fenced, a.dyn.TTL)
	if kind == "failover" {
		a.metrics.failoverPhases(t.Phases)
	}
	a.record(restapi.Decision{Kind: kind, Reason: p.Reason, PreviousLeader: a.previousLeader,
		Candidates: electionRecord(p.Election), Stonith: fenced, Timings: &t})
	return nil
}

// acquire takes the leader key for a running primary (maintenance mode).
func (a *Agent) acquire(ctx context.Context) error {
	won, err := a.takeLeaderKey(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	if won {
		a.log.Info("took the leader key for the running primary (paused)")
	}
	return nil
}

// takeLeaderKey tries to create the leader key on our lease, right after a
// keepalive in the same bounded context: on winning, the lease deadline
// counts from that keepalive's send time.
func (a *Agent) takeLeaderKey(ctx context.Context) (won bool, err error) {
	rctx, cancel := a.ioContext(ctx)
	defer cancel()
	sent := a.now()
	if err := a.dcs.KeepAlive(rctx); err != nil {
		return false, fmt.Errorf("keepalive: %w", err)
	}
	if won, err = a.dcs.AcquireLeader(rctx, a.name); err != nil || !won {
		return false, err
	}
	a.setLease(a.lease.won(sent))
	return true, nil
}

// promote finishes a promotion while holding the leader key, bounded by
// the lease deadline, then checkpoints (so the old primary can pg_rewind
// against us) and records the new timeline.
func (a *Agent) promote(ctx context.Context, v *dcs.Cluster) error {
	pctx, cancel := context.WithTimeout(ctx, promoteTimeout)
	defer cancel()
	pctx, cancel2 := context.WithDeadline(pctx, a.lease.deadline())
	defer cancel2()
	start := a.now()
	if err := a.prepareSyncPromotion(pctx, v); err != nil {
		return fmt.Errorf("promote: synchronous mode: %w", err)
	}
	if err := a.pg.Promote(pctx); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	a.promotion = promotionTimes{promotedAt: time.Now()}
	// The first write at once, for the RTO budget: when a client's could
	// commit (bounded by pctx; synchronous_commit local, so a synchronous
	// standby still reconnecting cannot hold it).
	if err := a.pg.ProbeWrite(pctx); err != nil {
		a.log.Warn("write probe after promote failed", "err", err)
	} else {
		a.promotion.firstWriteAt = time.Now()
	}
	a.role = RolePrimary
	if a.activeSwitchover(v) != nil {
		// The switchover records the promotion from the next tick's
		// snapshot (this tick's was taken in recovery): take it now.
		a.tickAgain = true
	}
	// Out of recovery and holding the key: the routers may send traffic
	// here now, beside the loop, while the checkpoint below runs.
	a.routeAfterPromotion(ctx, v)
	if _, err := a.pg.ConfigurePrimary(); err != nil {
		a.log.Warn("cannot drop the standby settings after promote", "err", err)
	}
	// The replicas' slots before any etcd write (the history key, the
	// failover key, the member key): a new primary cut from etcd right
	// after promoting must still let them stream its timeline, or none of
	// them can take over once it fences — they would stay behind it.
	if err := a.ensureSlots(pctx, Snapshot{View: v}, true); err != nil {
		a.log.Warn("cannot create the replicas' replication slots after promote", "err", err)
	}
	if err := a.pg.Checkpoint(pctx); err != nil {
		a.log.Warn("checkpoint after promote failed", "err", err)
	}
	a.log.Info("promoted", "took", a.now().Sub(start).Round(time.Millisecond))
	a.recordPromotion(ctx, v)
	a.statusWritten = statusRecord{}
	return nil
}

// recordPromotion appends the timeline switch to the history key
// (patroni-compat.md §1.3.6).
func (a *Agent) recordPromotion(ctx context.Context, v *dcs.Cluster) {
	hctx, cancel := a.ioContext(ctx)
	defer cancel()
	st, err := a.pg.Status(hctx)
	if err != nil || st.Timeline < 2 {
		return
	}
	a.promotion.timeline = st.Timeline
	self, err := a.selfUpstream()
	if err != nil {
		a.log.Warn("cannot record history", "err", err)
		return
	}
	switches, err := a.pg.TimelineHistory(hctx, *self, st.Timeline)
	if err != nil || len(switches) == 0 {
		a.log.Warn("cannot read the new timeline's history", "err", err)
		return
	}
	last := switches[len(switches)-1]
	var history []dcs.HistoryEntry
	if v != nil {
		history = slices.Clone(v.History)
	}
	history = slices.DeleteFunc(history, func(h dcs.HistoryEntry) bool { return h.Timeline >= int(last.Timeline) })
	history = append(history, dcs.HistoryEntry{
		Timeline: int(last.Timeline), SwitchLSN: uint64(last.SwitchLSN), Reason: last.Reason,
		PromotedAt: time.Now().UTC().Format("2006-01-02T15:04:05.999999+00:00"), NewLeader: a.name,
	})
	data, _ := json.Marshal(history)
	if err := a.dcs.PutAsLeader(hctx, a.name, a.dcs.Keys().History(), data); err != nil {
		a.log.Warn("cannot write the history key", "err", err)
	}
}

// lead is the steady primary's upkeep: the status key and replication slots.
func (a *Agent) lead(ctx context.Context, s Snapshot) error {
	a.role = RolePrimary
	if !a.dyn.Pause { // the watchdog is disarmed in maintenance mode
		if err := a.armWatchdog(); err != nil {
			return fmt.Errorf("watchdog: %w", err)
		}
	}
	// Replication slots first, each call with its own bound: a slow or
	// unreachable etcd must not keep the replicas from following this
	// primary (they need their slots to stream; without them they stay
	// behind on the old timeline and cannot take over if it is cut off).
	if err := a.ensureSlots(ctx, s, true); err != nil {
		return err
	}
	a.payRoutingDebt(ctx, s)
	lctx, cancel := a.ioContext(ctx)
	defer cancel()
	a.writeStatus(lctx, uint64(s.PG.Status.CurrentLSN))
	a.restoreInitialize(lctx, s)
	sctx, cancel2 := a.ioContext(ctx)
	defer cancel2()
	if err := a.manageSync(sctx, s); err != nil {
		a.log.Warn("synchronous mode", "err", err)
	}
	if !a.lease.inFailsafe() && a.fs.etcdErr == dcs.ErrClassNone {
		// Only while etcd answers: the key is the topology of the next outage.
		fctx, cancel3 := a.ioContext(ctx)
		defer cancel3()
		a.syncFailsafeKey(fctx, s.View)
	}
	return nil
}

// restoreInitialize writes the initialize key back (create-only) when it
// is gone while this member leads — `regentctl remove` wiped a running
// cluster — as Patroni's leader does: without it, a new member with an
// empty data directory would bootstrap a second cluster. It never touches
// the leader key, and the write is bounded by ctx (the lease deadline).
func (a *Agent) restoreInitialize(ctx context.Context, s Snapshot) {
	if s.View == nil || s.View.Initialize != nil || s.PG.SystemID == 0 {
		return
	}
	sysid := strconv.FormatUint(s.PG.SystemID, 10)
	_, err := a.dcs.CAS(ctx, a.dcs.Keys().Initialize(), []byte(sysid), 0)
	switch {
	case err == nil:
		a.log.Info("wrote the missing initialize key back", "system_id", sysid)
	case !errors.Is(err, dcs.ErrConflict):
		a.log.Warn("cannot write the missing initialize key back", "err", err)
	}
}

// writeStatus keeps the status key's optime (and the permanent slots'
// positions) current, guarded by the leader key: the position replicas
// measure their lag against for maximum_lag_on_failover.
func (a *Agent) writeStatus(ctx context.Context, optime uint64) {
	// The permanent slots' positions go out as soon as they move: a
	// replica advances its copies to them, and a copy behind a consumer's
	// confirmed position repeats changes after a failover.
	slotsMoved := !maps.Equal(a.statusWritten.slots, a.slots.positions)
	if !a.statusWritten.due(optime, a.now(), a.dyn.MaximumLagOnFailover) && !slotsMoved {
		return
	}
	data, _ := json.Marshal(dcs.Status{Optime: optime, Slots: a.slots.positions})
	if err := a.dcs.PutAsLeader(ctx, a.name, a.dcs.Keys().Status(), data); err != nil {
		a.log.Warn("cannot write the status key", "err", err)
		return
	}
	a.statusWritten = statusRecord{optime: optime, at: a.now(), slots: a.slots.positions}
}

type statusRecord struct {
	optime uint64
	at     time.Time
	slots  map[string]int64 // the permanent slots' positions written
}

// due: the leader's position is what replicas measure their lag against
// for maximum_lag_on_failover, so it may not fall far behind: written at
// once when it moved by a quarter of that limit since the last write, at
// most every memberRefresh for smaller moves, never when idle. The key
// then trails the real position by under maxLag/4 plus one tick's WAL
// (the lag check cannot see WAL written after the leader's last tick).
func (r statusRecord) due(optime uint64, now time.Time, maxLag int64) bool {
	switch {
	case r.at.IsZero():
		return true
	case optime == r.optime:
		return false
	case optime > r.optime && int64(optime-r.optime) >= max(maxLag/4, 1):
		return true
	}
	return now.Sub(r.at) >= memberRefresh
}

// selfUpstream is this member's own PostgreSQL address (connect_address).
func (a *Agent) selfUpstream() (*postgres.Upstream, error) {
	host, portStr, err := net.SplitHostPort(a.cfg.Postgres.ConnectAddress)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	return &postgres.Upstream{Member: a.name, Host: host, Port: port}, nil
}

// syncHBA keeps the replication entries for every member's host in
// pg_hba.conf, reloading PostgreSQL when they change.
func (a *Agent) syncHBA(ctx context.Context, s Snapshot) {
	if s.View == nil || s.PG.DataDirEmpty || a.job != nil {
		return // a clone or rewind owns the data directory meanwhile
	}
	var hosts []string
	for _, m := range s.View.Members {
		if h, _, err := parseConnURL(m.ConnURL); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	changed, err := a.pg.WriteHBA(hosts)
	if err != nil {
		a.log.Warn("cannot write pg_hba.conf", "err", err)
		return
	}
	if changed && s.PG.Running {
		rctx, cancel := a.ioContext(ctx)
		defer cancel()
		if err := a.pg.Reload(rctx); err != nil {
			a.log.Warn("reload after pg_hba change failed", "err", err)
		}
	}
}
