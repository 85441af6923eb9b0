// Package bench measures Regent on the machine it runs on, with real
// processes, and writes a report: failover RTO after a host death, a
// frozen host and a PostgreSQL crash (split into detection, election and
// promotion from the winner's decision record); planned switchover write
// unavailability, stage durations and lost acknowledged writes, at the
// main timings and again at loop_wait 2 s (Params.SwitchoverAlso); REST
// health-check throughput and latency; agent RSS and CPU at idle; etcd
// writes and lease keep-alives per node, idle and as clusters share one
// etcd; host death again with the fence fast path (fence.fast_failover
// and the chaos suite's fence hook, internal/chaos/fencehook.go, which
// kills the victim's processes and exits 0: KindHostDeathFenced); false
// failovers: leader changes of clusters kept busy (pgbench at full speed,
// etcd written as fast as it answers) and otherwise left alone, at ttl 5
// and 10 (falsefailover.go).
//
// Run drives everything from a *testing.T, because the real-process
// harness (internal/testcluster) is built around one: `make bench` builds
// this package's test binary and runs TestBench with -bench.out; TestSmoke
// runs every measurement once with tiny parameters so the code cannot rot.
// Results go to <out>/<date>.json and <out>/<date>.md (see Write).
//
// It owns: the fault-injecting measurement loops, the write probers and
// the load generator, the /proc and etcd /metrics readers, and the report.
// The etcd scale measurement (fake-PostgreSQL clusters of in-process
// agents) is the subpackage bench/scale, because it links the agent and
// this package reads the agents only as a client does (REST, etcd);
// TestBench and TestSmoke hand scale.Run to Run as Params.Scale.
//
// It must never assert a performance target (targets are compared and
// reported, never turned into test failures: a slow machine is not a
// bug), never edit the agent's packages, and never leave a process or an
// etcd behind: every cluster lives in a subtest whose cleanup stops it.
// Measurements run one after the other, because etcd's server metrics are
// process-wide: two embedded etcds alive at once would add up.
package bench
