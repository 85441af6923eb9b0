package agent

import (
	"time"

	"github.com/regent-ha/regent/fencing"
)

// leadership is the one owner of this agent's hold on the leader key: the
// session lease's TTL, whether it leads, the deadline by which it must
// have stopped writes, and when the watchdog was last pinged. It is a value
// with pure transitions (won, renewed, failsafe renewed, regained,
// rotated, pinged, lost, fence failed); the loop replaces it whole through Agent.setLease and nothing
// else assigns its fields. Table-tested in leadership_test.go.
//
// The deadline is the earlier of two bounds:
//
//   - the lease: t_send of the last acknowledged renewal + ttl −
//     safety_margin (etcd cannot expire the lease before t_send + ttl); a
//     rotation to a shorter lease can only lower it;
//   - the watchdog, while armed: last ping + device timeout − the fence
//     budget, so the agent fences itself before the device would reset a
//     host whose renewals were too slow to ping it.
type leadership struct {
	margin time.Duration // watchdog.safety_margin (static config)

	// ttl is the TTL of the session lease held (0 before the first grant).
	ttl     time.Duration
	leading bool
	// lastAck is the send time of the last renewal that extended the lease
	// deadline (or of the winning acquire).
	lastAck       time.Time
	leaseDeadline time.Time
	// wdFires is when the armed watchdog fires if not pinged again (zero
	// while it is not armed).
	wdFires time.Time
	// unfenced: the agent stopped leading but its fencing stop failed, so
	// PostgreSQL may still accept writes. The key stays held, the watchdog
	// stays armed and the stop is retried every tick until it succeeds.
	unfenced bool
	// failsafeSince is the send time of the first failsafe round of the
	// current episode: the deadline rests on the members' acknowledgements
	// (failsafeRenewed), not on etcd. Zero otherwise.
	failsafeSince time.Time
}

func newLeadership(margin time.Duration) leadership { return leadership{margin: margin} }

// granted: a new session lease of ttl (not leading on it yet).
func (l leadership) granted(ttl time.Duration) leadership {
	l.ttl = ttl
	return l
}

// won: the leader key was taken on the current lease after a keepalive
// sent at sent.
func (l leadership) won(sent time.Time) leadership {
	l.leading, l.unfenced = true, false
	l.lastAck, l.leaseDeadline, l.wdFires = sent, sent.Add(l.ttl-l.margin), time.Time{}
	l.failsafeSince = time.Time{}
	return l
}

// renewed: a keepalive sent at sent was acknowledged and the leader key
// confirmed. It reports whether the deadline moved later: only such a
// renewal may ping the watchdog.
func (l leadership) renewed(sent time.Time) (leadership, bool) {
	if !l.leading {
		return l, false
	}
	l.failsafeSince = time.Time{} // etcd confirmed the key: the episode is over
	return l.extended(sent)
}

// failsafeRenewed: etcd could not be asked, and every member of the
// topology (the last etcd view) answered a failsafe call
// sent after sent (agent/failsafe.go). Each of them then refuses to race or
// promote until at least sent + ttl on its own clock, so the deadline moves
// exactly as a renewal's would, and the watchdog rule is the same: only a
// round that moved it later may ping.
func (l leadership) failsafeRenewed(sent time.Time) (leadership, bool) {
	if !l.leading {
		return l, false
	}
	if l.failsafeSince.IsZero() {
		l.failsafeSince = sent
	}
	return l.extended(sent)
}

// regained: during a failsafe episode etcd expired the session lease (and
// the leader key with it); the key was created again, only if absent, on a
// new lease of ttl granted by a request sent at sent, before the deadline.
// The key is etcd's again: the episode ends, and the deadline moves as on
// a renewal on the new lease (never earlier: the members' holds still
// cover the current one).
func (l leadership) regained(sent time.Time, ttl time.Duration) (leadership, bool) {
	if !l.leading {
		return l, false
	}
	l.ttl, l.failsafeSince = ttl, time.Time{}
	return l.extended(sent)
}

// extended moves the deadline to sent + ttl − margin if that is later.
func (l leadership) extended(sent time.Time) (leadership, bool) {
	d := sent.Add(l.ttl - l.margin)
	if !d.After(l.leaseDeadline) {
		return l, false
	}
	l.lastAck, l.leaseDeadline = sent, d
	return l, true
}

// inFailsafe reports a leader whose deadline rests on a failsafe round.
func (l leadership) inFailsafe() bool { return l.leading && !l.failsafeSince.IsZero() }

// rotated: the member moved to a new lease of ttl granted by a request
// sent at sent. The new lease cannot expire before sent + ttl, the old one
// not before the current deadline's basis; the leader key sits on one of
// them, so the deadline is the earlier of the two. A longer ttl takes
// effect with the next renewal.
func (l leadership) rotated(sent time.Time, ttl time.Duration) leadership {
	l.ttl = ttl
	if l.leading {
		if d := sent.Add(ttl - l.margin); d.Before(l.leaseDeadline) {
			l.leaseDeadline = d
		}
	}
	return l
}

// pinged: the armed watchdog (timeout t) was pinged at at.
func (l leadership) pinged(at time.Time, t time.Duration) leadership {
	if l.leading || l.unfenced {
		l.wdFires = at.Add(t)
	}
	return l
}

// disarmed: the watchdog was disarmed (or is off).
func (l leadership) disarmed() leadership {
	l.wdFires = time.Time{}
	return l
}

// lost: the leader key is no longer ours, or writes stopped for good (a
// successful fence, a release). The session lease stays.
func (l leadership) lost() leadership {
	l.leading, l.unfenced = false, false
	l.lastAck, l.leaseDeadline, l.wdFires, l.failsafeSince = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return l
}

// fenceFailed: the agent stopped leading but could not stop PostgreSQL.
// It keeps the watchdog timing (the device must fire if the agent hangs
// now) and is fenced again on the next tick.
func (l leadership) fenceFailed() leadership {
	l.leading, l.unfenced, l.failsafeSince = false, true, time.Time{}
	return l
}

// deadline is when writes must have stopped (zero when not leading).
func (l leadership) deadline() time.Time {
	if !l.leading {
		return time.Time{}
	}
	d := l.leaseDeadline
	if !l.wdFires.IsZero() {
		if w := l.wdFires.Add(-l.fenceBudget()); w.Before(d) {
			d = w
		}
	}
	return d
}

// pingable reports whether a watchdog ping at now is safe: the device,
// pinged now, fires before the last acknowledged renewal's lease can
// expire (fencing.KeepaliveWindow). Arm pings too, so it obeys the same rule.
func (l leadership) pingable(now time.Time) bool {
	return l.leading && now.Sub(l.lastAck) < fencing.KeepaliveWindow(l.ttl, l.margin)
}

// fenceBudget is how long the fencing stop may take: from the lease
// deadline of a healthy renewal to the moment the device, pinged right
// after it, would fire; never more than safety_margin, never less than
// fencing.FenceGrace. At ttl 10 s and safety_margin 3 s it is 1 s.
func (l leadership) fenceBudget() time.Duration {
	return fenceBudget(l.ttl, l.margin)
}

func fenceBudget(ttl, margin time.Duration) time.Duration {
	b := fencing.DeviceTimeout(ttl, margin) - (ttl - margin)
	return min(max(b, fencing.FenceGrace), margin)
}

// state is what decide sees.
func (l leadership) state(leaseID int64) LeaseState {
	return LeaseState{Leading: l.leading, Deadline: l.deadline(), ID: leaseID, Unfenced: l.unfenced, Failsafe: l.inFailsafe()}
}
