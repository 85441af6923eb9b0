package chaos

import (
	"context"
	"fmt"
	"time"
)

// Round is the record of one fault: what, when, and what followed.
type Round struct {
	N      int
	Kind   FaultKind
	Target string
	Hold   time.Duration
	// Watchdog: the agents ran with the (journal) watchdog device this
	// round; without it, the default configuration (watchdog off).
	Watchdog bool
	// Failsafe: the round ran with failsafe_mode on.
	Failsafe bool
	// Action is the operator action paired with the fault, if any.
	Action *Action
	// Inject, Heal and Recovered are times on the run's clock.
	Inject, Heal, Recovered time.Duration
	LeaderBefore            string
	LeaderAfter             string
	// LeaderKeyLost: the leader key was deleted during the round.
	LeaderKeyLost bool
	// Failover: the round ended with another node leading.
	Failover bool
	// RTO (failover rounds): from the injection to the first write the
	// new leader acknowledged.
	RTO time.Duration
	// Unavailable: the longest stretch in [Inject, Recovered] without any
	// acknowledged write.
	Unavailable time.Duration
	// WatchdogReset: the emulated watchdog reset the target node.
	WatchdogReset bool
	Lease         *LeaseCheck
	// Fence is a fence round's check (nil for the other kinds).
	Fence *FenceCheck
	// Routing is a routing-mode round's probes of PgBouncer after its
	// recovery (nil without routing, or when it did not recover).
	Routing *RoutingCheck
	Err     error
}

// LeaseCheck measures, for the primary at the start of the round, its
// last acknowledgement against the earliest moment its leadership could
// expire at etcd. That moment is read from etcd itself, every
// leaseSampleInterval from before the round's action and injection until
// its heal (see leaseBound): a LeaseTimeToLive sent at t answering TTL
// (whole seconds, truncated) proves the lease cannot expire before t +
// TTL, and keepalives only push expiry later. The key may move to a lease
// of another ttl meanwhile (a ttl change): only the lease it was last seen
// on counts.
type LeaseCheck struct {
	Node string
	// Timeline is the primary's timeline at injection (its tenure).
	Timeline int
	Bound    time.Duration // earliest possible expiry at etcd
	// TTL is the granted ttl of the lease Bound comes from: the ttl in
	// force for it.
	TTL time.Duration
	// Note explains a conservative Bound (see leaseBound); "" otherwise.
	Note string
	// AgentDeadline is the agent's own fence point as GET /patroni
	// reported it just before the injection (informational: the value is
	// as of the agent's last tick, so it can be up to a tick late).
	AgentDeadline time.Duration
	// Deleted is when the test process saw the leader key deleted (by
	// expiry, or earlier by the fenced leader's own release); 0 if not.
	Deleted time.Duration
	// LastAck is the completion of the last operation the node answered
	// as primary on that timeline after the injection: a write, or a read
	// (in synchronous mode a primary cut from its standbys acknowledges no
	// write, so its reads are what shows when it stopped); 0: none.
	// LastWrite is the same for writes alone.
	LastAck, LastWrite time.Duration
	// Applies: the fault lasted past Bound (else the lease may have been
	// renewed after the heal and later acks are legitimate).
	Applies bool
	OK      bool
}

// Margin is how long before the earliest possible expiry the last
// acknowledgement came.
func (l *LeaseCheck) Margin() time.Duration { return l.Bound - l.LastAck }

// Measured reports whether the check applies and has an ack to measure.
func (l *LeaseCheck) Measured() bool { return l != nil && l.Applies && l.LastAck > 0 }

func (l *LeaseCheck) String() string {
	if !l.Applies {
		return "n/a (the lease could not expire before the heal)"
	}
	verdict := "ok"
	if !l.OK {
		verdict = "VIOLATED"
	}
	expiry := fmt.Sprintf("lease expiry at etcd ≥ %s (ttl %s)", fmtDur(l.Bound), l.TTL)
	if l.Note != "" {
		expiry += " [" + l.Note + "]"
	}
	if l.Deleted > 0 {
		expiry += fmt.Sprintf(" (leader key deleted at %s)", fmtDur(l.Deleted))
	}
	if l.LastAck == 0 {
		return fmt.Sprintf("%s: no ack after the injection, %s", verdict, expiry)
	}
	s := fmt.Sprintf("%s: last ack %s, %s, margin %s", verdict, fmtDur(l.LastAck), expiry, fmtDur(l.Margin()))
	if l.LastWrite == 0 {
		s += " (reads only)"
	} else if l.LastAck-l.LastWrite >= time.Millisecond {
		s += fmt.Sprintf(" (last write %s)", fmtDur(l.LastWrite))
	}
	if l.AgentDeadline > 0 {
		s += fmt.Sprintf(", agent's own deadline ≈ %s", fmtDur(l.AgentDeadline))
	}
	return s
}

// agentDeadline reads the primary's own fence point and timeline from
// GET /patroni (0 if unavailable).
func (c *Cluster) agentDeadline(ctx context.Context, n *Node) (time.Duration, int) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	sent := c.clock.Now()
	st, err := n.Status(ctx)
	if err != nil || st.Role != "primary" || st.Regent.LeaseRemainingMs <= 0 {
		return 0, 0
	}
	return sent + time.Duration(st.Regent.LeaseRemainingMs)*time.Millisecond, st.Timeline
}

// evaluate fills in the check from the history once the round is over.
func (l *LeaseCheck) evaluate(ops []Op, r *Round, changes []LeaderChange) {
	l.Applies = l.Bound > 0 && r.Heal >= l.Bound && !r.Failsafe
	if r.Failsafe && l.Note == "" {
		// The members' failsafe acknowledgements, not the lease, bound a
		// leader that etcd cannot reach: the split-brain check judges it.
		l.Note = "failsafe round: bounded by the members' acknowledgements"
	}
	l.OK = true
	if l.Timeline == 0 {
		l.Timeline = tenureTimeline(ops, l.Node, r.Inject)
	}
	for _, ch := range changes {
		if ch.Leader == "" && l.Deleted == 0 {
			l.Deleted = ch.At
		}
	}
	for _, o := range ops {
		if o.Node != l.Node || !servedAsPrimary(o) || o.Timeline != l.Timeline || o.Complete < r.Inject {
			continue
		}
		l.LastAck = max(l.LastAck, o.Complete)
		if o.Kind != OpRead {
			l.LastWrite = max(l.LastWrite, o.Complete)
		}
	}
	if l.Applies && l.LastAck > l.Bound {
		l.OK = false
	}
}

// tenureTimeline is the timeline of node's tenure at inject when GET
// /patroni did not say: the last one it served on as primary before
// inject, or else (a leader that had just taken over) the first one after.
func tenureTimeline(ops []Op, node string, inject time.Duration) int {
	var before, after Op
	for _, o := range ops {
		switch {
		case o.Node != node || !servedAsPrimary(o):
		case o.Complete < inject && o.Complete >= before.Complete:
			before = o
		case o.Complete >= inject && (after.Timeline == 0 || o.Complete < after.Complete):
			after = o
		}
	}
	if before.Timeline != 0 {
		return before.Timeline
	}
	return after.Timeline
}

// measure computes failover, RTO and unavailability from the history.
func (r *Round) measure(ops []Op, changes []LeaderChange) {
	for _, ch := range changes {
		if ch.Leader == "" {
			r.LeaderKeyLost = true
		}
	}
	r.Failover = r.LeaderAfter != "" && r.LeaderAfter != r.LeaderBefore
	prev := r.Inject
	for _, o := range ops {
		if o.Outcome != OK || o.Kind == OpRead || o.Complete <= r.Inject || o.Complete > r.Recovered {
			continue
		}
		if r.Failover && r.RTO == 0 && o.Node == r.LeaderAfter && o.Invoke >= r.Inject {
			r.RTO = o.Complete - r.Inject
		}
		if o.Complete > prev {
			r.Unavailable = max(r.Unavailable, o.Complete-prev)
			prev = o.Complete
		}
	}
	if r.Lease != nil {
		r.Lease.evaluate(ops, r, changes)
	}
	if r.Fence != nil && r.Lease != nil {
		r.Fence.evaluate(ops, changes, r.LeaderBefore, r.Lease.Timeline, r.Lease.Bound)
	}
}

func (r *Round) String() string {
	s := fmt.Sprintf("round %3d %-25s %-22s hold %5.1fs", r.N, r.Kind, r.Target, r.Hold.Seconds())
	if !r.Watchdog {
		s += "  [no watchdog]"
	}
	if r.Action != nil {
		s += "  action " + r.Action.String()
	}
	if r.Err != nil {
		s += " ERROR: " + r.Err.Error()
		if r.Lease != nil {
			s += "  lease " + r.Lease.String()
		}
		return s
	}
	switch {
	case r.Failover:
		s += fmt.Sprintf("  failover %s→%s RTO %5.2fs", r.LeaderBefore, r.LeaderAfter, r.RTO.Seconds())
	case r.LeaderKeyLost:
		s += fmt.Sprintf("  re-elected %-6s        ", r.LeaderAfter)
	default:
		s += fmt.Sprintf("  no failover (%s)     ", r.LeaderAfter)
	}
	s += fmt.Sprintf("  unavailable %5.2fs  recovered %5.1fs after heal", r.Unavailable.Seconds(), (r.Recovered - r.Heal).Seconds())
	if r.WatchdogReset {
		s += "  [watchdog reset]"
	}
	if r.Lease != nil {
		s += "  lease " + r.Lease.String()
	}
	if r.Fence != nil {
		s += "  " + r.Fence.String()
	}
	if r.Routing != nil {
		s += "  pgbouncer " + r.Routing.String()
	}
	return s
}
