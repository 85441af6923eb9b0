package chaos

import (
	"fmt"
	"slices"
	"strings"

	"github.com/regent-ha/regent/dcs"
)

// FinalState is what the cluster holds at the end, read from the final
// primary once every replica has replayed its last WAL position.
type FinalState struct {
	Leader string
	// Rows are the ids present in chaos_writes on the final primary.
	Rows map[int64]bool
	// Divergent names the nodes whose set of ids differs from the
	// primary's, with what differs.
	Divergent []string
	// History is the cluster's timeline history (the history key).
	History []dcs.HistoryEntry
}

// LostWrite is an acknowledged insert absent at the end, with how far
// past its timeline's switch point it was written (-1: unknown).
type LostWrite struct {
	Op        Op
	PastForkB int64
}

// FindLostWrites returns the acknowledged inserts missing from final, and
// the inserts reported failed that are present (a misclassification:
// the client must never call a committed write failed).
func FindLostWrites(ops []Op, final FinalState) (lost []LostWrite, phantom []Op) {
	for _, o := range ops {
		if o.Kind != OpInsert {
			continue
		}
		present := final.Rows[o.ID]
		switch {
		case o.Outcome == OK && !present:
			lost = append(lost, LostWrite{Op: o, PastForkB: pastFork(o, final.History)})
		case o.Outcome == Fail && present:
			phantom = append(phantom, o)
		}
	}
	return lost, phantom
}

// pastFork is how many WAL bytes past the end of its timeline (where the
// next timeline forked off) the write was; -1 if its timeline never ended.
func pastFork(o Op, hist []dcs.HistoryEntry) int64 {
	for _, h := range hist {
		if h.Timeline == o.Timeline {
			if o.LSN < h.SwitchLSN {
				return 0
			}
			return int64(o.LSN - h.SwitchLSN)
		}
	}
	return -1
}

// CheckLostWrites is checkers (b) and (c): in synchronous mode every
// acknowledged write must be present at the end; in asynchronous mode lost
// ones are counted, and each must lie within maximum_lag_on_failover of
// its timeline's switch point (a replica further behind may not promote).
// Either way no write reported failed may be present, and every replica
// must hold exactly the primary's rows.
func CheckLostWrites(ops []Op, final FinalState, sync bool, maxLag int64) (Verdict, []LostWrite) {
	lost, phantom := FindLostWrites(ops, final)
	acked := 0
	for _, o := range ops {
		if o.Kind == OpInsert && o.Outcome == OK {
			acked++
		}
	}
	v := Verdict{Name: "lost-writes", OK: true}
	var worst int64 = -1
	for _, l := range lost {
		worst = max(worst, l.PastForkB)
	}
	mode := "async"
	if sync {
		mode = "sync"
	}
	v.Summary = fmt.Sprintf("%s mode: %d of %d acknowledged writes lost", mode, len(lost), acked)
	var problems []string
	if sync && len(lost) > 0 {
		problems = append(problems, "synchronous mode lost acknowledged writes")
	}
	if len(lost) > 0 {
		v.Summary += fmt.Sprintf(" (at most %d WAL bytes past the fork; maximum_lag_on_failover %d)", worst, maxLag)
		for _, l := range lost {
			if l.PastForkB < 0 || l.PastForkB > maxLag {
				problems = append(problems, fmt.Sprintf("lost write id=%d is %d bytes past its fork (bound %d)", l.Op.ID, l.PastForkB, maxLag))
				break
			}
		}
	}
	if len(phantom) > 0 {
		problems = append(problems, fmt.Sprintf("%d writes reported failed are present (client misclassification)", len(phantom)))
	}
	problems = append(problems, final.Divergent...)
	if len(problems) == 0 {
		return v, lost
	}
	v.OK = false
	v.Summary += "; " + strings.Join(problems, "; ")
	v.Details = lostDetails(ops, lost, phantom)
	return v, lost
}

func lostDetails(ops []Op, lost []LostWrite, phantom []Op) string {
	var b strings.Builder
	for i, l := range lost {
		if i == 20 {
			fmt.Fprintf(&b, "  … and %d more lost\n", len(lost)-i)
			break
		}
		fmt.Fprintf(&b, "  LOST %s, %d bytes past fork\n", l.Op, l.PastForkB)
	}
	for i, o := range phantom {
		if i == 10 {
			break
		}
		fmt.Fprintf(&b, "  PRESENT BUT REPORTED FAILED %s\n", o)
	}
	if len(lost) > 0 {
		first := slices.MinFunc(lost, func(a, b LostWrite) int { return int(a.Op.Invoke - b.Op.Invoke) }).Op
		last := slices.MaxFunc(lost, func(a, b LostWrite) int { return int(a.Op.Invoke - b.Op.Invoke) }).Op
		b.WriteString(sliceOf(ops, first.Invoke-2e9, last.Complete+2e9, func(o Op) bool {
			return o.Outcome != Fail && o.Kind != OpRead
		}, 40))
	}
	return b.String()
}
