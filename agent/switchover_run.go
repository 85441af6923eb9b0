package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// quiesceState is the old leader's local part of a switchover: PostgreSQL
// is being (or has been) stopped on purpose while the lease is still held.
type quiesceState struct {
	id      string
	stopped chan error // receives the async stop's result once
	err     error
	done    bool
}

// driveSwitchover advances the running switchover by one step. It runs in
// the HA loop after act and never blocks longer than one bounded call: the
// PostgreSQL stop runs in the background so the lease keeps being renewed.
func (a *Agent) driveSwitchover(ctx context.Context, s Snapshot) {
	r := s.Switchover
	if r == nil {
		if a.quiesce != nil && a.stopSettled() {
			// The record was closed or removed under us: never stay quiesced.
			a.log.Warn("switchover record gone while quiesced; restoring the primary", "switchover_id", a.quiesce.id)
			a.restorePrimary(ctx)
		}
		if a.lease.leading && s.View != nil {
			a.cleanStaleLock(ctx, s.View)
		}
		return
	}
	if !a.lease.leading {
		return
	}
	var err error
	switch {
	case r.From == a.name && !r.pastPointOfNoReturn():
		err = a.driveOldLeader(ctx, r)
	case r.To == a.name && r.pastPointOfNoReturn():
		err = a.driveNewLeader(ctx, s, r)
	default:
		// I lead, but not as this switchover's driver: its orchestrator is
		// gone and an automatic failover (or the old leader again) won.
		err = a.closeSwitchover(ctx, r.ID, StateFailed, fmt.Sprintf("%s leads now, but the switchover %s → %s was at %s: its orchestrator stopped driving it (crash or lost lease) and an automatic election chose %s", a.name, r.From, r.To, r.Stage, a.name),
			"the cluster has exactly one primary ("+a.name+"); see GET /decisions for the election; request a new switchover if still wanted")
	}
	if err != nil {
		a.log.Error("switchover step failed", "switchover_id", r.ID, "stage", r.Stage, "err", err)
	}
}

func (a *Agent) driveOldLeader(ctx context.Context, r *SwitchoverRecord) error {
	total, _ := a.soClock.observe(r, a.now())
	expired := total > r.timeout()
	switch {
	case r.AbortRequested:
		return a.failBeforePromote(ctx, r, StateAborted, "aborted on request at "+r.Stage, "")
	case r.Stage == StagePreFlight:
		return a.startQuiesce(ctx, r)
	case r.Stage == StageQuiesce:
		return a.pollQuiesce(ctx, r, expired)
	case r.Stage == StageCatchUp:
		return a.pollCatchUp(ctx, r, expired)
	}
	return nil
}

// startQuiesce fences writes: /primary turns 503 at once (published now),
// then a checkpoint and a fast stop in the background.
func (a *Agent) startQuiesce(ctx context.Context, r *SwitchoverRecord) error {
	q := &quiesceState{id: r.ID, stopped: make(chan error, 1)}
	a.quiesce = q
	a.pgState = PGStopping
	a.publish(ctx)
	if _, err := a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
		r.event(StageQuiesce, "started", "%s: /primary answers 503; checkpoint, then fast stop (bounded by %s)", a.name, r.Timeout)
		return nil
	}); err != nil {
		return err
	}
	cctx, cancel := a.ioContext(ctx)
	if err := a.pg.Checkpoint(cctx); err != nil {
		a.log.Warn("checkpoint before switchover stop failed", "err", err)
	}
	cancel()
	total, _ := a.soClock.observe(r, a.now())
	budget := max(r.timeout()-total, 2*time.Second)
	go func() {
		// Bounded by budget inside Stop (fast, then immediate); the loop
		// keeps renewing the lease meanwhile.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget+5*time.Second)
		defer cancel()
		_, err := a.pg.Stop(sctx, postgres.StopFast, budget)
		q.stopped <- err
	}()
	return nil
}

func (a *Agent) pollQuiesce(ctx context.Context, r *SwitchoverRecord, expired bool) error {
	q := a.quiesce
	if q == nil || q.id != r.ID {
		// This agent restarted mid-switchover: it cannot vouch for the stop.
		return a.failBeforePromote(ctx, r, StateFailed, "the old primary's agent restarted during QUIESCE_WRITES", "request the switchover again")
	}
	if !q.done {
		select {
		case q.err = <-q.stopped:
			q.done = true
		default:
			if expired {
				return a.failBeforePromote(ctx, r, StateFailed, "the old primary did not stop within "+r.Timeout, "look for long transactions or a slow archive_command; raise the timeout")
			}
			return nil
		}
	}
	a.pgState = PGStopped
	if q.err != nil {
		return a.failBeforePromote(ctx, r, StateFailed, "stopping the old primary failed: "+q.err.Error(), "see the agent log of "+a.name)
	}
	cctx, cancel := a.ioContext(ctx)
	cd, err := a.pg.ControlData(cctx)
	cancel()
	if err != nil {
		return a.failBeforePromote(ctx, r, StateFailed, "cannot read the final LSN: "+err.Error(), "")
	}
	_, err = a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
		r.FinalLSN = uint64(cd.CheckpointLSN)
		r.event(StageQuiesce, "completed", "%s stopped; final LSN %s (%s)", a.name, cd.CheckpointLSN, cd.State)
		r.event(StageCatchUp, "started", "waiting for %s to receive and replay past %s", r.To, cd.CheckpointLSN)
		return nil
	})
	return err
}

// pollCatchUp checks the candidate's replay position; once past the final
// LSN the old leader hands over: the failover key names the candidate (so
// only it races), then the leader key is released.
func (a *Agent) pollCatchUp(ctx context.Context, r *SwitchoverRecord, expired bool) error {
	v := a.dcs.View()
	if v == nil {
		return nil
	}
	m, ok := v.Members[r.To]
	if !ok {
		return a.failBeforePromote(ctx, r, StateFailed, "candidate "+r.To+" disappeared during catch-up", "check the candidate's agent")
	}
	fctx, cancel := context.WithTimeout(ctx, peerTimeout)
	peers := a.peers.Fetch(fctx, map[string]dcs.Member{r.To: m})
	cancel()
	if len(peers) == 1 && peers[0].Reachable && uint64(peers[0].Replayed) > r.FinalLSN {
		return a.handOver(ctx, r, peers[0])
	}
	if expired {
		got := "unreachable"
		if len(peers) == 1 && peers[0].Reachable {
			got = "replayed " + peers[0].Replayed.String()
		}
		return a.failBeforePromote(ctx, r, StateFailed, fmt.Sprintf("candidate %s did not catch up within %s (%s, final LSN %s)", r.To, r.Timeout, got, postgres.LSN(r.FinalLSN)),
			"check the candidate's replication (pg_stat_wal_receiver) and retry")
	}
	return nil
}

func (a *Agent) handOver(ctx context.Context, r *SwitchoverRecord, cand PeerStatus) error {
	caught, _ := r.startedStage(StageCatchUp)
	if _, err := a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
		r.event(StageCatchUp, "completed", "%s replayed %s, past the final LSN %s", r.To, cand.Replayed, postgres.LSN(r.FinalLSN))
		if r.PreflightLagBytes > 0 {
			r.event(StageCatchUp, "warning", "candidate lag was %s at pre-flight; caught up in %s",
				formatBytes(r.PreflightLagBytes), time.Since(caught).Round(time.Millisecond))
		}
		r.event(StagePromote, "started", "%s releases the leader key naming %s as the only candidate", a.name, r.To)
		return nil
	}); err != nil {
		return err
	}
	data, _ := json.Marshal(dcs.Failover{Leader: a.name, Member: r.To})
	hctx, cancel := a.ioContext(ctx)
	defer cancel()
	if err := a.dcs.PutAsLeader(hctx, a.name, a.dcs.Keys().Failover(), data); err != nil {
		return fmt.Errorf("write failover key: %w", err)
	}
	a.log.Info("switchover: handing over", "switchover_id", r.ID, "to", r.To)
	a.quiesce = nil
	a.role = RoleDemoted
	a.release(ctx)
	return nil
}

// failBeforePromote closes the switchover (failed or aborted) and restores
// this member as primary: it still holds the lease, so nothing is lost.
// While the background stop is still running it only waits: the loop keeps
// renewing the lease and retries on the next tick (blocking here would let
// the lease lapse and turn an abort into a failover).
func (a *Agent) failBeforePromote(ctx context.Context, r *SwitchoverRecord, state, reason, hint string) error {
	if !a.stopSettled() {
		a.log.Info("switchover: waiting for the old primary's stop to finish before restoring it", "switchover_id", r.ID, "outcome", state)
		return nil
	}
	a.restorePrimary(ctx)
	a.clearFailoverKey(ctx)
	return a.closeSwitchover(ctx, r.ID, state, reason, hint)
}

// stopSettled reports whether the quiesce's background stop has finished
// (or there is none), collecting its result without blocking.
func (a *Agent) stopSettled() bool {
	q := a.quiesce
	if q == nil || q.done {
		return true
	}
	select {
	case q.err = <-q.stopped:
		q.done = true
		return true
	default:
		return false
	}
}

// restorePrimary undoes a quiesce: PostgreSQL back as the primary. The
// caller made sure the background stop has finished (stopSettled).
func (a *Agent) restorePrimary(ctx context.Context) {
	a.quiesce = nil
	if err := a.startPrimary(ctx); err != nil {
		a.log.Error("switchover: restoring the primary failed", "err", err)
	}
}

// errAlreadyClosed: the record was terminal before this close.
var errAlreadyClosed = errors.New("switchover already closed")

// closeSwitchover ends the record and releases the lock.
func (a *Agent) closeSwitchover(ctx context.Context, id, state, reason, hint string) error {
	changed := false
	_, err := a.updateRecord(ctx, id, func(r *SwitchoverRecord) error {
		if r.Terminal() {
			return errAlreadyClosed
		}
		changed = true
		kind := "failed"
		if state == StateCompleted {
			kind = "completed"
		}
		if state == StateCompleted {
			r.event(StageCleanup, "completed", "%s → %s done; releasing the switchover lock", r.From, r.To)
		} else {
			r.event(r.Stage, kind, "%s", reason)
			r.Failure = &Failure{Reason: reason, Hint: hint}
		}
		r.State = state
		return nil
	})
	if closed, _, rerr := a.readRecord(ctx, id); rerr == nil && closed.Terminal() {
		a.metrics.switchoverFinished(closed)
	}
	if err != nil && !errors.Is(err, errRecordGone) && !errors.Is(err, errAlreadyClosed) {
		return err
	}
	if changed {
		a.log.Info("switchover closed", "switchover_id", id, "state", state, "reason", reason)
	}
	dctx, cancel := a.ioContext(ctx)
	defer cancel()
	if v, ok, gerr := a.dcs.Get(dctx, a.dcs.Keys().SwitchoverLock()); gerr == nil && ok && string(v.Data) == id {
		if derr := a.dcs.Delete(dctx, a.dcs.Keys().SwitchoverLock(), v.ModRevision); derr != nil {
			return derr
		}
	}
	a.trimSwitchovers(dctx)
	return nil
}

func (a *Agent) trimSwitchovers(ctx context.Context) {
	v := a.dcs.View()
	if v == nil {
		return
	}
	ids := switchoverIDs(v)
	for len(ids) > maxSwitchoverRecords {
		_ = a.dcs.Delete(ctx, a.dcs.Keys().Switchover(ids[0]), 0)
		ids = ids[1:]
	}
}

// driveNewLeader runs the stages after the promotion, on the new leader.
func (a *Agent) driveNewLeader(ctx context.Context, s Snapshot, r *SwitchoverRecord) error {
	if !s.PG.Running || s.PG.Status.InRecovery {
		return nil // promotion still under way
	}
	_, inStage := a.soClock.observe(r, a.now())
	late := inStage > r.timeout()
	switch r.Stage {
	case StagePromote:
		_, err := a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
			r.event(StagePromote, "completed", "%s promoted (timeline %d)", a.name, s.PG.Status.Timeline)
			r.event(StageRepoint, "started", "%s answers /primary; waiting for the other replicas to stream from it", a.name)
			return nil
		})
		return err
	case StageRepoint:
		missing := a.notStreaming(s, r.From)
		if len(missing) > 0 && !late {
			return nil
		}
		_, err := a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
			if len(missing) > 0 {
				r.event(StageRepoint, "warning", "not streaming yet: %v", missing)
			}
			r.event(StageRepoint, "completed", "replicas repointed to %s", a.name)
			r.event(StageValidation, "started", "write probe on %s; waiting for %s to stream from it", a.name, r.From)
			return nil
		})
		return err
	case StageValidation:
		return a.validateSwitchover(ctx, s, r, late)
	case StageCleanup:
		return a.closeSwitchover(ctx, r.ID, StateCompleted, "", "")
	}
	return nil
}

func (a *Agent) validateSwitchover(ctx context.Context, s Snapshot, r *SwitchoverRecord, late bool) error {
	pctx, cancel := a.ioContext(ctx)
	werr := a.pg.ProbeWrite(pctx)
	cancel()
	oldStreams := slices.Contains(streamingNames(s), r.From)
	if (werr != nil || !oldStreams) && !late {
		return nil
	}
	_, err := a.updateRecord(ctx, r.ID, func(r *SwitchoverRecord) error {
		if werr != nil {
			r.event(StageValidation, "warning", "write probe failed: %v", werr)
		}
		if !oldStreams {
			r.event(StageValidation, "warning", "%s is not streaming from %s yet", r.From, a.name)
		} else {
			r.event(StageValidation, "info", "%s streams from %s", r.From, a.name)
		}
		r.event(StageValidation, "completed", "a write succeeded on %s", a.name)
		r.event(StageCleanup, "started", "releasing the switchover lock")
		return nil
	})
	if err != nil {
		return err
	}
	return a.closeSwitchover(ctx, r.ID, StateCompleted, "", "")
}

// notStreaming lists running members (other than self and skip) that do
// not stream from this primary.
func (a *Agent) notStreaming(s Snapshot, skip string) []string {
	streaming := streamingNames(s)
	var missing []string
	for _, name := range s.View.MemberNames() {
		m := s.View.Members[name]
		if name == a.name || name == skip || m.State != "running" {
			continue
		}
		if !slices.Contains(streaming, name) {
			missing = append(missing, name)
		}
	}
	return missing
}

func streamingNames(s Snapshot) []string {
	var out []string
	for _, r := range s.PG.Status.Replication {
		if r.State == "streaming" {
			out = append(out, r.ApplicationName)
		}
	}
	return out
}

// clearFailoverKey writes {} (Patroni clears, never deletes, the key).
func (a *Agent) clearFailoverKey(ctx context.Context) {
	v := a.dcs.View()
	if v == nil || v.Failover.Empty() {
		return
	}
	cctx, cancel := a.ioContext(ctx)
	defer cancel()
	if _, err := a.dcs.CASAsLeader(cctx, a.name, a.dcs.Keys().Failover(), []byte("{}"), v.FailoverRev); err != nil {
		a.log.Warn("cannot clear the failover key", "err", err)
	}
}
