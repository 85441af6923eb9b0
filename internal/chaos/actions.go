package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/fencing"
)

// ActionKind names an operator action a round may pair with its fault,
// started just before the injection or while the fault holds. Actions go
// through the REST API as an operator's tools would; under the fault they
// may legitimately fail (4xx, 5xx, no answer): the outcome is recorded,
// and the checkers must hold whatever it is.
type ActionKind string

const (
	// ActionTTLUp raises ttl by 2 to 5 s (PATCH /config); the round's base
	// ttl is restored at the heal.
	ActionTTLUp ActionKind = "ttl-up"
	// ActionTTLDown lowers ttl by 1 to 3 s, never below the smallest ttl
	// the agent accepts (ttlChoices); restored at the heal.
	ActionTTLDown ActionKind = "ttl-down"
	// ActionSwitchover is Regent's PATCH /switchover, to a random replica
	// or to the best candidate.
	ActionSwitchover ActionKind = "switchover"
	// ActionSwitchoverPatroni is Patroni's POST /switchover {"leader": …},
	// with or without a candidate; it waits for the outcome.
	ActionSwitchoverPatroni ActionKind = "switchover-patroni"
	// ActionSwitchoverScheduled is POST /switchover with scheduled_at 2 to
	// 6 s ahead; one still pending after the heal is cancelled.
	ActionSwitchoverScheduled ActionKind = "switchover-scheduled"
	// ActionRestartLeader is POST /restart on the leader's API.
	ActionRestartLeader ActionKind = "restart-leader"
	// ActionPause is PATCH /config {"pause": true}; {"pause": false} at
	// the heal.
	ActionPause ActionKind = "pause"
	// ActionReinitReplica is POST /reinitialize on a random replica.
	ActionReinitReplica ActionKind = "reinit-replica"
)

// The faults the actions pair with: those that matter for them.
var (
	// etcdCutKinds cut the leader from etcd while clients reach it.
	etcdCutKinds = []FaultKind{PartitionPrimaryEtcd, PartitionPrimaryAll, AsymPrimaryToEtcd, AsymEtcdToPrimary}
	// etcdSlowKinds slow down or lose the leader's (or everyone's) etcd
	// traffic.
	etcdSlowKinds = []FaultKind{SlowEtcdPrimary, LossyEtcdPrimary, SlowEtcdAll}
)

// AllActions lists every action kind.
func AllActions() []ActionKind {
	return []ActionKind{ActionTTLUp, ActionTTLDown, ActionSwitchover, ActionSwitchoverPatroni,
		ActionSwitchoverScheduled, ActionRestartLeader, ActionPause, ActionReinitReplica}
}

// actionPairs lists the fault kinds an action pairs with: the leader cut
// from etcd, slow or lossy etcd, etcd quorum loss and, except for pause,
// a frozen agent; pause also pairs with failsafe's etcd outages. Maintenance mode disarms the watchdog (as Patroni
// does), so a primary whose agent froze after seeing the pause outlives
// its lease by design: that pairing would only show it.
func actionPairs(a ActionKind) []FaultKind {
	kinds := slices.Concat(etcdCutKinds, etcdSlowKinds, []FaultKind{EtcdQuorumLoss})
	if a != ActionPause {
		kinds = append(kinds, FreezeAgentPrimary)
	} else {
		// Maintenance mode during an etcd outage with failsafe on (#17).
		kinds = append(kinds, EtcdTotalLossFailsafe, PartitionPrimaryEtcdFailsafe)
	}
	return kinds
}

// pairsWith reports whether action a may be paired with fault kind k.
func pairsWith(a ActionKind, k FaultKind) bool { return slices.Contains(actionPairs(a), k) }

// ParseActions reads a comma-separated list of action kinds: "" is all,
// "none" none.
func ParseActions(list string) ([]ActionKind, error) {
	list = strings.TrimSpace(list)
	switch list {
	case "":
		return AllActions(), nil
	case "none":
		return []ActionKind{}, nil
	}
	var out []ActionKind
	for k := range strings.SplitSeq(list, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !slices.Contains(AllActions(), ActionKind(k)) {
			return nil, fmt.Errorf("unknown action kind %q (known: %v, or none)", k, AllActions())
		}
		out = append(out, ActionKind(k))
	}
	return out, nil
}

// validTTL checks a ttl (seconds) against the rules the agent applies to
// PATCH /config (config.Dynamic.Validate and config.CheckSafetyMargin):
// loop_wait + 2·retry_timeout ≤ ttl, fencing.CheckTiming, safety_margin ≥
// loop_wait + 1 s and safety_margin < ttl − loop_wait. The suite does not
// import the agent: this mirrors it, and the agent's refusal (400) would
// show in the round's record if the two ever disagreed.
func validTTL(ttl, loopWait, retry int, margin time.Duration) error {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	switch {
	case ttl < 2:
		return fmt.Errorf("ttl %d s is below the minimum of 2 s", ttl)
	case loopWait+2*retry > ttl:
		return fmt.Errorf("loop_wait + 2·retry_timeout (%d + 2·%d) > ttl %d", loopWait, retry, ttl)
	case margin < sec(loopWait)+time.Second:
		return fmt.Errorf("safety_margin %s < loop_wait + 1 s", margin)
	case margin >= sec(ttl-loopWait):
		return fmt.Errorf("safety_margin %s ≥ ttl − loop_wait (%d s)", margin, ttl-loopWait)
	}
	return fencing.CheckTiming(sec(ttl), sec(loopWait), margin)
}

// ttlChoices are the ttls (seconds) the ttl actions draw from: 1 to 3 s
// below base and 2 to 5 s above, each valid for the agent.
func ttlChoices(base, loopWait, retry int, margin time.Duration) (down, up []int) {
	for t := base - 3; t < base; t++ {
		if validTTL(t, loopWait, retry, margin) == nil {
			down = append(down, t)
		}
	}
	for t := base + 2; t <= base+5; t++ {
		if validTTL(t, loopWait, retry, margin) == nil {
			up = append(up, t)
		}
	}
	return down, up
}

// Action is the record of one operator action.
type Action struct {
	Kind ActionKind
	// Node is the member whose API got the request; Detail what it asked.
	Node, Detail string
	// Offset is the planned start relative to the injection (< 0:
	// before); Start and Done are times on the run's clock (Start 0: never
	// started, the round ended first).
	Offset, Start, Done time.Duration
	// Code is the HTTP status (0: no answer) and Answer its body,
	// shortened; Err the transport error (a timeout, a refused
	// connection).
	Code   int
	Answer string
	Err    string
	// Undo is what the heal did to undo it (ttl restored, resumed).
	Undo string
	// Result is what it led to, read after the round: the switchover
	// records it created and their final state, a cancelled schedule.
	Result string
}

// Outcome is the answer in one word: the HTTP status, "no-answer" or
// "not-started".
func (a *Action) Outcome() string {
	switch {
	case a.Start == 0:
		return "not-started"
	case a.Code == 0:
		return "no-answer"
	}
	return strconv.Itoa(a.Code)
}

func (a *Action) String() string {
	when := "during"
	if a.Offset < 0 {
		when = "before"
	}
	s := fmt.Sprintf("%s (%s) on %s %s (%+.2fs) → %s", a.Kind, a.Detail, a.Node, when, a.Offset.Seconds(), a.Outcome())
	switch {
	case a.Start == 0:
	case a.Code == 0:
		s += " (" + a.Err + ")"
	default:
		s += fmt.Sprintf(" in %.2fs", (a.Done - a.Start).Seconds())
		if a.Answer != "" {
			s += " " + strconv.Quote(a.Answer)
		}
	}
	if a.Undo != "" {
		s += "; undo: " + a.Undo
	}
	if a.Result != "" {
		s += "; " + a.Result
	}
	return s
}
