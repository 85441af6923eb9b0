package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/bytesize"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/switchover"
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
// the HA loop after act: it builds the inputs from the snapshot, lets
// switchover.Next classify (after at most one bounded read the step asks
// for: the candidate's position, the final LSN, a write probe), and acts.
// It never blocks longer than one bounded call: the PostgreSQL stop runs
// in the background so the lease keeps being renewed.
func (a *Agent) driveSwitchover(ctx context.Context, s Snapshot) {
	in := a.switchoverInputs(s)
	step := switchover.Next(in)
	if a.readForSwitchover(ctx, step.Kind, &in) {
		step = switchover.Next(in)
	}
	if err := a.actSwitchover(ctx, s, in, step); err != nil {
		a.log.Error("switchover step failed", "switchover_id", in.Record.ID, "stage", in.Record.Stage, "step", step.Kind, "err", err)
	}
	if in.Record == nil && a.lease.leading && s.View != nil {
		a.cleanStaleLock(ctx, s.View)
	}
}

// switchoverInputs gathers what switchover.Next reads: the snapshot, the
// lease, this agent's quiesce (collecting its stop's result without
// blocking) and the switchover's timings on this host's clock.
func (a *Agent) switchoverInputs(s Snapshot) switchover.Inputs {
	in := switchover.Inputs{Record: s.Switchover, Self: a.name, Leading: a.lease.leading, View: s.View,
		PGRunning: s.PG.Running, PGInRecovery: s.PG.Status.InRecovery, Streaming: streamingNames(s), Routing: a.routingInputs()}
	if q := a.quiesce; q != nil {
		a.stopSettled()
		in.Quiesce = switchover.Quiesce{Active: true, ID: q.id, Stopped: q.done, StopErr: q.err}
	}
	if r := in.Record; r != nil && in.Leading {
		in.Timeout = r.TimeoutOr(config.DefaultSwitchoverTimeout)
		in.Elapsed, in.InStage = a.soClock.Observe(r, a.now())
	}
	return in
}

// readForSwitchover performs the bounded read a step asks for and stores
// the fact in in; false when the step reads nothing (or could not).
func (a *Agent) readForSwitchover(ctx context.Context, kind switchover.StepKind, in *switchover.Inputs) bool {
	switch kind {
	case switchover.ReadFinalLSN:
		cctx, cancel := a.ioContext(ctx)
		cd, err := a.pg.ControlData(cctx)
		cancel()
		in.Final = &switchover.Final{LSN: cd.CheckpointLSN, State: cd.State, Err: err}
	case switchover.PollCatchUp:
		c, ok := a.candidatePosition(ctx, in.Record.To)
		if !ok {
			return false
		}
		in.CatchUp = &c
	case switchover.Validate:
		pctx, cancel := a.ioContext(ctx)
		in.Probe = &switchover.Probe{Err: a.pg.ProbeWrite(pctx)}
		cancel()
	default:
		return false
	}
	return true
}

// candidatePosition asks the candidate for its replay position; false
// without a cluster view.
func (a *Agent) candidatePosition(ctx context.Context, to string) (switchover.CatchUp, bool) {
	v := a.dcs.View()
	if v == nil {
		return switchover.CatchUp{}, false
	}
	m, ok := v.Members[to]
	if !ok {
		return switchover.CatchUp{}, true
	}
	fctx, cancel := context.WithTimeout(ctx, peerTimeout)
	peers := a.peers.Fetch(fctx, map[string]dcs.Member{to: m})
	cancel()
	c := switchover.CatchUp{InView: true}
	if len(peers) == 1 && peers[0].Reachable {
		c.Reachable, c.Replayed = true, peers[0].Replayed
	}
	return c, true
}

// actSwitchover executes the step switchover.Next chose.
func (a *Agent) actSwitchover(ctx context.Context, s Snapshot, in switchover.Inputs, step switchover.Step) error {
	r := in.Record
	if step.Stopped {
		a.pgState = PGStopped
	}
	switch step.Kind {
	case switchover.RestorePrimary:
		// The record was closed or removed under us: never stay quiesced.
		a.log.Warn("switchover record gone while quiesced; restoring the primary", "switchover_id", a.quiesce.id)
		a.restoreRouting(ctx, "")
		a.restorePrimary(ctx)
	case switchover.StartQuiesce:
		return a.startQuiesce(ctx, r)
	case switchover.FinishQuiesce:
		return a.finishQuiesce(ctx, r, *in.Final)
	case switchover.HandOver:
		return a.handOver(ctx, r, *in.CatchUp)
	case switchover.AwaitStop:
		a.log.Info("switchover: waiting for the old primary's stop to finish before restoring it", "switchover_id", r.ID, "outcome", step.State)
	case switchover.FailBeforePromote:
		return a.failBeforePromote(ctx, s, r, step.State, *step.Failure)
	case switchover.PauseRouting:
		a.pauseRouting(ctx, r)
	case switchover.RepointRouting:
		a.repointRouting(ctx, r.ID, false)
	case switchover.RetryRouting:
		a.repointRouting(ctx, r.ID, true)
	case switchover.RecordPromotion, switchover.FinishRepoint:
		return a.advanceNewLeader(ctx, s, r, step)
	case switchover.FinishValidation:
		return a.finishValidation(ctx, r, in.Probe.Err, step.Missing)
	case switchover.Close:
		f := switchover.Failure{}
		if step.Failure != nil {
			f = *step.Failure
		}
		return a.closeSwitchover(ctx, r.ID, step.State, f)
	}
	return nil
}

// startQuiesce fences writes: /primary turns 503 at once (published now),
// then a checkpoint and a fast stop in the background.
func (a *Agent) startQuiesce(ctx context.Context, r *switchover.Record) error {
	q := &quiesceState{id: r.ID, stopped: make(chan error, 1)}
	a.quiesce = q
	a.pgState = PGStopping
	a.publish(ctx)
	if _, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		r.Append(switchover.StageQuiesce, switchover.KindStarted, "%s: /primary answers 503; checkpoint, then fast stop (bounded by %s)", a.name, r.Timeout)
		return nil
	}); err != nil {
		return err
	}
	cctx, cancel := a.ioContext(ctx)
	if err := a.pg.Checkpoint(cctx); err != nil {
		a.log.Warn("checkpoint before switchover stop failed", "err", err)
	}
	cancel()
	total, _ := a.soClock.Observe(r, a.now())
	budget := max(r.TimeoutOr(config.DefaultSwitchoverTimeout)-total, 2*time.Second)
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

// finishQuiesce records the old primary's final LSN and starts the
// catch-up.
func (a *Agent) finishQuiesce(ctx context.Context, r *switchover.Record, final switchover.Final) error {
	_, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		r.FinalLSN = uint64(final.LSN)
		r.Append(switchover.StageQuiesce, switchover.KindCompleted, "%s stopped; final LSN %s (%s)", a.name, final.LSN, final.State)
		r.Append(switchover.StageCatchUp, switchover.KindStarted, "waiting for %s to receive and replay past %s", r.To, final.LSN)
		return nil
	})
	return err
}

// handOver: the candidate is past the final LSN. The failover key names
// it (so only it races), then the leader key is released.
func (a *Agent) handOver(ctx context.Context, r *switchover.Record, cand switchover.CatchUp) error {
	caught, _ := r.StartedAt(switchover.StageCatchUp)
	if _, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		r.Append(switchover.StageCatchUp, switchover.KindCompleted, "%s replayed %s, past the final LSN %s", r.To, cand.Replayed, postgres.LSN(r.FinalLSN))
		if r.PreflightLagBytes > 0 {
			r.Append(switchover.StageCatchUp, switchover.KindWarning, "candidate lag was %s at pre-flight; caught up in %s",
				bytesize.Format(r.PreflightLagBytes), time.Since(caught).Round(time.Millisecond))
		}
		r.Append(switchover.StagePromote, switchover.KindStarted, "%s releases the leader key naming %s as the only candidate", a.name, r.To)
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
// Paused poolers resume beside the loop.
// switchover.Next chooses it only once the background stop has ended
// (before that it waits: switchover.AwaitStop).
func (a *Agent) failBeforePromote(ctx context.Context, s Snapshot, r *switchover.Record, state switchover.State, f switchover.Failure) error {
	if a.quiesce != nil || !s.PG.Running {
		// A switchover that ended before its quiesce (a failed pause)
		// never stopped PostgreSQL: it is the primary already.
		a.restorePrimary(ctx)
	}
	if rs := r.RoutingState(); rs.Paused || rs.PauseFailed != "" {
		// After the start: traffic resumes to a running primary.
		a.restoreRouting(ctx, r.ID)
	}
	a.clearFailoverKey(ctx)
	return a.closeSwitchover(ctx, r.ID, state, f)
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

// closeSwitchover ends the record (f says why, unless completed) and
// releases the lock.
func (a *Agent) closeSwitchover(ctx context.Context, id string, state switchover.State, f switchover.Failure) error {
	changed := false
	_, err := a.updateRecord(ctx, id, func(r *switchover.Record) error {
		if r.Terminal() {
			return errAlreadyClosed
		}
		changed = true
		if state == switchover.StateCompleted {
			r.Append(switchover.StageCleanup, switchover.KindCompleted, "%s → %s done; releasing the switchover lock", r.From, r.To)
		} else {
			r.Append(r.Stage, switchover.KindFailed, "%s", f.Reason)
			r.Failure = &f
		}
		r.State = state
		return nil
	})
	if closed, _, rerr := a.readRecord(ctx, id); rerr == nil && closed.Terminal() {
		a.metrics.switchoverFinished(closed)
	}
	if err != nil && !errors.Is(err, switchover.ErrNotFound) && !errors.Is(err, errAlreadyClosed) {
		return err
	}
	if changed {
		a.log.Info("switchover closed", "switchover_id", id, "state", state, "reason", f.Reason)
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

// advanceNewLeader records the new leader's stages after the promotion:
// PROMOTE_STANDBY done and REPOINT_CLIENT_TRAFFIC started, or the repoint
// done (step.Missing: who does not stream yet) and validation started.
func (a *Agent) advanceNewLeader(ctx context.Context, s Snapshot, r *switchover.Record, step switchover.Step) error {
	_, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		if step.Kind == switchover.RecordPromotion {
			r.Append(switchover.StagePromote, switchover.KindCompleted, "%s promoted (timeline %d)", a.name, s.PG.Status.Timeline)
			r.Append(switchover.StageRepoint, switchover.KindStarted, "%s answers /primary; waiting for the other replicas to stream from it", a.name)
			return nil
		}
		if len(step.Missing) > 0 {
			r.Append(switchover.StageRepoint, switchover.KindWarning, "not streaming yet: %v", step.Missing)
		}
		r.Append(switchover.StageRepoint, switchover.KindCompleted, "replicas repointed to %s", a.name)
		r.Append(switchover.StageValidation, switchover.KindStarted, "write probe on %s; waiting for %s to stream from it", a.name, r.From)
		return nil
	})
	return err
}

// finishValidation records the validation (the write probe's error, and
// whether the old leader streams yet) and closes the switchover completed.
func (a *Agent) finishValidation(ctx context.Context, r *switchover.Record, probeErr error, missing []string) error {
	_, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		if probeErr != nil {
			r.Append(switchover.StageValidation, switchover.KindWarning, "write probe failed: %v", probeErr)
		}
		if len(missing) > 0 {
			r.Append(switchover.StageValidation, switchover.KindWarning, "%s is not streaming from %s yet", r.From, a.name)
		} else {
			r.Append(switchover.StageValidation, switchover.KindInfo, "%s streams from %s", r.From, a.name)
		}
		r.Append(switchover.StageValidation, switchover.KindCompleted, "a write succeeded on %s", a.name)
		r.Append(switchover.StageCleanup, switchover.KindStarted, "releasing the switchover lock")
		return nil
	})
	if err != nil {
		return err
	}
	return a.closeSwitchover(ctx, r.ID, switchover.StateCompleted, switchover.Failure{})
}

// streamingNames lists the members streaming from this PostgreSQL.
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
