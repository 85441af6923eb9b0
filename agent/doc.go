// Package agent is Regent's HA loop: every loop_wait (and at once on a
// watch event) it observes an immutable Snapshot (the etcd view, the local
// PostgreSQL, its own lease), decides with the pure function decide, acts,
// and publishes its state to the REST API and its member key.
//
// The safety invariant lives here (DESIGN §2): PostgreSQL serves writes
// only while this agent holds the leader lease. The leader moves its
// deadline to t_send + ttl − safety_margin only after an acknowledged
// renewal, fences itself (immediate stop) once past it — checked first on
// every tick, before any I/O, so a process waking from a freeze fences
// before anything else — and never re-creates a leader key it lost. The
// one path that bends this, failsafe mode (failsafe.go), moves the
// deadline only on every member's acknowledgement when etcd cannot be
// asked, and takes back a key etcd expired meanwhile only if absent and
// before its deadline; docs/architecture.md "Failsafe mode" argues it.
//
// In a standby cluster (standby_cluster in the dynamic config;
// standby.go) the key holder is the standby leader: it replicates from
// the remote cluster and never leaves recovery until standby_cluster is
// removed, so holding the lease there grants no writes. A switchover
// there runs the same staged machine and moves the key to a member that
// stays in recovery.
//
// Two words are kept apart: "fence" is the agent stopping its own
// PostgreSQL (fence.go: past the lease deadline, without the key);
// "STONITH" is fence.command, the operator's hook a candidate runs against
// a former leader before promoting over it (stonith.go). With
// fence.fast_failover the same hook replaces the wait for a vanished
// leader's lease: a majority's agreed suspicion, the hook's exit 0, then a
// delete of the old key by revision and the race (fastpath.go).
//
// Synchronous replication (syncmode.go, quorum.go) is the leader's
// upkeep of synchronous_standby_names and the sync key within its tick,
// through leader-guarded writes; in quorum commit a pure function
// (decideQuorum) orders every change so any election the key allows finds
// each acknowledged commit, and elect requires n − k + 1 of the set seen.
//
// Its configuration (regent.yml and the dynamic config key) is package
// config's; the agent reads and writes the config key and runs the
// callbacks config describes. It talks to etcd and PostgreSQL only
// through the DCS and Postgres interfaces it declares.
//
// The routers in front of the cluster (package routing: PgBouncer, HAProxy's
// runtime API, hooks) are driven from here as work beside the loop
// (routing.go): paused before a switchover's quiesce, repointed the moment
// this member promoted, and a PgBouncer action that failed at a repoint
// retried while this member leads (routingDebt). Routing only points
// traffic at the member holding the lease and never delays a renewal or a
// fence.
package agent
