package agent

import (
	"fmt"
	"strings"

	"github.com/regent-ha/regent/postgres"
)

// ActionKind names what the executor does this tick.
type ActionKind string

// The actions a plan can hold. Each is carried out by the executor, which
// re-checks its preconditions right before any destructive step.
const (
	// ActWait does nothing but report the reason.
	ActWait ActionKind = "wait"
	// ActFence stops a primary that is past its lease deadline (immediate
	// stop) and restarts it read-only. It never touches etcd first.
	ActFence ActionKind = "fence"
	// ActDemote stops a primary that does not hold the leader key
	// (immediate stop) and restarts it as a replica of Action.Leader.
	ActDemote ActionKind = "demote"
	// ActBootstrap races for the initialize key and, on winning, runs initdb
	// and takes the leader key.
	ActBootstrap ActionKind = "bootstrap"
	// ActClone copies the data directory from Action.Leader.
	ActClone ActionKind = "clone"
	// ActStartPrimary restarts a crashed primary in place, keeping the lease.
	ActStartPrimary ActionKind = "start_primary"
	// ActStartReplica starts PostgreSQL in recovery following Action.Leader
	// ("" = no upstream yet).
	ActStartReplica ActionKind = "start_replica"
	// ActFollow points a running replica at Action.Leader (reload), and
	// rewinds it when its timeline diverged.
	ActFollow ActionKind = "follow"
	// ActRace tries to create the leader key and, on winning, promotes.
	ActRace ActionKind = "race"
	// ActFastFence runs fence.command beside the loop against a leader a
	// majority suspects gone (fence.fast_failover).
	ActFastFence ActionKind = "fast_fence"
	// ActFastTakeover deletes a fenced leader's key by its revision and
	// races at once.
	ActFastTakeover ActionKind = "fast_takeover"
	// ActAcquire takes the leader key for a PostgreSQL already running as
	// primary (maintenance mode), without promoting anything.
	ActAcquire ActionKind = "acquire"
	// ActPromote finishes a promotion while holding the leader key.
	ActPromote ActionKind = "promote"
	// ActLead is the steady primary's upkeep (slots, status, history).
	ActLead ActionKind = "lead"
	// ActRelease gives the leader key up (e.g. PostgreSQL cannot start).
	ActRelease ActionKind = "release"
	// ActRefuse stops the agent: this node must not join the cluster.
	ActRefuse ActionKind = "refuse"
)

// Action is one step of a plan.
type Action struct {
	Kind ActionKind
	// Leader is the member to follow or clone from, when relevant.
	Leader string
}

// Plan is decide's output: one action and the human-readable reason, which
// is logged, published and kept in the decision record.
type Plan struct {
	Action Action
	Reason string
	// Election is set when the plan is the outcome of a leader-race check.
	Election *Election
}

// Election records how a member decided whether to race for the leader key.
type Election struct {
	Self       Candidate
	Candidates []Candidate
	Race       bool
}

// Candidate is one member's standing in an election.
type Candidate struct {
	Name      string
	Reachable bool
	WAL       postgres.LSN
	Timeline  int
	Priority  int
	Eligible  bool
	Reasons   []string
}

func (c Candidate) String() string {
	if !c.Reachable {
		return c.Name + " unreachable"
	}
	s := fmt.Sprintf("%s %s tl%d", c.Name, c.WAL, c.Timeline)
	if len(c.Reasons) > 0 {
		s += " (" + strings.Join(c.Reasons, ", ") + ")"
	}
	return s
}

func plan(kind ActionKind, leader, format string, args ...any) Plan {
	return Plan{Action: Action{Kind: kind, Leader: leader}, Reason: fmt.Sprintf(format, args...)}
}
