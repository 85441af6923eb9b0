package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FenceCheck is what a fence round (faultSpec.fence) adds to its record:
// the hook's runs and the fast path's two safety claims.
//
//   - A working hook: once a run against the old primary exited 0 (the
//     hook killed it and confirmed it gone), no operation the old primary
//     acknowledged as primary on its tenure was invoked after that run
//     returned. Invoke, not Complete: an answer sent just before the kill
//     may arrive after the hook wrote its log line.
//   - A failing hook: no other member held the leader key before the old
//     primary's lease could have expired at etcd (LeaseCheck.Bound, a
//     proven lower bound: the fast path must not delete the key), unless
//     a run against it exited 0 first (the hook works again from the
//     heal, which may come before the lease runs out).
type FenceCheck struct {
	// Failing: the hook exited 1 while the fault held.
	Failing bool
	// Runs are the hook's runs logged between the injection and the
	// recovery.
	Runs []FenceRunAt
	// Fenced is when the first run against the old primary exited 0 (0:
	// none did).
	Fenced time.Duration
	// TookOver is when the test process first saw another member hold the
	// leader key (an upper bound of when it did; 0: none did).
	TookOver time.Duration
	// Violation says what broke the claim; "" when it held.
	Violation string
	// Note says why a claim could not be checked.
	Note string
}

// FenceRunAt is one run of the hook on the run's clock.
type FenceRunAt struct {
	At     time.Duration
	Target string
	Exit   int
}

// OK reports whether the round's claim held.
func (f *FenceCheck) OK() bool { return f.Violation == "" }

// fenceRuns returns the hook's runs within [from, to] on the run's clock.
func fenceRuns(runs []FenceRun, clock *Clock, from, to time.Duration) []FenceRunAt {
	var out []FenceRunAt
	for _, r := range runs {
		if at := clock.At(r.Returned); at >= from && at <= to {
			out = append(out, FenceRunAt{At: at, Target: r.Target, Exit: r.Exit})
		}
	}
	return out
}

// evaluate checks the round's claim against the history and the leader
// changes; old is the primary at the injection, on timeline tl (0:
// unknown: every timeline counts), bound the earliest expiry of its lease
// at etcd (0: unknown).
func (f *FenceCheck) evaluate(ops []Op, changes []LeaderChange, old string, tl int, bound time.Duration) {
	for _, ch := range changes {
		if ch.Leader != "" && ch.Leader != old {
			f.TookOver = ch.At
			break
		}
	}
	for _, r := range f.Runs {
		if r.Target == old && r.Exit == 0 {
			f.Fenced = r.At
			break
		}
	}
	if n, at := busiestSecond(f.Runs); n > maxRunsPerSecond {
		// A retry loop (the agents once woke on their own decision
		// records and re-ran a failing hook ~25 times a second): a real
		// BMC or cloud API would be hammered.
		f.Violation = fmt.Sprintf("the hook ran %d times within a second from %s; at most %d (each member retries once per loop_wait)", n, fmtDur(at), maxRunsPerSecond)
		return
	}
	if f.Failing {
		switch {
		case f.TookOver == 0 || f.Fenced > 0 && f.Fenced <= f.TookOver:
		case bound == 0:
			f.Note = "lease expiry unknown: the take-over could not be checked"
		case f.TookOver < bound:
			f.Violation = fmt.Sprintf("%s took the leader key at %s, before %s's lease could expire at etcd (%s), and no hook run had fenced it",
				changesLeader(changes, f.TookOver), fmtDur(f.TookOver), old, fmtDur(bound))
		}
		return
	}
	if f.Fenced == 0 {
		return
	}
	for _, o := range ops {
		if o.Node == old && servedAsPrimary(o) && (tl == 0 || o.Timeline == tl) && o.Invoke >= f.Fenced {
			f.Violation = fmt.Sprintf("%s acknowledged %s as primary, invoked at %s, after the hook confirmed it fenced at %s",
				old, o, fmtDur(o.Invoke), fmtDur(f.Fenced))
			return
		}
	}
}

// maxRunsPerSecond bounds the hook's runs in any one second: each of the
// two other members retries at most once per loop_wait (1 s), one of them
// may also run the fast path's, and a retry may straddle the second.
const maxRunsPerSecond = 6

// busiestSecond returns the most runs within one second of each other
// (runs are in time order) and when that second began.
func busiestSecond(runs []FenceRunAt) (int, time.Duration) {
	best, at, lo := 0, time.Duration(0), 0
	for hi, r := range runs {
		for r.At-runs[lo].At >= time.Second {
			lo++
		}
		if n := hi - lo + 1; n > best {
			best, at = n, runs[lo].At
		}
	}
	return best, at
}

func changesLeader(changes []LeaderChange, at time.Duration) string {
	for _, ch := range changes {
		if ch.At == at {
			return ch.Leader
		}
	}
	return "?"
}

func (f *FenceCheck) String() string {
	var runs []string
	for _, r := range f.Runs {
		runs = append(runs, fmt.Sprintf("%s→%d at %s", r.Target, r.Exit, fmtDur(r.At)))
	}
	s := "fence hook runs [" + strings.Join(runs, ", ") + "]"
	if f.Failing {
		s += " (failing)"
	}
	if f.TookOver > 0 {
		s += ", new leader at " + fmtDur(f.TookOver)
	}
	switch {
	case f.Violation != "":
		s += ": VIOLATED: " + f.Violation
	case f.Note != "":
		s += ": " + f.Note
	}
	return s
}

// CheckFence is the verdict over the fence rounds.
func CheckFence(rounds []*Round) Verdict {
	v := Verdict{Name: "fence", OK: true}
	var n, fast, failing, waited int
	var rtos []time.Duration
	var bad []string
	for _, r := range rounds {
		f := r.Fence
		if f == nil {
			continue
		}
		n++
		switch {
		case f.Failing:
			failing++
			if f.TookOver > 0 && r.Lease != nil && f.TookOver >= r.Lease.Bound {
				waited++
			}
		case f.Fenced > 0:
			fast++
			if r.Failover {
				rtos = append(rtos, r.RTO)
			}
		}
		if !f.OK() {
			bad = append(bad, fmt.Sprintf("round %d (%s on %s): %s", r.N, r.Kind, r.LeaderBefore, f.Violation))
		}
	}
	if n == 0 {
		v.Summary = "no fence rounds"
		return v
	}
	v.Summary = fmt.Sprintf("%d fence rounds: %d with the old primary fenced by the hook (failover RTO median %s), %d with a failing hook (%d took over only after the lease could expire)",
		n, fast, medianDur(rtos), failing, waited)
	if len(bad) > 0 {
		v.OK = false
		v.Summary += fmt.Sprintf("; %d violations", len(bad))
		v.Details = "  " + strings.Join(bad, "\n  ") + "\n"
	}
	return v
}

// medianDur is the median of ds ("n/a" for none).
func medianDur(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmtDur(s[len(s)/2])
}
