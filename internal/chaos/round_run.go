package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/regent-ha/regent/fencing"
)

// round runs one planned round: it starts following the leader's lease,
// starts the paired action (just before the injection, or during the
// hold), injects the fault, holds it, heals it, undoes the action and
// waits for recovery.
func (r *Run) round(ctx context.Context, n int, p RoundPlan) (rd *Round) {
	r.wl.SetKey(int64(n))
	spec, _ := specOf(p.Kind) // checked by NewRun
	rd = &Round{N: n, Kind: p.Kind, Hold: p.Hold, Watchdog: p.Watchdog, Failsafe: spec.failsafe}
	if spec.fence {
		rd.Fence = &FenceCheck{Failing: spec.failFence}
	}
	if spec.failsafe {
		if err := r.setFailsafe(ctx, true); err != nil {
			rd.Err = err
			return rd
		}
		defer func() { // the next round starts from the base configuration
			if err := r.setFailsafe(ctx, false); err != nil && rd.Err == nil {
				rd.Err = err
			}
		}()
	}
	primary, err := r.c.leaderNode(ctx)
	if err != nil {
		rd.Err = fmt.Errorf("no leader before the round: %w", err)
		return rd
	}
	rd.LeaderBefore = primary.Name
	f := r.c.newFault(spec, primary, r.rng)
	act := r.newAction(ctx, p, primary)
	if act != nil && spec.routing {
		act.switchTo(r.routingCandidate(ctx, f))
	}
	if act != nil {
		rd.Action = act.rec
	}
	lease := &LeaseCheck{Node: primary.Name}
	lease.AgentDeadline, lease.Timeline = r.c.agentDeadline(ctx, primary)
	tracker := r.c.trackLease(ctx)
	err = r.injectAndHold(ctx, f, rd, act, tracker, lease)
	samples := tracker.Stop()
	lease.Bound, lease.TTL, lease.Note = leaseBound(samples, lease.Node, act.ttlChanges())
	rd.Lease = lease
	if err != nil {
		rd.Err = err
		if ferr := act.finish(ctx); ferr != nil {
			rd.Err = fmt.Errorf("%w (and %w)", err, ferr)
		}
		return rd
	}
	if err := spec.heal(ctx, f); err != nil {
		rd.Err = fmt.Errorf("heal %s: %w", spec.kind, err)
		_ = act.finish(ctx) // the run ends: undo what can be undone
		return rd
	}
	r.log.Add(rd.Heal, "round %d: healed %s", n, spec.kind)
	if err := act.finish(ctx); err != nil {
		rd.Err = err
		return rd
	}
	leader, err := r.c.WaitRecovered(ctx, r.hist, rd.Heal, r.cfg.RecoveryTimeout)
	rd.Recovered = r.clock.Now()
	if err != nil {
		rd.Err = fmt.Errorf("recovery: %w", err)
		r.log.Add(rd.Recovered, "round %d: NOT RECOVERED: %v", n, err)
	} else {
		rd.LeaderAfter = leader.Name
		r.log.Add(rd.Recovered, "round %d: recovered, %s leads", n, leader.Name)
		if r.c.Router() != nil {
			rd.Routing = r.probeRouting(ctx, n)
		}
	}
	if rd.Fence != nil {
		runs, err := r.c.fence.ReadFenceLog()
		if err != nil {
			rd.Err = err
			return rd
		}
		rd.Fence.Runs = fenceRuns(runs, r.clock, rd.Inject, rd.Recovered)
	}
	rd.measure(r.hist.Ops(), r.lw.Between(rd.Inject, rd.Recovered))
	return rd
}

// injectAndHold starts an action planned before the injection, injects f
// (with a lease sample just before and just after), holds it, and sets
// rd.Heal. A failed injection is healed at once. When the action moved
// the leadership before the injection (a quick switchover), the lease
// check follows the leader at the injection.
func (r *Run) injectAndHold(ctx context.Context, f *fault, rd *Round, act *actionRun, tracker *leaseTracker, lease *LeaseCheck) error {
	if act != nil && act.rec.Offset < 0 {
		act.begin(ctx, rd.N)
		select { // the action's head start is the experiment
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(-act.rec.Offset):
		}
	}
	tracker.Sample(ctx)
	if h := r.c.Node(tracker.Holder()); h != nil && h.Name != lease.Node {
		r.log.Add(r.clock.Now(), "round %d: %s leads at the injection: the lease check follows it", rd.N, h.Name)
		*lease = LeaseCheck{Node: h.Name}
		lease.AgentDeadline, lease.Timeline = r.c.agentDeadline(ctx, h)
	}
	rd.Inject = r.clock.Now()
	err := f.spec.inject(ctx, f)
	rd.Target = f.Target()
	r.log.Add(rd.Inject, "round %d: inject %s on %s (hold %s)", rd.N, f.spec.kind, rd.Target, rd.Hold.Round(time.Millisecond))
	if err != nil {
		rd.Heal = r.clock.Now()
		err = fmt.Errorf("inject %s: %w", f.spec.kind, err)
		if herr := f.spec.heal(ctx, f); herr != nil {
			err = fmt.Errorf("%w (and heal: %w)", err, herr)
		}
		return err
	}
	tracker.Sample(ctx)
	err = r.hold(ctx, f, rd, act)
	rd.Heal = r.clock.Now()
	return err
}

// hold keeps the fault for rd.Hold, starting an action planned during it
// on time. If the fault stopped the primary's agent while its watchdog was
// armed, the node is reset when the device would fire (its last keepalive
// plus its timeout, read from the journal the stopped agent can no longer
// write), if the fault still holds then.
func (r *Run) hold(ctx context.Context, f *fault, rd *Round, act *actionRun) error {
	end := rd.Inject + rd.Hold
	wd, why := time.Duration(-1), ""
	if f.spec.stopsAgent && rd.Watchdog {
		wd, why = r.deviceDeadline(f.node)
	}
	actAt := time.Duration(-1)
	if act != nil && act.rec.Offset >= 0 {
		actAt = rd.Inject + act.rec.Offset
	}
	for {
		now := r.clock.Now()
		if actAt >= 0 && now >= actAt {
			act.begin(ctx, rd.N)
			actAt = -1
			continue
		}
		if wd >= 0 && !f.reset && now >= wd && now < end {
			f.reset, rd.WatchdogReset = true, true
			r.log.Add(now, "round %d: emulated watchdog resets %s (%s)", rd.N, f.node.Name, why)
			if err := f.node.Kill(); err != nil {
				return fmt.Errorf("watchdog reset of %s: %w", f.node.Name, err)
			}
			continue
		}
		if now >= end {
			return nil
		}
		next := end
		if wd >= 0 && !f.reset {
			next = min(next, wd)
		}
		if actAt >= 0 {
			next = min(next, actAt)
		}
		select { // holding the fault is the experiment, not a wait for an event
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(next - now):
		}
	}
}

// deviceDeadline returns when n's watchdog device would fire, on the run's
// clock, and why; -1 when it is not armed (a replica, or an agent that
// fenced and disarmed). Unreadable journals are a harness failure.
func (r *Run) deviceDeadline(n *Node) (time.Duration, string) {
	sessions, err := fencing.ReadJournal(n.JournalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return -1, "" // never armed
	}
	if err != nil {
		r.fail("watchdog journal of %s: %v", n.Name, err)
	}
	if len(sessions) == 0 || !sessions[len(sessions)-1].Armed() {
		return -1, ""
	}
	s := sessions[len(sessions)-1]
	at := r.clock.Now() + time.Until(s.Deadline())
	return at, fmt.Sprintf("device armed, last keepalive at %s + timeout %s", fmtDur(at-s.Timeout), s.Timeout)
}

// routingCandidate is the switchover candidate of a routing kind that
// acts on it (nil for the others: the best candidate). In synchronous mode
// it is a standby the sync key names, the only kind that qualifies; the
// fault's target follows it.
func (r *Run) routingCandidate(ctx context.Context, f *fault) *Node {
	if !f.spec.candidate {
		return nil
	}
	if r.cfg.Sync {
		if n := r.c.syncStandby(ctx, f.primary.Name, r.rng); n != nil {
			f.node = n
		}
	}
	return f.node
}
