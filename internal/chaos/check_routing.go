package chaos

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// routingBound is how long after a round's recovery PgBouncer may take to
// route writes to the leader again: generous (a repoint takes
// milliseconds, a CLEANUP retry a few seconds); what it catches is a
// PgBouncer left paused or pointing at a former primary for good.
const routingBound = 30 * time.Second

// RoutingProbe is one look at PgBouncer after a round: the leader key
// before and after, the routed database's state on the admin console,
// and a write through PgBouncer with the node that took it.
type RoutingProbe struct {
	At time.Duration
	// Leader and LeaderAfter are the leader key's holder read just before
	// and just after the write ("" unreadable or absent).
	Leader, LeaderAfter string
	// Paused: SHOW DATABASES says the routed database is paused; Host is
	// where it points; AdminErr is why the admin console did not answer.
	Paused   bool
	Host     string
	AdminErr string
	// Landed is the node that took the write; WriteErr why it failed.
	Landed   string
	WriteErr string
}

// OK: PgBouncer is not paused, and a write through it landed on the node
// that held the leader key across the write.
func (p RoutingProbe) OK() bool {
	return p.AdminErr == "" && p.WriteErr == "" && !p.Paused && p.Leader != "" &&
		p.Landed == p.Leader && p.LeaderAfter == p.Leader
}

func (p RoutingProbe) String() string {
	admin := fmt.Sprintf("paused=%v host=%s", p.Paused, p.Host)
	if p.AdminErr != "" {
		admin = "admin console: " + p.AdminErr
	}
	write := "write landed on " + p.Landed
	if p.WriteErr != "" {
		write = "write: " + p.WriteErr
	}
	return fmt.Sprintf("%s leader %s (after: %s), %s, %s", fmtDur(p.At), orNone(p.Leader), orNone(p.LeaderAfter), admin, write)
}

func orNone(s string) string { return cmp.Or(s, "none") }

// RoutingCheck is a routing-mode round's probes, taken from its recovery
// until one is OK or routingBound has passed.
type RoutingCheck struct {
	From   time.Duration // the round's recovery: probing starts there
	Probes []RoutingProbe
}

// Routed is the first OK probe's time after From (-1: none).
func (rc *RoutingCheck) Routed() time.Duration {
	for _, p := range rc.Probes {
		if p.OK() {
			return p.At - rc.From
		}
	}
	return -1
}

// OK: a probe was OK within bound of the recovery.
func (rc *RoutingCheck) OK(bound time.Duration) bool {
	d := rc.Routed()
	return d >= 0 && d <= bound
}

func (rc *RoutingCheck) String() string {
	if d := rc.Routed(); d >= 0 {
		return fmt.Sprintf("routed to the leader %s after recovery (%d probes)", fmtDur(d), len(rc.Probes))
	}
	return fmt.Sprintf("NOT routed to the leader (%d probes)", len(rc.Probes))
}

// ViaStats counts the workload's inserts sent through PgBouncer.
type ViaStats struct {
	Sent, Acked, Failed, Unknown, Lost int
	// ByNode counts the acknowledged ones by the node that took them.
	ByNode map[string]int
}

// viaStats counts ops' inserts through PgBouncer and those of lost.
func viaStats(ops []Op, lost []LostWrite) ViaStats {
	s := ViaStats{ByNode: map[string]int{}}
	for _, o := range ops {
		if o.Via == "" || o.Kind != OpInsert {
			continue
		}
		s.Sent++
		switch o.Outcome {
		case OK:
			s.Acked++
			s.ByNode[o.Node]++
		case Fail:
			s.Failed++
		case Unknown:
			s.Unknown++
		}
	}
	for _, l := range lost {
		if l.Op.Via != "" {
			s.Lost++
		}
	}
	return s
}

func (s ViaStats) String() string {
	var nodes []string
	for n, c := range s.ByNode {
		nodes = append(nodes, fmt.Sprintf("%s %d", n, c))
	}
	slices.Sort(nodes)
	return fmt.Sprintf("%d writes through PgBouncer: %d acknowledged (%s), %d failed, %d unknown; %d acknowledged lost",
		s.Sent, s.Acked, strings.Join(nodes, ", "), s.Failed, s.Unknown, s.Lost)
}

// CheckRouting is the routing checker: after every round that recovered,
// within bound of its recovery, PgBouncer was not paused and a write
// through it landed on the leader key's holder. The lost-write and
// split-brain checkers cover the writes acknowledged through it (they
// carry the node that took them); the summary counts them.
func CheckRouting(rounds []*Round, ops []Op, lost []LostWrite, bound time.Duration) Verdict {
	v := Verdict{Name: "routing", OK: true}
	checked := 0
	var worst time.Duration
	var bad []string
	for _, r := range rounds {
		if r.Routing == nil {
			continue
		}
		checked++
		if !r.Routing.OK(bound) {
			bad = append(bad, routingFailure(r, bound))
			continue
		}
		worst = max(worst, r.Routing.Routed())
	}
	v.Summary = fmt.Sprintf("%d rounds: PgBouncer resumed and routed writes to the leader within %s of recovery (slowest %s); %s",
		checked, bound, fmtDur(worst), viaStats(ops, lost))
	if len(bad) > 0 {
		v.OK = false
		v.Summary = fmt.Sprintf("%d of %d rounds left PgBouncer paused or not routing to the leader %s after recovery; %s",
			len(bad), checked, bound, viaStats(ops, lost))
		v.Details = strings.Join(bad, "")
	}
	return v
}

// routingFailure renders a failed round: its fault, and its first and
// last probes.
func routingFailure(r *Round, bound time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  round %d (%s%s on %s, leader %s→%s): %s within %s of recovery at %s\n",
		r.N, r.Kind, actionSuffix(r), r.Target, r.LeaderBefore, r.LeaderAfter, r.Routing, bound, fmtDur(r.Routing.From))
	ps := r.Routing.Probes
	for i, p := range ps {
		if len(ps) > 6 && i == 3 {
			fmt.Fprintf(&b, "    … %d probes …\n", len(ps)-6)
		}
		if len(ps) > 6 && i >= 3 && i < len(ps)-3 {
			continue
		}
		fmt.Fprintf(&b, "    probe %s\n", p)
	}
	return b.String()
}

// probeRouting probes PgBouncer every pollInterval from now until a probe
// is OK or routingBound has passed, and returns the probes.
func (r *Run) probeRouting(ctx context.Context, round int) *RoutingCheck {
	rt := r.c.Router()
	rc := &RoutingCheck{From: r.clock.Now()}
	for {
		p := RoutingProbe{At: r.clock.Now()}
		p.Leader, _ = r.c.Leader(ctx)
		if db, err := rt.Show(ctx); err != nil {
			p.AdminErr = shortErr(err)
		} else {
			p.Paused, p.Host = db.Paused, db.Host
		}
		if landed, err := rt.Write(ctx, round); err != nil {
			p.WriteErr = shortErr(err)
		} else {
			p.Landed = landed
		}
		p.LeaderAfter, _ = r.c.Leader(ctx)
		rc.Probes = append(rc.Probes, p)
		if p.OK() {
			return rc
		}
		if p.At-rc.From > routingBound || ctx.Err() != nil {
			r.log.Add(r.clock.Now(), "round %d: PgBouncer does not route to the leader: %s", round, p)
			return rc
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}
