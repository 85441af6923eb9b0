package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Point is where in a switchover or failover routing acts.
type Point string

// The points, in the order a switchover meets them.
const (
	// PointPause: before QUIESCE_WRITES, on the old primary's agent. The
	// poolers hold new transactions; a failure aborts the switchover.
	PointPause Point = "pause"
	// PointRestore: the switchover ended before PROMOTE_STANDBY; the old
	// primary stays, so traffic resumes to it.
	PointRestore Point = "restore"
	// PointRepoint: the switchover's new primary has promoted.
	PointRepoint Point = "repoint"
	// PointFailover: an automatic failover's new primary has promoted.
	PointFailover Point = "failover"
)

// Target says who the traffic goes to: the member that holds the leader
// key (the new primary at repoint and failover, the old one at pause and
// restore), and its PostgreSQL address.
type Target struct {
	Switchover string // the switchover id, "" for a failover
	Leader     string // the member traffic goes to
	Host       string
	Port       int
	// Others are the other members (HAProxy drains them at repoint and
	// failover).
	Others []string
}

// ActionKind is one kind of router call.
type ActionKind int

const (
	// PgBouncerPause: PAUSE each database, bounded by pause_timeout.
	PgBouncerPause ActionKind = iota
	// PgBouncerResume: RESUME each database (one not paused is fine).
	PgBouncerResume
	// PgBouncerRepoint: write the include file naming Target, RELOAD,
	// RESUME each database.
	PgBouncerRepoint
	// HAProxyReady: `set server B/S state ready` and `health up` for the
	// leader's server, so HAProxy routes to it before its next check.
	HAProxyReady
	// HAProxyDrain: `set server B/S state drain` and `shutdown sessions
	// server B/S` for a server that is not the leader.
	HAProxyDrain
	// Hook: run the point's command.
	Hook
	// HAProxyHold: `set server B/S state drain` for the old primary at
	// pause: new connections stop going to a server about to stop (they
	// would wait out HAProxy's connect retries there); its open sessions
	// run on until PostgreSQL stops.
	HAProxyHold
)

// Action is one call to one router; Index picks the configured entry.
type Action struct {
	Kind   ActionKind
	Index  int
	Member string // HAProxyReady, HAProxyDrain: whose server
}

// Describe names the action for events and logs.
func (a Action) Describe(c Config) string {
	switch a.Kind {
	case PgBouncerPause, PgBouncerResume, PgBouncerRepoint:
		verb := map[ActionKind]string{PgBouncerPause: "PAUSE", PgBouncerResume: "RESUME", PgBouncerRepoint: "repoint (include file, RELOAD, RESUME)"}[a.Kind]
		return fmt.Sprintf("pgbouncer[%d] %s %s", a.Index, verb, strings.Join(c.PgBouncer[a.Index].Databases, ","))
	case HAProxyReady, HAProxyDrain, HAProxyHold:
		h := c.HAProxy[a.Index]
		verb := map[ActionKind]string{HAProxyReady: "ready", HAProxyDrain: "drain and shut sessions of", HAProxyHold: "drain"}[a.Kind]
		return fmt.Sprintf("haproxy[%d] %s %s/%s", a.Index, verb, h.Backend, h.server(a.Member))
	}
	return "hook"
}

// Plan lists the actions point calls for, in order; pure. At repoint and
// failover the leader's HAProxy server goes ready first (the fastest way
// to send it new connections), then the poolers repoint, then the other
// servers drain; hooks run last.
func Plan(c Config, p Point, t Target) []Action {
	var out []Action
	pgb := func(kind ActionKind) {
		for i := range c.PgBouncer {
			out = append(out, Action{Kind: kind, Index: i})
		}
	}
	haproxy := func(kind ActionKind) {
		for i := range c.HAProxy {
			out = append(out, Action{Kind: kind, Index: i, Member: t.Leader})
		}
	}
	switch p {
	case PointPause:
		pgb(PgBouncerPause)
		haproxy(HAProxyHold)
	case PointRestore:
		pgb(PgBouncerResume)
		haproxy(HAProxyReady)
	case PointRepoint, PointFailover:
		haproxy(HAProxyReady)
		pgb(PgBouncerRepoint)
		others := slices.Sorted(slices.Values(t.Others))
		for i := range c.HAProxy {
			for _, m := range slices.Compact(others) {
				if m != t.Leader {
					out = append(out, Action{Kind: HAProxyDrain, Index: i, Member: m})
				}
			}
		}
	}
	if len(c.Hooks.argv(p)) > 0 {
		out = append(out, Action{Kind: Hook})
	}
	return out
}

func (h Hooks) argv(p Point) []string {
	return map[Point][]string{PointPause: h.Pause, PointRestore: h.Restore, PointRepoint: h.Repoint, PointFailover: h.Failover}[p]
}

// Severity is what a failed action means for the switchover.
type Severity int

const (
	// Warn: record a warning and go on (retried in CLEANUP).
	Warn Severity = iota
	// Abort: end the switchover before QUIESCE_WRITES and restore routing.
	Abort
)

// SeverityOf: only the pause can abort — before it nothing has changed
// and the old primary is still writable; every later point comes after
// the promotion, the point of no return, where the only way is forward.
// At the pause, HAProxy's drain of the old primary is a courtesy (its
// health checks see /primary turn 503 anyway): a failure there warns.
func SeverityOf(p Point, k ActionKind) Severity {
	if p == PointPause && k != HAProxyHold {
		return Abort
	}
	return Warn
}

// AbortError returns the first failure of results that aborts at p
// (SeverityOf), or nil.
func AbortError(p Point, results []Result) error {
	for _, r := range results {
		if r.Err != nil && SeverityOf(p, r.Action.Kind) == Abort {
			return fmt.Errorf("%s: %w", r.Desc, r.Err)
		}
	}
	return nil
}

// Result is one action's outcome.
type Result struct {
	Action Action
	Desc   string
	Took   time.Duration
	Err    error
}

// Failed lists the actions of results that failed, to retry.
func Failed(results []Result) []Action {
	var out []Action
	for _, r := range results {
		if r.Err != nil {
			out = append(out, r.Action)
		}
	}
	return out
}

// FirstError returns the first failure, or nil.
func FirstError(results []Result) error {
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", r.Desc, r.Err)
		}
	}
	return nil
}
