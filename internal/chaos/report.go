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

// OK reports whether every checker passed.
func (rep *Report) OK() bool {
	for _, v := range rep.Verdicts {
		if !v.OK {
			return false
		}
	}
	return true
}

// CheckLease is the verdict over every round's LeaseCheck.
func CheckLease(rounds []*Round) Verdict {
	v := Verdict{Name: "lease", OK: true}
	applied, worst := 0, time.Duration(1<<62)
	var bad []string
	for _, r := range rounds {
		if r.Lease == nil || !r.Lease.Applies {
			continue
		}
		applied++
		if r.Lease.LastAck > 0 { // else: no ack at all after the injection
			worst = min(worst, r.Lease.Margin())
		}
		if !r.Lease.OK {
			bad = append(bad, fmt.Sprintf("round %d (%s on %s): %s", r.N, r.Kind, r.Lease.Node, r.Lease))
		}
	}
	v.Summary = fmt.Sprintf("%d rounds cut a reachable primary from etcd past its lease; ", applied)
	if applied > 0 && worst < 1<<62 {
		v.Summary += fmt.Sprintf("smallest margin between its last ack and the earliest lease expiry %s", fmtDur(worst))
	} else {
		v.Summary += "no ack after an injection to compare"
	}
	if len(bad) > 0 {
		v.OK = false
		v.Summary += fmt.Sprintf("; %d violations", len(bad))
		v.Details = "  " + strings.Join(bad, "\n  ") + "\n"
	}
	return v
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
	fmt.Fprintf(&b, "chaos report — seed %d, mode %s, %d rounds, %d operations, %s\n",
		rep.Seed, rep.Mode, len(rep.Rounds), rep.Ops, rep.Elapsed.Round(time.Second))
	b.WriteString(rep.byKind())
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

func (rep *Report) byKind() string {
	type agg struct {
		n, failovers, resets int
		rtos                 []time.Duration
	}
	kinds := map[FaultKind]*agg{}
	var order []FaultKind
	for _, r := range rep.Rounds {
		a, ok := kinds[r.Kind]
		if !ok {
			a = &agg{}
			kinds[r.Kind] = a
			order = append(order, r.Kind)
		}
		a.n++
		if r.Failover {
			a.failovers++
			a.rtos = append(a.rtos, r.RTO)
		}
		if r.WatchdogReset {
			a.resets++
		}
	}
	slices.Sort(order)
	var b strings.Builder
	b.WriteString("faults by kind (count, failovers, RTO min/median/max, watchdog resets):\n")
	for _, k := range order {
		a := kinds[k]
		fmt.Fprintf(&b, "  %-24s %3d  failovers %3d", k, a.n, a.failovers)
		if len(a.rtos) > 0 {
			slices.Sort(a.rtos)
			fmt.Fprintf(&b, "  RTO %5.2f / %5.2f / %5.2f s", a.rtos[0].Seconds(), a.rtos[len(a.rtos)/2].Seconds(), a.rtos[len(a.rtos)-1].Seconds())
		}
		if a.resets > 0 {
			fmt.Fprintf(&b, "  resets %d", a.resets)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Failure renders what a failing run must show: the seed, the failed
// verdicts with their offending history slices, and the fault timeline.
func (rep *Report) Failure() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CHAOS FAILURE — seed %d (rerun: make chaos SEED=%d MODE=%s)\n", rep.Seed, rep.Seed, rep.Mode)
	for _, v := range rep.Verdicts {
		if !v.OK {
			fmt.Fprintf(&b, "%s\n%s", v, v.Details)
		}
	}
	fmt.Fprintf(&b, "fault timeline:\n%s", rep.Timeline)
	fmt.Fprintf(&b, "agent, PostgreSQL and etcd logs: %s\n", rep.LogDir)
	return b.String()
}
