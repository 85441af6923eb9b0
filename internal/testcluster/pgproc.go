package testcluster

import "github.com/regent-ha/regent/internal/proc"

// PostgreSQL is started by the agent through pg_ctl and outlives it; it is
// found through <data_dir>/postmaster.pid (see internal/proc).

// PostmasterPID returns the pid recorded in the node's postmaster.pid and
// whether that process is alive (a zombie counts as dead).
func (n *Node) PostmasterPID() (int, bool) { return proc.ServerPID(n.DataDir) }

// PostgresRunning reports whether the node's postmaster is alive.
func (n *Node) PostgresRunning() bool {
	_, ok := n.PostmasterPID()
	return ok
}

// killPostgres SIGKILLs the node's PostgreSQL (proc.KillServer), logged.
func (n *Node) killPostgres() error {
	procs, err := n.agent.KillPostgres()
	if len(procs) > 0 {
		n.c.log.logf("[%s] SIGKILLed postgres: postmaster %d and its %d children", n.Name, procs[len(procs)-1], len(procs)-1)
	}
	return err
}
