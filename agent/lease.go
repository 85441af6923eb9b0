package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// renew keeps the session lease alive. The leader renews every tick and
// moves its deadline to t_send + ttl − safety_margin only after an
// acknowledged keepalive AND a confirmed leader key: etcd cannot expire
// the lease before t_send + ttl. Replicas renew every ttl/3, enough to keep
// their member key.
//
// The leader sends the keepalive and the leader-key read together, both
// after t_send: one round trip, not two, must fit in retry_timeout (the
// chaos suite's slow-etcd faults fenced a leader whose etcd answered in
// 1.5 s, half of retry_timeout, because the two were sequential). Order
// does not matter for safety: both results postdate t_send.
//
// A leader whose renewal fails for a reason that says nothing about the
// key (an etcd outage) runs a failsafe round when failsafe_mode is on
// (failsafe.go); one that finds the key gone in such an episode takes it
// again only if absent (regainAfterFailsafe).
func (a *Agent) renew(parent context.Context) {
	// The failsafe paths get parent: they run after the renewal spent its
	// budget, and bound their own calls (the deadline, failsafeProbe).
	ctx, cancel := a.ioContext(parent)
	defer cancel()
	if a.dcs.Lease() == 0 && a.lease.inFailsafe() {
		a.regainAfterFailsafe(parent)
		return
	}
	if a.dcs.Lease() == 0 {
		if !a.ensureLease(ctx) {
			return
		}
	} else if a.lease.ttl != a.dyn.TTL {
		a.rotateLease(ctx)
	}
	if !a.lease.leading && a.now().Sub(a.lastKeepAlive) < a.dyn.TTL/3 {
		return
	}
	if a.lease.leading && a.pollTick && a.now().Sub(a.lastKeepAlive) < a.dyn.LoopWait/2 {
		// A switchover's 50 ms poll ticks: renewing on each would cost
		// two etcd round trips per tick for nothing. The deadline stays
		// where the last renewal put it (and fences there), and the
		// ticks at the usual cadence renew as always.
		return
	}
	// The send time comes from our own clock, read before the request:
	// etcd cannot expire the lease before sent + ttl.
	sent := a.now()
	var leaderErr error
	var checked sync.WaitGroup
	if a.lease.leading {
		checked.Go(func() { leaderErr = a.dcs.CheckLeader(ctx, a.name) })
	}
	err := a.dcs.KeepAlive(ctx)
	checked.Wait()
	switch {
	case errors.Is(err, dcs.ErrLeaseLost) && a.lease.inFailsafe():
		a.log.Warn("session lease expired at etcd during the failsafe episode")
		a.memberWritten = memberRecord{}
		a.regainAfterFailsafe(parent)
		return
	case errors.Is(err, dcs.ErrLeaseLost):
		a.noteEtcdError(err)
		a.log.Warn("session lease expired at etcd")
		a.memberWritten = memberRecord{}
		if a.lease.leading {
			a.loseLeadership("session lease expired")
		}
		return
	case err != nil && a.lease.leading:
		class := a.noteEtcdError(err)
		a.log.Warn("lease keepalive failed", "err", err, "etcd_error", class.String(), "leading", true,
			"fence_in", a.lease.deadline().Sub(a.now()).Round(time.Millisecond))
		a.failsafeRound(parent, class)
		return
	case err != nil:
		class := a.noteEtcdError(err)
		a.log.Warn("lease keepalive failed", "err", err, "etcd_error", class.String(), "leading", false)
		return
	}
	a.lastKeepAlive = sent
	if !a.lease.leading {
		a.noteEtcdError(nil)
		return
	}
	switch err := leaderErr; {
	case errors.Is(err, dcs.ErrNotLeader) && a.lease.inFailsafe():
		a.log.Warn("the leader key is not on my lease after the failsafe episode", "err", err)
		a.regainAfterFailsafe(parent)
	case errors.Is(err, dcs.ErrNotLeader):
		a.noteEtcdError(err)
		a.loseLeadership("the leader key is no longer mine")
	case err != nil:
		class := a.noteEtcdError(err)
		a.log.Warn("cannot confirm the leader key", "err", err, "etcd_error", class.String())
		a.failsafeRound(parent, class)
	default:
		a.noteEtcdError(nil)
		next, extended := a.lease.renewed(sent)
		a.setLease(next)
		if extended && !a.dyn.Pause {
			a.pingWatchdog()
		}
	}
}

// ensureLease grants a session lease when there is none (it expired at
// etcd, or none was granted yet); a leader without one has lost the
// leadership. It reports whether there is a lease now.
func (a *Agent) ensureLease(ctx context.Context) bool {
	if a.dcs.Lease() != 0 {
		return true
	}
	if a.lease.leading {
		a.loseLeadership("no session lease")
	}
	if _, err := a.dcs.GrantLease(ctx, a.dyn.TTL); err != nil {
		a.log.Warn("cannot grant a session lease", "err", err)
		return false
	}
	a.setLease(a.lease.granted(a.dyn.TTL))
	a.memberWritten = memberRecord{} // the member key must be re-put on the new lease
	return true
}

// rotateLease moves this member to a lease with the new ttl: grant, move
// the leader key (guarded by value and old lease, never created), and let
// the member key follow on the next publish. The old lease is left to
// expire: nothing is attached to it any more. The deadline drops at once
// to the new lease's (leadership.rotated): a shorter ttl must not leave
// the leader writable on the old lease's schedule.
func (a *Agent) rotateLease(ctx context.Context) {
	old := a.dcs.Lease()
	sent := a.now()
	if _, err := a.dcs.GrantLease(ctx, a.dyn.TTL); err != nil {
		a.log.Warn("cannot grant a lease with the new ttl", "err", err, "ttl", a.dyn.TTL)
		return
	}
	a.log.Info("session lease rotated for the new ttl", "ttl", a.dyn.TTL)
	a.setLease(a.lease.rotated(sent, a.dyn.TTL))
	a.memberWritten = memberRecord{}
	if !a.lease.leading {
		return
	}
	if err := a.dcs.ReattachLeader(ctx, a.name, old); err != nil {
		a.loseLeadership("could not move the leader key to the new lease: " + err.Error())
	}
}

// loseLeadership forgets the lease. It never re-creates the leader key:
// decide demotes a primary that does not hold it.
func (a *Agent) loseLeadership(why string) {
	a.log.Warn("lost leadership", "reason", why)
	a.setLease(a.lease.lost())
}

// setLease is the only assignment of the leadership value; it also
// publishes the bound every etcd and PostgreSQL call must respect
// (boundedDCS, ioDeadline), readable from any goroutine.
func (a *Agent) setLease(l leadership) {
	a.lease = l
	a.publishLimits()
}
