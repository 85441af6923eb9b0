package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	Seed     uint64
	Mode     string
	Routing  bool // routing mode: PgBouncer in front (CheckRouting)
	Rounds   []*Round
	Verdicts []Verdict
	Lost     []LostWrite
	// LostByRound counts lost writes by the round they were invoked in
	// (0: before the first injection).
	LostByRound map[int]int
	Ops         int
	MaxLag      int64
	Timeline    *Timeline
	LogDir      string
	Elapsed     time.Duration
}

// replace puts v in place of the verdict of the same name.
func (rep *Report) replace(v Verdict) {
	for i := range rep.Verdicts {
		if rep.Verdicts[i].Name == v.Name {
			rep.Verdicts[i] = v
			return
		}
	}
	rep.Verdicts = append(rep.Verdicts, v)
}

// OK reports whether every checker passed.
func (rep *Report) OK() bool {
	for _, v := range rep.Verdicts {
		if !v.OK {
			return false
		}
	}
	return true
}

// CheckLease is the verdict over every round's LeaseCheck. Its summary
// gives the smallest margin apart for rounds with and without the
// watchdog: without it, the agent's own deadline is all that holds.
func CheckLease(rounds []*Round) Verdict {
	v := Verdict{Name: "lease", OK: true}
	applied := 0
	var on, off margins
	var bad []string
	for _, r := range rounds {
		if r.Lease == nil || !r.Lease.Applies {
			continue
		}
		applied++
		if r.Watchdog {
			on.add(r.Lease)
		} else {
			off.add(r.Lease)
		}
		if !r.Lease.OK {
			bad = append(bad, fmt.Sprintf("round %d (%s%s on %s, %s): %s", r.N, r.Kind, actionSuffix(r), r.Lease.Node, watchdogWord(r.Watchdog), r.Lease))
		}
	}
	v.Summary = fmt.Sprintf("%d rounds where the primary's lease could expire before the heal; smallest margin between its last ack and the earliest lease expiry: with the watchdog %s, without %s",
		applied, on, off)
	if len(bad) > 0 {
		v.OK = false
		v.Summary += fmt.Sprintf("; %d violations", len(bad))
		v.Details = "  " + strings.Join(bad, "\n  ") + "\n"
	}
	return v
}

// margins aggregates lease margins: how many rounds the check applied to,
// how many of them had an ack to measure, and the smallest margin.
type margins struct {
	applied, measured int
	min               time.Duration
}

func (m *margins) add(l *LeaseCheck) {
	if l == nil || !l.Applies {
		return
	}
	m.applied++
	if l.LastAck == 0 {
		return
	}
	if m.measured == 0 || l.Margin() < m.min {
		m.min = l.Margin()
	}
	m.measured++
}

func (m margins) String() string {
	switch {
	case m.applied == 0:
		return "n/a (0 rounds)"
	case m.measured == 0:
		return fmt.Sprintf("n/a (%d rounds, no ack after the injection)", m.applied)
	}
	return fmt.Sprintf("%s (%d rounds, %d with acks)", fmtDur(m.min), m.applied, m.measured)
}

// column is the margin as a report column: "lease ≥ 2.12s (3)", or "".
func (m margins) column() string {
	if m.measured == 0 {
		return ""
	}
	return fmt.Sprintf("  lease margin ≥ %s (%d)", fmtDur(m.min), m.measured)
}

func watchdogWord(on bool) string {
	if on {
		return "watchdog"
	}
	return "no watchdog"
}

func actionSuffix(r *Round) string {
	if r.Action == nil {
		return ""
	}
	return " + " + string(r.Action.Kind)
}

// checkRounds fails when a round did not recover (liveness).
func checkRounds(rounds []*Round) Verdict {
	v := Verdict{Name: "recovery", OK: true}
	for _, r := range rounds {
		if r.Err != nil {
			v.OK = false
			v.Summary = fmt.Sprintf("round %d (%s): %v", r.N, r.Kind, r.Err)
			return v
		}
	}
	v.Summary = fmt.Sprintf("all %d rounds recovered (a leader accepting writes, every node a streaming replica, 3 etcd members)", len(rounds))
	return v
}

// attribute counts lost writes by round.
func (rep *Report) attribute() {
	rep.LostByRound = map[int]int{}
	for _, l := range rep.Lost {
		n := 0
		for _, r := range rep.Rounds {
			if l.Op.Invoke >= r.Inject {
				n = r.N
			}
		}
		rep.LostByRound[n]++
	}
}

// Summary renders the report: faults by kind with failovers and RTOs, each
// round, the checkers' verdicts.
func (rep *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos report — seed %d, mode %s%s, %d rounds, %d operations, %s\n",
		rep.Seed, rep.Mode, rep.routingWord(), len(rep.Rounds), rep.Ops, rep.Elapsed.Round(time.Second))
	b.WriteString(rep.byKind())
	b.WriteString(rep.byAction())
	b.WriteString(rep.watchdogRounds())
	b.WriteString("rounds:\n")
	for _, r := range rep.Rounds {
		fmt.Fprintf(&b, "  %s", r)
		if n := rep.LostByRound[r.N]; n > 0 {
			fmt.Fprintf(&b, "  LOST %d acked writes", n)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "fault timeline:\n%s", rep.Timeline)
	b.WriteString("verdicts:\n")
	for _, v := range rep.Verdicts {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

// kindStats aggregates the rounds of one fault or action kind.
type kindStats struct {
	n, failovers, resets int
	rtos                 []time.Duration
	lease                margins
	outcomes             map[string]int // actions: answers by outcome
}

func (a *kindStats) add(r *Round) {
	a.n++
	if r.Failover {
		a.failovers++
		a.rtos = append(a.rtos, r.RTO)
	}
	if r.WatchdogReset {
		a.resets++
	}
	a.lease.add(r.Lease)
}

// rto is "RTO min / median / max s", padded to a fixed width.
func (a *kindStats) rto() string {
	if len(a.rtos) == 0 {
		return strings.Repeat(" ", len("  RTO 00.00 / 00.00 / 00.00 s"))
	}
	slices.Sort(a.rtos)
	return fmt.Sprintf("  RTO %5.2f / %5.2f / %5.2f s", a.rtos[0].Seconds(), a.rtos[len(a.rtos)/2].Seconds(), a.rtos[len(a.rtos)-1].Seconds())
}

func (rep *Report) byKind() string {
	kinds := map[FaultKind]*kindStats{}
	var order []FaultKind
	for _, r := range rep.Rounds {
		a, ok := kinds[r.Kind]
		if !ok {
			a = &kindStats{}
			kinds[r.Kind] = a
			order = append(order, r.Kind)
		}
		a.add(r)
	}
	slices.Sort(order)
	var b strings.Builder
	b.WriteString("faults by kind (count, failovers, RTO min/median/max, smallest lease margin (rounds measured), watchdog resets):\n")
	for _, k := range order {
		a := kinds[k]
		line := fmt.Sprintf("  %-25s %3d  failovers %3d%s%s", k, a.n, a.failovers, a.rto(), a.lease.column())
		if a.resets > 0 {
			line += fmt.Sprintf("  resets %d", a.resets)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// byAction aggregates the rounds by their operator action.
func (rep *Report) byAction() string {
	acts := map[ActionKind]*kindStats{}
	var order []ActionKind
	for _, r := range rep.Rounds {
		if r.Action == nil {
			continue
		}
		a, ok := acts[r.Action.Kind]
		if !ok {
			a = &kindStats{outcomes: map[string]int{}}
			acts[r.Action.Kind] = a
			order = append(order, r.Action.Kind)
		}
		a.add(r)
		a.outcomes[r.Action.Outcome()]++
	}
	if len(order) == 0 {
		return "operator actions: none\n"
	}
	slices.Sort(order)
	var b strings.Builder
	b.WriteString("operator actions (count, answers, failovers, RTO min/median/max, smallest lease margin (rounds measured)):\n")
	for _, k := range order {
		a := acts[k]
		var outs []string
		for o, n := range a.outcomes {
			outs = append(outs, fmt.Sprintf("%s×%d", o, n))
		}
		slices.Sort(outs)
		line := fmt.Sprintf("  %-25s %3d  answers %-22s failovers %3d%s%s", k, a.n, strings.Join(outs, " "), a.failovers, a.rto(), a.lease.column())
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// watchdogRounds says which rounds ran without the watchdog.
func (rep *Report) watchdogRounds() string {
	var off []string
	for _, r := range rep.Rounds {
		if !r.Watchdog {
			off = append(off, fmt.Sprint(r.N))
		}
	}
	if len(off) == 0 {
		return "watchdog: every round with the (journal) watchdog\n"
	}
	return fmt.Sprintf("watchdog: %d of %d rounds without it (default configuration): %s\n", len(off), len(rep.Rounds), strings.Join(off, " "))
}

// Failure renders what a failing run must show: the seed, the failed
// verdicts with their offending history slices, and the fault timeline.
func (rep *Report) Failure() string {
	var b strings.Builder
	rerun := ""
	if rep.Routing {
		rerun = " ROUTING=1"
	}
	fmt.Fprintf(&b, "CHAOS FAILURE — seed %d (rerun: make chaos SEED=%d MODE=%s%s)\n", rep.Seed, rep.Seed, rep.Mode, rerun)
	for _, v := range rep.Verdicts {
		if !v.OK {
			fmt.Fprintf(&b, "%s\n%s", v, v.Details)
		}
	}
	fmt.Fprintf(&b, "fault timeline:\n%s", rep.Timeline)
	fmt.Fprintf(&b, "agent, PostgreSQL and etcd logs: %s\n", rep.LogDir)
	return b.String()
}

func (rep *Report) routingWord() string {
	if rep.Routing {
		return " with routing (PgBouncer)"
	}
	return ""
}
