package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verdict is a checker's result.
type Verdict struct {
	Name    string
	OK      bool
	Summary string
	// Details is the evidence of a failure: the offending history slice.
	Details string
}

func (v Verdict) String() string {
	mark := "PASS"
	if !v.OK {
		mark = "FAIL"
	}
	return fmt.Sprintf("%s %s: %s", mark, v.Name, v.Summary)
}

// Tenure is one stretch of a node being primary, derived from what it
// acknowledged on one timeline: writes (inserts and register writes) and
// reads that a server out of recovery answered. A node serves one timeline
// as primary only while it holds the leader key (a restart in place keeps
// both; any failover away and back makes a new timeline), so no other node
// may be primary anywhere inside it. Reads count because in synchronous
// mode a primary cut from its standbys acknowledges no write at all: a
// late fence shows only in the reads it still answers.
type Tenure struct {
	Node     string
	Timeline int
	Acks     int // acknowledged writes
	Reads    int // reads answered as primary
	// MinComplete and MaxInvoke bound the span where the node was
	// certainly primary: each operation took effect at some instant within
	// its [invoke, complete], so whatever those instants, the node was
	// primary from the first (≤ MinComplete) to the last (≥ MaxInvoke).
	MinComplete, MaxInvoke time.Duration
	// FirstInvoke and LastComplete bound where it may have been primary.
	FirstInvoke, LastComplete time.Duration
}

func (t Tenure) String() string {
	return fmt.Sprintf("%s on timeline %d: %d acknowledged writes and %d primary reads in [%s, %s], certainly primary across [%s, %s]",
		t.Node, t.Timeline, t.Acks, t.Reads, fmtDur(t.FirstInvoke), fmtDur(t.LastComplete), fmtDur(t.MinComplete), fmtDur(t.MaxInvoke))
}

// servedAsPrimary: an acknowledged write, or a read answered by a server
// out of recovery (the read reports its timeline only then).
func servedAsPrimary(o Op) bool {
	return o.Outcome == OK && (o.Kind != OpRead || o.Timeline > 0)
}

// Tenures groups what ops a primary acknowledged by (node, timeline).
func Tenures(ops []Op) []Tenure {
	type key struct {
		node string
		tl   int
	}
	m := map[key]*Tenure{}
	for _, o := range ops {
		if !servedAsPrimary(o) {
			continue
		}
		k := key{o.Node, o.Timeline}
		t, ok := m[k]
		if !ok {
			t = &Tenure{Node: o.Node, Timeline: o.Timeline, MinComplete: o.Complete, MaxInvoke: o.Invoke,
				FirstInvoke: o.Invoke, LastComplete: o.Complete}
			m[k] = t
		}
		if o.Kind == OpRead {
			t.Reads++
		} else {
			t.Acks++
		}
		t.MinComplete = min(t.MinComplete, o.Complete)
		t.MaxInvoke = max(t.MaxInvoke, o.Invoke)
		t.FirstInvoke = min(t.FirstInvoke, o.Invoke)
		t.LastComplete = max(t.LastComplete, o.Complete)
	}
	out := make([]Tenure, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tenure) int {
		return cmp.Or(cmp.Compare(a.FirstInvoke, b.FirstInvoke), cmp.Compare(a.Node, b.Node))
	})
	return out
}

// SplitBrain is a pair of tenures of different nodes that certainly
// overlap: whatever the commit instants within the writes' intervals, both
// nodes were primary at a common moment.
type SplitBrain struct{ A, B Tenure }

// FindSplitBrains returns every certainly-overlapping pair of tenures of
// different nodes. Tenures a and b overlap for every choice of commit
// instants iff a.MinComplete ≤ b.MaxInvoke and b.MinComplete ≤ a.MaxInvoke.
func FindSplitBrains(ops []Op) []SplitBrain {
	ts := Tenures(ops)
	var out []SplitBrain
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			a, b := ts[i], ts[j]
			if a.Node != b.Node && a.MinComplete <= b.MaxInvoke && b.MinComplete <= a.MaxInvoke {
				out = append(out, SplitBrain{A: a, B: b})
			}
		}
	}
	return out
}

// CheckSplitBrain is checker (a): no two nodes acknowledged writes or
// answered reads as primary in overlapping intervals.
func CheckSplitBrain(ops []Op) Verdict {
	sbs := FindSplitBrains(ops)
	v := Verdict{Name: "split-brain", OK: len(sbs) == 0}
	ts := Tenures(ops)
	if v.OK {
		v.Summary = fmt.Sprintf("0 split-brain intervals (%d primary tenures derived from acknowledged writes and primary reads)", len(ts))
		return v
	}
	v.Summary = fmt.Sprintf("%d split-brain intervals: nodes acknowledged writes or reads while another node was certainly primary", len(sbs))
	var b strings.Builder
	for i, sb := range sbs {
		if i == 5 {
			fmt.Fprintf(&b, "… and %d more\n", len(sbs)-i)
			break
		}
		fmt.Fprintf(&b, "split brain #%d:\n  %s\n  %s\n", i+1, sb.A, sb.B)
		b.WriteString(splitBrainEvidence(ops, sb))
	}
	v.Details = b.String()
	return v
}

// sliceOf renders up to limit ops of [from, to] matching keep, keeping
// the first and last ones when there are more.
func sliceOf(ops []Op, from, to time.Duration, keep func(Op) bool, limit int) string {
	var sel []Op
	for _, o := range window(ops, from, to) {
		if keep(o) {
			sel = append(sel, o)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  history [%s, %s] (%d ops):\n", fmtDur(from), fmtDur(to), len(sel))
	for i, o := range sel {
		if len(sel) > limit && i == limit/2 {
			fmt.Fprintf(&b, "    … %d ops …\n", len(sel)-limit)
		}
		if len(sel) > limit && i >= limit/2 && i < len(sel)-limit/2 {
			continue
		}
		fmt.Fprintf(&b, "    %s\n", o)
	}
	return b.String()
}

// splitBrainEvidence renders the operations the earlier tenure answered
// after the later one had certainly begun (each proves both were
// primary), and the history where the later tenure begins.
func splitBrainEvidence(ops []Op, sb SplitBrain) string {
	early, late := sb.A, sb.B
	if late.FirstInvoke < early.FirstInvoke {
		early, late = late, early
	}
	in := func(t Tenure, o Op) bool {
		return servedAsPrimary(o) && o.Node == t.Node && o.Timeline == t.Timeline
	}
	var b strings.Builder
	var late1 []Op
	for _, o := range ops {
		if in(early, o) && o.Invoke > late.MinComplete {
			late1 = append(late1, o)
		}
	}
	fmt.Fprintf(&b, "  %d operations answered by %s (timeline %d) invoked after %s was primary on timeline %d (by %s):\n",
		len(late1), early.Node, early.Timeline, late.Node, late.Timeline, fmtDur(late.MinComplete))
	for i, o := range late1 {
		if i == 10 {
			fmt.Fprintf(&b, "    … %d more\n", len(late1)-i)
			break
		}
		fmt.Fprintf(&b, "    %s\n", o)
	}
	b.WriteString(sliceOf(ops, late.FirstInvoke-time.Second, late.FirstInvoke+time.Second, func(o Op) bool {
		return in(early, o) || in(late, o)
	}, 30))
	return b.String()
}
