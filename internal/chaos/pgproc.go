package chaos

import (
	"syscall"

	"github.com/regent-ha/regent/internal/testcluster"
)

// PostgreSQL is started by the agent through pg_ctl and outlives it; the
// harness finds it through <data_dir>/postmaster.pid (testcluster's
// data-directory functions, shared with the e2e harness).

// signalPostgres signals every PostgreSQL process of the data directory
// (each child's group, then the postmaster) and returns their pids. A
// process that is gone by then is no error; the faults need only the pids.
func signalPostgres(dataDir string, sig syscall.Signal) []int {
	procs, _ := testcluster.SignalServer(dataDir, sig)
	return procs
}

// killPostgres SIGKILLs every PostgreSQL process of the data directory and
// waits until they are gone, zombies included (reaped as the subreaper).
func killPostgres(dataDir string) error {
	_, err := testcluster.KillServer(dataDir)
	return err
}
