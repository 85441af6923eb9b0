// Package routing drives the routers in front of the cluster — PgBouncer
// admin consoles, HAProxy's runtime API and operator command hooks — at
// fixed points of a switchover or failover, so clients see latency instead
// of errors (DESIGN §12, docs/routing.md).
//
// It owns:
//   - the `routing:` section of regent.yml (Config, decoded strictly by
//     config like every other section);
//   - the decisions, pure and table-tested: which actions a Point calls
//     for (Plan), and whether a failed action aborts the switchover or is
//     a warning retried later (Severity);
//   - the actions (Runner.Run): PAUSE/RESUME/RELOAD on PgBouncer's admin
//     console with the pgx simple protocol, the include file of its
//     [databases] section, `set server` and `shutdown sessions` on HAProxy's
//     admin socket, and the hooks, each bounded by its own timeout and
//     timed in a Result.
//
// The safety rule (a PostgreSQL accepts writes only while its agent holds
// the lease) is kept because routing never makes a node writable: it only
// points traffic at, or pauses traffic to, a member. The agent calls Run
// for the repoint only on the member that holds the leader key and has
// promoted; before that (PAUSE) it points traffic nowhere new. Run is long
// work: the agent runs it beside its HA loop, never inside a tick, so a
// slow router can never delay a lease renewal or a fence.
//
// routing never talks to etcd and never imports agent or switchover: the
// agent turns Results into switchover events.
package routing
