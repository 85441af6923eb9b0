package agent

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/routing"
	"github.com/regent-ha/regent/switchover"
)

// Routing (docs/routing.md) runs beside the loop, one piece of work at a
// time: a PgBouncer PAUSE waits for running transactions for up to its
// pause_timeout, longer than a tick may take, and a stuck router must
// never delay a lease renewal or a fence. The loop collects the outcome
// (waitNextTick wakes on it) and writes it into the switchover record.
//
// How routing keeps the safety rule: it never makes a node writable and
// never decides who leads. The repoint runs only on the member that holds
// the leader key and has promoted (race, or the switchover's new leader),
// and points traffic at that member alone; the pause runs on the old
// primary while it still holds the lease and only holds traffic back. If
// the leader loses its lease while routing work runs, the loop fences
// PostgreSQL as always: the routers then point at a member that refuses
// writes, which costs availability, never safety.

// routingActive reports which switchover points have actions, and whether
// routing work runs now, for switchover.Next.
func (a *Agent) routingInputs() switchover.Routing {
	if a.router == nil {
		return switchover.Routing{}
	}
	c := a.router.Config
	return switchover.Routing{
		Pause:   len(routing.Plan(c, routing.PointPause, routing.Target{})) > 0,
		Repoint: len(routing.Plan(c, routing.PointRepoint, routing.Target{})) > 0,
		Busy:    a.routingJob != nil,
	}
}

// routingTarget: this member as the one traffic goes to.
func (a *Agent) routingTarget(id string, v *dcs.Cluster) routing.Target {
	t := routing.Target{Switchover: id, Leader: a.name}
	if host, port, err := net.SplitHostPort(a.cfg.Postgres.ConnectAddress); err == nil {
		t.Host = host
		t.Port, _ = strconv.Atoi(port)
	}
	if v != nil {
		for _, m := range v.MemberNames() {
			if m != a.name {
				t.Others = append(t.Others, m)
			}
		}
	}
	return t
}

// startRouting runs point's actions beside the loop; done runs in the
// loop with the results. False when routing is off, has nothing to do at
// point, or other routing work still runs (Next asks again later).
func (a *Agent) startRouting(ctx context.Context, p routing.Point, id string, done func([]routing.Result)) bool {
	if a.router == nil || a.routingJob != nil {
		return false
	}
	t := a.routingTarget(id, a.dcs.View())
	return a.startActions(ctx, p, id, t, routing.Plan(a.router.Config, p, t), done)
}

// startActions runs actions of point beside the loop (see startRouting).
func (a *Agent) startActions(ctx context.Context, p routing.Point, id string, t routing.Target, actions []routing.Action, done func([]routing.Result)) bool {
	if len(actions) == 0 {
		return false
	}
	var results []routing.Result
	a.routingJob = a.goBeside(ctx, "routing "+string(p), func(ctx context.Context) error {
		results = a.router.Run(ctx, p, t, actions)
		return routing.FirstError(results)
	}, func(error) {
		a.routingJob = nil
		a.routingDebt = a.routingDebt.after(p, results, a.now())
		for _, r := range results {
			if r.Err != nil {
				a.log.Warn("routing action failed", "point", p, "action", r.Desc, "took", r.Took, "switchover_id", id, "err", r.Err)
			} else {
				a.log.Info("routing action done", "point", p, "action", r.Desc, "took", r.Took, "switchover_id", id)
			}
		}
		if done != nil {
			done(results)
		}
	})
	return true
}

// collectRouting finishes routing work that has ended, without blocking.
func (a *Agent) collectRouting() {
	if a.routingJob != nil {
		a.collect(a.routingJob)
	}
}

// appendRouting records each result as a timed event at stage.
func appendRouting(r *switchover.Record, stage switchover.Stage, p routing.Point, results []routing.Result) {
	for _, res := range results {
		if res.Err != nil {
			r.AppendTimed(stage, switchover.KindWarning, res.Took, "routing %s: %s failed after %s: %v", p, res.Desc, res.Took.Round(1e6), res.Err)
		} else {
			r.AppendTimed(stage, switchover.KindInfo, res.Took, "routing %s: %s done in %s", p, res.Desc, res.Took.Round(1e6))
		}
	}
}

// pauseRouting pauses the poolers before QUIESCE_WRITES; the record keeps
// the outcome, from which Next goes on to quiesce or aborts.
func (a *Agent) pauseRouting(ctx context.Context, r *switchover.Record) {
	id := r.ID
	a.startRouting(ctx, routing.PointPause, id, func(results []routing.Result) {
		err := routing.AbortError(routing.PointPause, results)
		if _, uerr := a.updateRecord(ctx, id, func(r *switchover.Record) error {
			appendRouting(r, switchover.StagePreFlight, routing.PointPause, results)
			r.UpdateRouting(func(s *switchover.RoutingState) {
				if err != nil {
					s.PauseFailed = err.Error()
				} else {
					s.Paused = true
				}
			})
			return nil
		}); uerr != nil {
			// Next asks for the pause again; PAUSE of a paused database is
			// refused, so a failed write ends as a failed pause and the
			// restore resumes: the old primary stays the primary.
			a.log.Error("cannot record the routing pause", "switchover_id", id, "err", uerr)
		}
	})
}

// restoreRouting resumes the poolers after a switchover ended before the
// promotion (RESUME of a database that is not paused is fine).
func (a *Agent) restoreRouting(ctx context.Context, id string) {
	a.startRouting(ctx, routing.PointRestore, id, func(results []routing.Result) {
		if id == "" {
			return
		}
		if _, err := a.updateRecord(ctx, id, func(r *switchover.Record) error {
			appendRouting(r, r.Stage, routing.PointRestore, results)
			return nil
		}); err != nil {
			a.log.Warn("cannot record the routing restore", "switchover_id", id, "err", err)
		}
	})
}

// repointRouting points the routers at this member once it has promoted:
// for the switchover id (the record keeps the outcome; failures are
// retried in CLEANUP), or for an automatic failover (id "": logged).
func (a *Agent) repointRouting(ctx context.Context, id string, retry bool) {
	p, stage := routing.PointRepoint, switchover.StageRepoint
	if id == "" {
		p = routing.PointFailover
	}
	if retry {
		stage = switchover.StageCleanup
	}
	a.startRouting(ctx, p, id, func(results []routing.Result) {
		if id == "" {
			return
		}
		failed := len(routing.Failed(results)) > 0
		if _, err := a.updateRecord(ctx, id, func(r *switchover.Record) error {
			appendRouting(r, stage, p, results)
			r.UpdateRouting(func(s *switchover.RoutingState) {
				if retry {
					s.Retried = true
					return
				}
				s.Repointed, s.Retry = true, failed
			})
			return nil
		}); err != nil {
			a.log.Warn("cannot record the routing repoint", "switchover_id", id, "err", err)
		}
	})
}

// routeAfterPromotion starts the repoint the moment this member promoted
// (race), before the switchover machine's next tick: the routers send
// traffic here as soon as PostgreSQL accepts it.
func (a *Agent) routeAfterPromotion(ctx context.Context, v *dcs.Cluster) {
	id := ""
	if r := a.activeSwitchover(v); r != nil && r.To == a.name {
		id = r.ID
	}
	a.repointRouting(ctx, id, false)
}

// routingRetryInterval is how often a leader runs PgBouncer actions it
// owes again (routingDebt).
const routingRetryInterval = 5 * time.Second

// routingDebt is the PgBouncer work a leader still owes: the actions of
// its last repoint, failover or restore that failed. Without it a
// PgBouncer that the new primary could not reach at its repoint and at
// the CLEANUP retry (a few hundred milliseconds later) stayed paused, or
// pointed at the old primary, until the next leader change: the chaos
// suite's pgbouncer-cut-candidate found it. HAProxy failures are not
// owed (its health checks move traffic anyway), nor hooks (they own
// their retries), nor a failed pause (the switchover aborts and the
// restore follows).
//
// How it keeps the safety rule: the debt is paid only from lead(), the
// upkeep of a member that holds the leader key and runs as primary, and
// only with the actions that point traffic at this member (or resume it);
// it is dropped the moment leadership is lost (tick). The actions run
// beside the loop like every routing action, never inside a tick.
type routingDebt struct {
	point   routing.Point
	actions []routing.Action
	due     time.Time
}

// after is the debt once point's results are in: the failed PgBouncer
// repoint or resume actions, due routingRetryInterval from now, or none
// when they all succeeded. A pause leaves it as it was.
func (d routingDebt) after(p routing.Point, results []routing.Result, now time.Time) routingDebt {
	switch p {
	case routing.PointRepoint, routing.PointFailover, routing.PointRestore:
	default:
		return d
	}
	var owed []routing.Action
	for _, r := range results {
		if r.Err != nil && (r.Action.Kind == routing.PgBouncerRepoint || r.Action.Kind == routing.PgBouncerResume) {
			owed = append(owed, r.Action)
		}
	}
	if len(owed) == 0 {
		return routingDebt{}
	}
	return routingDebt{point: p, actions: owed, due: now.Add(routingRetryInterval)}
}

// dueAt reports whether the debt is to be paid at now: something is owed
// and due, no routing work runs, and no switchover runs (it drives the
// routers itself, and its repoint supersedes the debt).
func (d routingDebt) dueAt(now time.Time, busy, switchover bool) bool {
	return len(d.actions) > 0 && !busy && !switchover && !now.Before(d.due)
}

// payRoutingDebt runs the owed actions again when due; called by the
// leader's upkeep (lead) only.
func (a *Agent) payRoutingDebt(ctx context.Context, s Snapshot) {
	d := a.routingDebt
	if a.router == nil || !d.dueAt(a.now(), a.routingJob != nil, s.Switchover != nil) {
		return
	}
	a.log.Info("retrying routing actions that failed", "point", d.point, "actions", len(d.actions))
	a.startActions(ctx, d.point, "", a.routingTarget("", s.View), slices.Clone(d.actions), nil)
}
