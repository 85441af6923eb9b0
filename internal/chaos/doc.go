// Package chaos is Regent's fault-injection (Jepsen-style) suite: a real
// three-node cluster (agent + PostgreSQL per node) and a three-member etcd,
// every node and every etcd member in a network namespace of its own, a
// workload that writes through every node and records each operation's
// outcome and monotonic [invoke, complete] interval, a seeded scheduler that
// injects faults (partitions, asymmetric partitions, process kill and
// freeze, a freeze of the postmaster alone, etcd member / leader / quorum
// loss, delay and loss of etcd traffic), pairs some of them with an
// operator action, heals them and waits for recovery, and checkers run on
// the recorded history:
//
//   - split brain: no two nodes acknowledged writes or answered reads as
//     primary in overlapping intervals (tenures derived from both);
//   - lost writes: every acknowledged write is present at the end
//     (synchronous mode), or lost ones are counted and bounded by
//     maximum_lag_on_failover (asynchronous mode);
//   - linearizability of a single-row register (one row per round),
//     checked with porcupine on its writes and durable reads (FOR KEY
//     SHARE: their commits wait for the synchronous standby); plain reads,
//     which can see a commit whose synchronous wait a client cancelled,
//     are checked apart and reported, not failed;
//   - the lease: the primary of each round stops answering writes and
//     reads before its lease can expire at etcd (leasetrack.go follows the
//     leader key from lease to lease: a ttl change moves it to a lease of
//     the new ttl).
//
// Operator actions (actions.go): a round whose fault cuts the leader from
// etcd, slows or loses etcd traffic, loses etcd's quorum or freezes the
// leader's agent may pair it with an action started just before the
// injection or while the fault holds: ttl raised or lowered (PATCH
// /config, within the agent's timing rules, restored at the heal), a
// switchover through Regent's PATCH /switchover, Patroni's POST
// /switchover or a scheduled one, POST /restart of the leader, pause
// (resumed at the heal), POST /reinitialize of a replica. Actions may fail
// under the fault; their answers are recorded, and the checkers must hold
// whatever they are. The rounds are planned from the seed before the run
// (schedule.go).
//
// Network: a bridge in the root namespace (named rgc<pid>-br, with the
// address .1 of a private 10.201.N.0/24 that exists only on this bridge),
// one veth pair per namespace. Partitions are blackhole routes installed
// inside the namespaces (per destination address, per direction), isolation
// detaches a veth from the bridge. The test process is the client: it
// reaches every node's PostgreSQL and REST API through the bridge. An
// agent reaches etcd through proxies of the test process (internal/linkproxy),
// listening and dialing inside the node's namespace (so partitions still
// apply), which add latency or emulated loss on demand: the kernel has no
// netem qdisc.
//
// It owns everything it creates and removes it at the end, failure or not:
// namespaces, veths and the bridge (all named with the rgc<pid36> prefix; a
// sweep at start removes those of a test process that is gone), the
// processes it started (agents, etcd members, the PostgreSQL servers the
// agents started) and its directories. It never touches an interface, a
// route or a process it did not create, binds only inside its namespaces
// and on its bridge, and never imports the agent's internals: agents are
// driven through their binary, config file, signals, REST API and etcd.
//
// In half of the rounds (by default; the seed decides which half comes
// first) agents run with a required watchdog on the journal device
// (fencing.JournalPrefix): instead of a hardware device, a file in the node
// directory records what a device would see (arming with its timeout,
// keepalives, the disarming close). When a fault stops the primary's agent
// (SIGKILL or SIGSTOP) while its device is armed, the suite resets the node
// (agent and PostgreSQL SIGKILLed) at the moment the device would fire:
// the last keepalive in the journal plus the timeout. The other half run
// the default configuration (no watchdog section: mode off), where the
// agent's own deadline alone must keep the lease check; they draw only
// faults that leave the primary's agent running, since a primary whose
// agent is dead keeps accepting writes forever without a watchdog, by
// design (see DESIGN.md §2 and §6). The two halves are two blocks of
// rounds: switching restarts every agent, one at a time.
//
// The fence kinds (fencehook.go, check_fence.go; #19) run with the
// harness's fence hook as fence.command and fence.fast_failover on, every
// other round without (switched, like the watchdog, by restarting every
// agent; the planner puts a block's fence rounds last so it switches
// rarely). The hook SIGKILLs the target's agent and PostgreSQL, confirms
// them gone and logs when it returned; the fence checker asserts that no
// write the old primary acknowledged was invoked after a run against it
// returned 0, and, for a hook made to fail, that nobody took the leader
// key before the old lease could expire at etcd unless a hook run had
// confirmed the fence first (it works again from the heal), and that the
// hook never ran more than 6 times within a second. They are not in the
// default mix: -chaos.faults=fence (or make chaos FAULTS=fence) selects
// all three.
//
// Routing mode (router.go, check_routing.go; -chaos.routing, make chaos
// ROUTING=1; opt-in, not in the short run) puts one PgBouncer, in a
// namespace of its own, in front of the cluster: every agent's routing:
// section names its admin console and an include file in a directory all
// namespaces share. Two more clients insert through it (part of the writes:
// the direct clients are what shows a primary that failed to fence, which
// a PgBouncer pointing elsewhere would hide); each write returns the
// server's address, so the split-brain, lease and lost-write checkers judge
// it as the node that took it. The routing kinds (kill-agent-after-pause,
// pgbouncer-cut-candidate, pgbouncer-cut-primary; the alias "routing")
// join the default mix in about a third of the rounds, each with its own
// switchover. After every round's recovery the suite probes PgBouncer
// (SHOW DATABASES, a write through it, the leader key before and after);
// the routing checker asserts that within routingBound it was not paused
// and the write landed on the leader.
//
// Standby clusters (standby*.go, check_standby.go; opt-in:
// -chaos.standby, make chaos STANDBY=1): besides the chaos cluster, a
// standby cluster of two members (dr1, dr2, each in a namespace of its
// own; scope chaos-dr on the same etcd) follows it through a proxy in
// each member's namespace (standby_cluster: 127.0.0.1, its port) that
// behaves as the documented HAProxy write port: a health check every
// second sends new connections to the leader key's node answering GET
// /primary 200, and closes those open to a target marked down (two failed
// checks) or replaced (on-marked-down shutdown-sessions). Regent's
// standby_cluster takes one host and port, so a multi-host conninfo is
// not an option. The usual faults and actions run against the chaos
// cluster; the standby kinds join the mix, drawn in about a third of the
// rounds: kill-, freeze- and partition-standby-leader (cut from etcd, the
// other member and the chaos cluster's nodes: the other member must take
// the key and keep following), and
// failover-primary-standby (the primary's agent and PostgreSQL SIGKILLed,
// held until another node leads: the standby leader must follow the new
// primary, rewinding if it had received WAL the new one lacks). Checkers:
//
//   - standby read-only: each member is probed twice a second
//     (pg_is_in_recovery() and an INSERT): a member out of recovery or a
//     write it accepted fails;
//   - standby replay: after each round's recovery, and at the end (a
//     failed check ends the run), the standby cluster must within 180 s
//     have exactly one member reporting
//     standby_leader, the key's holder, the other a running replica, and
//     the holder must have every insert the chaos cluster acknowledged
//     before its rows were read and still holds, and none that it lost
//     (a standby leader that kept a lost write did not rewind);
//   - standby leader key: as etcd reports it, no member put its name over
//     another's key (a holder changes only through a vacant key).
//
// With -chaos.standby, TestChaosStandbyCatchesAWritableMember checks the
// probes on real processes: a member promoted behind its killed agent's
// back must fail the read-only checker.
//
// All times are read from one monotonic clock in the test process
// (durations since the start of the run).
//
// Running: `go test ./internal/chaos` (part of `make test`) runs the
// checkers' self-tests on fabricated histories, the self-test against a
// deliberately broken agent (built with -tags regent_unsafe_nofence: the
// split-brain and lease checkers must fail) and a short run of 3 rounds
// in each mode with a seed from the clock (each mode with at least one
// round without the watchdog and one operator action). `make chaos` runs
// the long one:
//
//	make chaos                          # 200 rounds, synchronous mode
//	make chaos MODE=async ROUNDS=50 SEED=42 FAULTS=partition-primary-all,kill-node-primary
//	make chaos ROUTING=1 ROUNDS=30       # PgBouncer in front (routing mode)
//	make chaos STANDBY=1 ROUNDS=20       # a standby cluster follows (standby mode)
//
// or directly: go test -v -timeout 0 -run 'TestChaos$' ./internal/chaos
// -args -chaos.rounds=N -chaos.seed=S -chaos.mode=sync|async|quorum|both
// (quorum: synchronous_mode quorum, ANY 1 of the 2 standbys, or ANY 2 of
// 3 with -chaos.nodes=4; checked as sync mode is: no acknowledged write
// lost) -chaos.nodes=N
// -chaos.faults=… -chaos.actions=…|none -chaos.watchdog=half|on|off
// -chaos.report=FILE -chaos.keep -chaos.ttl=N -chaos.routing -chaos.standby
// (-chaos.no-watchdog is -chaos.watchdog=off; -chaos.faults=standby names
// the standby kinds alone). It needs root and iproute2, and skips otherwise
// (and under -short). A failure prints the seed, the failed checkers with
// the offending history slice, the fault timeline and where the agent,
// PostgreSQL and etcd logs were kept.
package chaos
