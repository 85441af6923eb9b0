package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The standby cluster's checkers (-chaos.standby): pure functions of what
// the run recorded.

// StandbyProbe is one probe of a standby member that answered: whether it
// was in recovery, and whether a write it was sent succeeded.
type StandbyProbe struct {
	Node       string
	At         time.Duration
	Answered   bool
	InRecovery bool
	Wrote      bool
	Err        string // the write's error (read-only expected)
}

// CheckStandbyReadOnly: no member of the standby cluster is ever writable
// (pg_is_in_recovery() true at every probe, and no write accepted).
func CheckStandbyReadOnly(probes []StandbyProbe) Verdict {
	v := Verdict{Name: "standby read-only", OK: true}
	answered := 0
	var bad []string
	for _, p := range probes {
		if !p.Answered {
			continue
		}
		answered++
		switch {
		case p.Wrote:
			bad = append(bad, fmt.Sprintf("%s %s accepted a write (in recovery %v)", fmtDur(p.At), p.Node, p.InRecovery))
		case !p.InRecovery:
			bad = append(bad, fmt.Sprintf("%s %s out of recovery (write: %s)", fmtDur(p.At), p.Node, p.Err))
		}
	}
	v.Summary = fmt.Sprintf("%d probes of the standby members answered: every one in recovery, no write accepted", answered)
	if answered == 0 {
		v.OK = false
		v.Summary = "no probe of a standby member answered: nothing was checked"
	}
	if len(bad) > 0 {
		v.OK = false
		v.Summary = fmt.Sprintf("%d of %d probes found a writable standby member", len(bad), answered)
		v.Details = "  " + strings.Join(head(bad), "\n  ") + "\n"
	}
	return v
}

// KeyEvent is one event on the standby leader key as etcd reported it.
type KeyEvent struct {
	At  time.Duration
	Rev int64
	// Holder is the value put ("" for a delete or an expiry).
	Holder string
	// Created: the put created the key (it did not exist before).
	Created bool
}

// CheckStandbyLeaderKey: at most one standby leader key holder at a time
// as etcd saw it. A member takes the key only when it is vacant: a put of
// another member's name over an existing key (not a create) means two
// members held the standby leadership.
func CheckStandbyLeaderKey(events []KeyEvent) Verdict {
	v := Verdict{Name: "standby leader key", OK: true}
	holder, holders, changes := "", map[string]bool{}, 0
	var bad []string
	for _, e := range events {
		switch {
		case e.Holder == "":
			holder = ""
			continue
		case !e.Created && holder != "" && e.Holder != holder:
			bad = append(bad, fmt.Sprintf("%s rev %d: %s put over %s's key (not a create)", fmtDur(e.At), e.Rev, e.Holder, holder))
		}
		if e.Holder != holder {
			changes++
		}
		holder = e.Holder
		holders[e.Holder] = true
	}
	v.Summary = fmt.Sprintf("%d events, %d holders taking it in turn (%d distinct): never two at once", len(events), changes, len(holders))
	if changes == 0 {
		v.OK = false
		v.Summary = "the standby leader key was never seen held: nothing was checked"
	}
	if len(bad) > 0 {
		v.OK = false
		v.Summary = fmt.Sprintf("%d takeovers of a held standby leader key", len(bad))
		v.Details = "  " + strings.Join(bad, "\n  ") + "\n"
	}
	return v
}

// StandbyCatchUp is the standby cluster as judged after a round (Round 0:
// the final check): At is when the primary's rows were read; the members'
// roles, the key holder and the holder's rows are the last ones read
// before it was judged whole, or before the bound ran out.
type StandbyCatchUp struct {
	Round   int
	At      time.Duration
	Took    time.Duration // from At until judged (or given up)
	Primary map[int64]bool
	Holder  string
	Roles   map[string]string // member → "role/state", "" when unreachable
	Standby map[int64]bool    // the holder's rows; nil if unread
	Err     string            // why something could not be read
}

// judge says what is wrong with cu ("" if nothing), and how many writes
// the primary cluster acknowledged before At and still has (acked) and
// how many of those the standby leader has (replayed).
//
// Whole: exactly one member reports standby_leader (running), it holds the
// key, every other member is a running replica. Replayed: every insert
// acknowledged (completed) before At that the primary's rows hold is in
// the standby leader's rows; and none that the primary cluster lost (an
// asynchronous failover) is: a standby leader holding one diverged from
// the primary cluster and did not rewind.
func (cu StandbyCatchUp) judge(ops []Op) (acked, replayed int, problem string) {
	var leaders, others []string
	for _, name := range slices.Sorted(maps.Keys(cu.Roles)) {
		switch role := cu.Roles[name]; {
		case role == "standby_leader/running":
			leaders = append(leaders, name)
		case role != "replica/running":
			others = append(others, fmt.Sprintf("%s %q", name, role))
		}
	}
	var problems []string
	if len(leaders) != 1 || leaders[0] != cu.Holder {
		problems = append(problems, fmt.Sprintf("standby leaders %v, key holder %q: want exactly the holder", leaders, cu.Holder))
	}
	if len(others) > 0 {
		problems = append(problems, "not a running replica: "+strings.Join(others, ", "))
	}
	var missing, diverged []int64
	for _, o := range ops {
		if o.Kind != OpInsert || o.Outcome != OK || o.Complete >= cu.At {
			continue
		}
		switch onPrimary, onStandby := cu.Primary[o.ID], cu.Standby[o.ID]; {
		case onPrimary && onStandby:
			acked++
			replayed++
		case onPrimary:
			acked++
			missing = append(missing, o.ID)
		case onStandby:
			diverged = append(diverged, o.ID)
		}
	}
	if cu.Standby == nil {
		problems = append(problems, "standby leader's rows not read")
	} else if len(missing) > 0 {
		slices.Sort(missing)
		problems = append(problems, fmt.Sprintf("%d acknowledged writes not replayed %v", len(missing), head(missing)))
	}
	if len(diverged) > 0 {
		slices.Sort(diverged)
		problems = append(problems, fmt.Sprintf("%d writes the primary cluster lost are on the standby leader (diverged, not rewound) %v", len(diverged), head(diverged)))
	}
	if cu.Err != "" {
		problems = append(problems, cu.Err)
	}
	return acked, replayed, strings.Join(problems, "; ")
}

// CheckStandbyReplay: after every round (within the bound the run gives
// it) and at the end, the standby cluster has exactly one standby leader
// and it has replayed every write the primary cluster acknowledged.
func CheckStandbyReplay(ops []Op, checks []StandbyCatchUp) Verdict {
	v := Verdict{Name: "standby replay", OK: true}
	var bad []string
	var slowest time.Duration
	final := "no final check"
	for _, cu := range checks {
		acked, replayed, problem := cu.judge(ops)
		slowest = max(slowest, cu.Took)
		when := fmt.Sprintf("after round %d", cu.Round)
		if cu.Round == 0 {
			when = "at the end"
			final = fmt.Sprintf("at the end %d of %d acknowledged writes on the standby leader %s", replayed, acked, cu.Holder)
		}
		if problem != "" {
			bad = append(bad, fmt.Sprintf("%s (rows read at %s, judged %s later): %s", when, fmtDur(cu.At), cu.Took.Round(time.Millisecond), problem))
		}
	}
	v.Summary = fmt.Sprintf("%d checks, whole and caught up within %s at the slowest; %s", len(checks), slowest.Round(time.Millisecond), final)
	if len(checks) == 0 {
		v.OK = false
		v.Summary = "no check of the standby cluster ran"
	}
	if len(bad) > 0 {
		v.OK = false
		v.Summary = fmt.Sprintf("%d of %d checks failed; %s", len(bad), len(checks), final)
		v.Details = "  " + strings.Join(bad, "\n  ") + "\n"
	}
	return v
}
