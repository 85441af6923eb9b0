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
	// The background work's steps, written before stopped is sent (so
	// read only once done): how long the CHECKPOINT and the stop took, and
	// the mode the stop ended in. They land in the record as an event.
	checkpointTook, stopTook time.Duration
	stopMode                 postgres.StopMode
	// lastSeen: a standby leader's received/replayed position, read right
	// before its stop (0 when not read): its final position's lower bound
	// (switchover.FinalPosition).
	lastSeen postgres.LSN
}

// driveSwitchover advances the running switchover by one step. It runs in
// the HA loop after act: it builds the inputs from the snapshot, lets
// switchover.Next classify (after at most one bounded read the step asks
// for: the candidate's position, the final LSN, a write probe), and acts.
// It never blocks longer than one bounded call: the PostgreSQL stop runs
// in the background so the lease keeps being renewed.
func (a *Agent) driveSwitchover(ctx context.Context, s Snapshot) {
	in := a.switchoverInputs(s)
	step := a.nextSwitchoverStep(ctx, &in)
	if step.Kind == switchover.FinishQuiesce {
		// Go on in this tick with the record just written: the catch-up's
		// first read, and the hand-over when the candidate is past the
		// final LSN already, need not wait for the write's watch event and
		// a tick more. Each call is bounded like any other of the tick.
		a.pgState = PGStopped
		r, err := a.finishQuiesce(ctx, in.Record, *in.Final)
		if err != nil {
			a.log.Error("switchover step failed", "switchover_id", in.Record.ID, "stage", in.Record.Stage, "step", step.Kind, "err", err)
			return
		}
		in.Record, in.Final = r, nil
		in.Elapsed, in.InStage = a.soClock.Observe(r, a.now())
		step = a.nextSwitchoverStep(ctx, &in)
	}
	if err := a.actSwitchover(ctx, s, in, step); err != nil {
		a.log.Error("switchover step failed", "switchover_id", in.Record.ID, "stage", in.Record.Stage, "step", step.Kind, "err", err)
	}
	if in.Record == nil && a.lease.leading && s.View != nil {
		a.cleanStaleLock(ctx, s.View)
	}
}

// nextSwitchoverStep classifies in, after the bounded read the step asks
// for (stored in in).
func (a *Agent) nextSwitchoverStep(ctx context.Context, in *switchover.Inputs) switchover.Step {
	step := switchover.Next(*in)
	if a.readForSwitchover(ctx, step.Kind, in) {
		step = switchover.Next(*in)
	}
	return step
}

// switchoverInputs gathers what switchover.Next reads: the snapshot, the
// lease, this agent's quiesce (collecting its stop's result without
// blocking) and the switchover's timings on this host's clock.
func (a *Agent) switchoverInputs(s Snapshot) switchover.Inputs {
	in := switchover.Inputs{Record: s.Switchover, Self: a.name, Leading: a.lease.leading, View: s.View,
		PGRunning: s.PG.Running, PGInRecovery: s.PG.Status.InRecovery, Standby: s.standby(), Streaming: streamingNames(s), Routing: a.routingInputs()}
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
		var lastSeen, final postgres.LSN
		if a.quiesce != nil {
			lastSeen = a.quiesce.lastSeen
		}
		if err == nil {
			final, err = switchover.FinalPosition(in.Record.Standby, cd, lastSeen)
		}
		in.Final = &switchover.Final{LSN: final, State: cd.State, Err: err}
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
		a.log.Warn("switchover record gone while quiesced; restoring the leader", "switchover_id", a.quiesce.id)
		a.restoreRouting(ctx, "")
		a.restoreLeader(ctx)
	case switchover.StartQuiesce:
		return a.startQuiesce(ctx, r)
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
		return a.finishValidation(ctx, r, in.Probe, step.Missing)
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
// then a checkpoint and a fast stop in the background. A standby leader
// (r.Standby) takes no writes: its checkpoint is a restartpoint, and its
// received/replayed position is read right before the stop.
func (a *Agent) startQuiesce(ctx context.Context, r *switchover.Record) error {
	q := &quiesceState{id: r.ID, stopped: make(chan error, 1)}
	a.quiesce = q
	a.pgState = PGStopping
	a.publish(ctx)
	if _, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		if r.Standby {
			r.Append(switchover.StageQuiesce, switchover.KindStarted, "%s: the standby leader stops (restartpoint, then fast stop; bounded by %s); it takes no writes", a.name, r.Timeout)
			return nil
		}
		r.Append(switchover.StageQuiesce, switchover.KindStarted, "%s: /primary answers 503; checkpoint, then fast stop (bounded by %s)", a.name, r.Timeout)
		return nil
	}); err != nil {
		return err
	}
	total, _ := a.soClock.Observe(r, a.now())
	budget := max(r.TimeoutOr(config.DefaultSwitchoverTimeout)-total, 2*time.Second)
	go func() {
		// Beside the loop, which keeps renewing the lease meanwhile: the
		// CHECKPOINT flushes what the writes dirtied so far (direct
		// clients still write: only /primary said 503), so the shutdown
		// checkpoint inside the fast stop — the write gap — has little
		// left to write. The checkpoint is bounded by the same budget; the
		// stop by the rest of it inside Stop (fast, then immediate).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget+5*time.Second)
		defer cancel()
		start := time.Now()
		cctx, ccancel := context.WithTimeout(sctx, budget/2)
		if err := a.pg.Checkpoint(cctx); err != nil {
			a.log.Warn("checkpoint before switchover stop failed", "err", err)
		}
		ccancel()
		q.checkpointTook = time.Since(start)
		if r.Standby {
			// The WAL a standby leader had is where it received and
			// replayed to: its stop writes none (switchover/standby.go).
			pctx, pcancel := context.WithTimeout(sctx, budget/4)
			if st, err := a.pg.Status(pctx); err == nil {
				q.lastSeen = st.WALPosition()
			} else {
				a.log.Warn("cannot read the standby leader's position before its stop; using pg_control's", "err", err)
			}
			pcancel()
		}
		start = time.Now()
		mode, err := a.pg.Stop(sctx, postgres.StopFast, budget-q.checkpointTook)
		q.stopTook, q.stopMode = time.Since(start), mode
		q.stopped <- err
	}()
	return nil
}

// finishQuiesce records the old primary's final LSN and starts the
// catch-up; it returns the record as written.
func (a *Agent) finishQuiesce(ctx context.Context, r *switchover.Record, final switchover.Final) (*switchover.Record, error) {
	q := a.quiesce
	return a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		r.FinalLSN = uint64(final.LSN)
		if q != nil && q.done {
			r.Append(switchover.StageQuiesce, switchover.KindInfo, "checkpoint %s, %s stop %s",
				q.checkpointTook.Round(time.Millisecond), q.stopMode, q.stopTook.Round(time.Millisecond))
		}
		if r.Standby {
			r.Append(switchover.StageQuiesce, switchover.KindCompleted, "%s stopped; it had received and replayed up to %s (%s)", a.name, final.LSN, final.State)
			r.Append(switchover.StageCatchUp, switchover.KindStarted, "waiting for %s to replay up to %s", r.To, final.LSN)
			return nil
		}
		r.Append(switchover.StageQuiesce, switchover.KindCompleted, "%s stopped; final LSN %s (%s)", a.name, final.LSN, final.State)
		r.Append(switchover.StageCatchUp, switchover.KindStarted, "waiting for %s to receive and replay past %s", r.To, final.LSN)
		return nil
	})
}

// handOver: the candidate caught up with the final LSN. The failover key
// names it (so only it races), then the leader key is released. In a
// standby cluster the candidate takes it by the same create-if-absent
// race and stays in recovery (race, standbyLead): the key moves by
// compare-and-swap only and nothing is promoted.
func (a *Agent) handOver(ctx context.Context, r *switchover.Record, cand switchover.CatchUp) error {
	caught, _ := r.StartedAt(switchover.StageCatchUp)
	if _, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		r.Append(switchover.StageCatchUp, switchover.KindCompleted, "%s replayed %s, caught up with the final LSN %s", r.To, cand.Replayed, postgres.LSN(r.FinalLSN))
		if r.PreflightLagBytes > 0 {
			r.Append(switchover.StageCatchUp, switchover.KindWarning, "candidate lag was %s at pre-flight; caught up in %s",
				bytesize.Format(r.PreflightLagBytes), time.Since(caught).Round(time.Millisecond))
		}
		if r.Standby {
			r.Append(switchover.StagePromote, switchover.KindStarted, "%s releases the leader key naming %s as the only candidate; it takes the key as the standby leader and stays in recovery", a.name, r.To)
			return nil
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
		a.restoreLeader(ctx)
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

// restoreLeader undoes a quiesce: PostgreSQL back as the primary, or in
// a standby cluster (the dynamic config now, as decide reads it) back in
// recovery as the standby leader, following the remote: never writable
// there. The caller made sure the background stop has finished
// (stopSettled).
func (a *Agent) restoreLeader(ctx context.Context) {
	a.quiesce = nil
	var err error
	if sc := a.dyn.StandbyCluster; sc.Active() {
		err = a.startStandbyLeaderOf(ctx, sc)
	} else {
		err = a.startPrimary(ctx)
	}
	if err != nil {
		a.log.Error("switchover: restoring the leader failed", "err", err)
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
		if step.Kind == switchover.RecordPromotion && s.standby() {
			r.Append(switchover.StagePromote, switchover.KindCompleted, "%s holds the leader key as the standby leader: in recovery (timeline %d), following %s; not promoted",
				a.name, s.PG.Status.Timeline, remoteName(s.Config.StandbyCluster.Host, s.Config.StandbyCluster.Port))
			r.Append(switchover.StageRepoint, switchover.KindStarted, "waiting for the other members to stream from the standby leader %s", a.name)
			return nil
		}
		if step.Kind == switchover.RecordPromotion {
			r.Append(switchover.StagePromote, switchover.KindCompleted, "%s promoted (timeline %d)", a.name, s.PG.Status.Timeline)
			r.Append(switchover.StageRepoint, switchover.KindStarted, "%s answers /primary; waiting for the other replicas to stream from it", a.name)
			return nil
		}
		if len(step.Missing) > 0 {
			r.Append(switchover.StageRepoint, switchover.KindWarning, "not streaming yet: %v", step.Missing)
		}
		r.Append(switchover.StageRepoint, switchover.KindCompleted, "replicas repointed to %s", a.name)
		if s.standby() {
			r.Append(switchover.StageValidation, switchover.KindStarted, "waiting for %s to stream from the standby leader %s (no write probe: it stays in recovery)", r.From, a.name)
			return nil
		}
		r.Append(switchover.StageValidation, switchover.KindStarted, "write probe on %s; waiting for %s to stream from it", a.name, r.From)
		return nil
	})
	return err
}

// finishValidation records the validation (the write probe's outcome —
// none on a standby leader, which takes no writes —, and whether the old
// leader streams yet) and closes the switchover completed.
func (a *Agent) finishValidation(ctx context.Context, r *switchover.Record, probe *switchover.Probe, missing []string) error {
	_, err := a.updateRecord(ctx, r.ID, func(r *switchover.Record) error {
		if probe != nil && probe.Err != nil {
			r.Append(switchover.StageValidation, switchover.KindWarning, "write probe failed: %v", probe.Err)
		}
		if len(missing) > 0 {
			r.Append(switchover.StageValidation, switchover.KindWarning, "%s is not streaming from %s yet", r.From, a.name)
		} else {
			r.Append(switchover.StageValidation, switchover.KindInfo, "%s streams from %s", r.From, a.name)
		}
		if probe == nil {
			r.Append(switchover.StageValidation, switchover.KindCompleted, "%s is the standby leader, in recovery (no write probe)", a.name)
		} else {
			r.Append(switchover.StageValidation, switchover.KindCompleted, "a write succeeded on %s", a.name)
		}
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
