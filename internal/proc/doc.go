// Package proc is the one process handle of the real-process test
// harnesses (internal/testcluster, and through it internal/e2e and bench;
// internal/chaos): it starts, stops, kills, freezes and thaws the child
// processes they run (an agent, an etcd member) and the PostgreSQL server
// an agent starts, builds the binaries they run, once per test process
// (a previous release's from a commit of the git history, cached across
// processes: BuildAt), and gives an agent its environment (AgentEnv).
//
// A child is started through a Launcher: Plain forks it where the test
// runs, Netns forks it inside a network namespace (the chaos suite gives
// every node and etcd member a namespace of its own). Every child runs in a
// process group of its own (a kill or a freeze reaches pg_ctl,
// pg_basebackup…), dies with the test process (Pdeathsig), and is known to
// have crashed when it exits without the harness having stopped or killed
// it.
//
// PostgreSQL is started by the agent through pg_ctl and outlives it: it is
// found through <data_dir>/postmaster.pid, its children by parent pid
// (postgres.ServerProcesses). The test process becomes a child subreaper
// and reaps the PostgreSQL zombies it inherits (reaper.go), so that a
// SIGKILLed postmaster does not block a restart on its data directory.
//
// Nothing here sleeps in place of an event: waits are for a process's
// exit, or poll /proc (which has no event to wait on) up to a bound.
package proc
