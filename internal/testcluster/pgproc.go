package testcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// PostgreSQL is started by the agent through pg_ctl and outlives it; it is
// found through <data_dir>/postmaster.pid. Every child of a postmaster is
// a session leader of its own (backends, walsenders…), so the children are
// found by parent pid (postgres.ServerProcesses), with the postmaster
// stopped first when they are to be killed, so that it cannot fork one we
// would miss. The data-directory functions serve internal/chaos too.

// ServerPID returns the pid recorded in <dataDir>/postmaster.pid and
// whether that process is alive (a zombie counts as dead).
func ServerPID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processAlive(pid)
}

// ServerProcesses returns the children of the postmaster of dataDir and
// then the postmaster (nil when no postgres binary runs there). With
// stopFirst the postmaster is stopped (SIGSTOP) before its children are
// listed.
func ServerProcesses(dataDir string, stopFirst bool) []int {
	pm, alive := ServerPID(dataDir)
	if !alive || !postgres.IsPostgresBinary(pm) {
		return nil
	}
	return postgres.ServerProcesses(pm, stopFirst)
}

// SignalServer signals every process of the PostgreSQL server of dataDir:
// each child's process group (it may have children of its own: archive or
// restore commands), then the postmaster's. It returns their pids.
func SignalServer(dataDir string, sig syscall.Signal) ([]int, error) {
	procs := ServerProcesses(dataDir, sig != sigcont)
	return procs, signalProcs(procs, sig)
}

// KillServer SIGKILLs the postmaster of dataDir and every child of it, and
// waits until all are gone, zombies included (see reaper.go): a restart on
// the same data directory must not find any alive, and a process that was
// stopped (a frozen host, a held walsender) must not get to run again. It
// returns the pids it killed.
func KillServer(dataDir string) ([]int, error) {
	procs := ServerProcesses(dataDir, true)
	if len(procs) == 0 {
		return nil, nil
	}
	if err := signalProcs(procs, sigkill); err != nil {
		return procs, err
	}
	deadline := time.NewTimer(processGoneTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for reapOrphans(); !allGone(procs); reapOrphans() {
		select {
		case <-deadline.C:
			return procs, fmt.Errorf("postgres of %s (pids %v) still alive %s after SIGKILL", dataDir, procs, processGoneTimeout)
		case <-tick.C:
		}
	}
	return procs, nil
}

// PostmasterPID returns the pid recorded in the node's postmaster.pid and
// whether that process is alive (a zombie counts as dead).
func (n *Node) PostmasterPID() (int, bool) { return ServerPID(n.DataDir) }

// PostgresRunning reports whether the node's postmaster is alive.
func (n *Node) PostgresRunning() bool {
	_, ok := n.PostmasterPID()
	return ok
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	_, state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// postgresProcs is ServerProcesses of the node's data directory.
func (n *Node) postgresProcs(stopFirst bool) []int { return ServerProcesses(n.DataDir, stopFirst) }

// signalPostgres signals every process of the node's PostgreSQL.
func (n *Node) signalPostgres(sig syscall.Signal) error {
	_, err := SignalServer(n.DataDir, sig)
	if err != nil {
		return fmt.Errorf("signal postgres of %s: %w", n.Name, err)
	}
	return nil
}

func signalProcs(procs []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range procs {
		if err := syscall.Kill(-pid, sig); err == nil {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// killPostgres is KillServer of the node's data directory, logged.
func (n *Node) killPostgres() error {
	procs, err := KillServer(n.DataDir)
	if len(procs) > 0 {
		n.c.log.logf("[%s] SIGKILLed postgres: postmaster %d and its %d children", n.Name, procs[len(procs)-1], len(procs)-1)
	}
	if err != nil {
		return fmt.Errorf("kill postgres of %s: %w", n.Name, err)
	}
	return nil
}

func allGone(pids []int) bool {
	for _, pid := range pids {
		if !processGone(pid) {
			return false
		}
	}
	return true
}
