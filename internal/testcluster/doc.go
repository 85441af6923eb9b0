// Package testcluster starts real Regent clusters for end-to-end tests: an
// in-process embedded etcd, one `regent` agent process per node (built once
// per test process from ./cmd/regent, or the binary Options.Binary names:
// Node.SetBinary changes it for the node's next start, and BinaryAt builds
// a previous release's, for a rolling upgrade) and, through the agents,
// real PostgreSQL instances in per-test temporary directories.
//
// It owns the lifecycle of everything it starts: ports (picked free at run
// time, 127.0.0.1 only), directories (owned by the unprivileged `postgres`
// OS user when the test runs as root), agent processes (their output is
// prefixed with the node name and sent to t.Logf), and the teardown
// registered with t.Cleanup (SIGTERM, then SIGKILL after a bound; any
// PostgreSQL left behind is killed: the postmaster named by postmaster.pid
// and its children). The processes are internal/proc Handles (started
// with its plain launcher; internal/chaos uses its network-namespace one),
// the binaries come from its build cache. The chaos suite also shares this
// package's node lookups (Named, NodeNamed, NodesBut), leader-key reads
// (GetKey, ReadLeader, LeaderOf) and leader-last teardown (StopLeaderLast).
//
// Each agent reaches etcd only through its own link, a TCP proxy on
// 127.0.0.1 run by the test process (internal/linkproxy): Node.CutEtcd
// blackholes one agent's etcd traffic while the others and the test's own
// client still reach etcd (Cluster.CutEtcdAll cuts every agent),
// HealEtcd ends it, SetEtcdLatency slows it. Healthy links are
// transparent; the cleanup heals them before stopping the agents and
// closes them after.
//
// It also offers the observation helpers tests assert with: an etcd client,
// REST requests (Get, Do) and Server-Sent Event streams (OpenEvents),
// superuser SQL connections, a node's agent log lines (CaptureLog), and
// Wait*/Poll helpers that poll a condition until a deadline and fail the
// test naming what they waited for and the last state they saw. Nothing
// here sleeps in place of an event.
//
// Writer is the acknowledged-writes client of the e2e tests and the
// benchmarks: numbered INSERTs routed by GET /primary (or tried on every
// node, counting ids two nodes accepted), with every acknowledgement
// recorded, so a test can check that none was lost (MissingAcks) and how
// long writes stopped (LongestGap). Every is the tick loop of the other
// load generators and samplers (the e2e clients, the chaos workload).
//
// It must never touch a PostgreSQL it did not start (nothing on 5432, no
// system cluster), never open /dev/watchdog (agents run with watchdog off),
// and never import the agent's internals: it drives the agent only through
// its binary, config file, signals, REST API and etcd keys, as an operator
// would.
package testcluster
