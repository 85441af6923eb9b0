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

// PostmasterPID returns the pid recorded in <data_dir>/postmaster.pid and
// whether that process is alive (a zombie counts as dead).
func (n *Node) PostmasterPID() (int, bool) {
	data, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
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

// postgresProcs returns the postmaster's children and then the postmaster
// (nil when it is not running); see postgres.ServerProcesses. With
// stopFirst the postmaster is stopped (SIGSTOP) before its children are
// listed, so that it cannot fork one we would miss.
func (n *Node) postgresProcs(stopFirst bool) []int {
	pm, alive := n.PostmasterPID()
	if !alive || !postgres.IsPostgresBinary(pm) {
		return nil
	}
	return postgres.ServerProcesses(pm, stopFirst)
}

// signalPostgres signals every process of the node's PostgreSQL: each
// child's process group (it may have children of its own: archive or
// restore commands), then the postmaster's.
func (n *Node) signalPostgres(sig syscall.Signal) error {
	return n.signalProcs(n.postgresProcs(sig != sigcont), sig)
}

func (n *Node) signalProcs(procs []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range procs {
		if err := syscall.Kill(-pid, sig); err == nil {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signal postgres of %s (pid %d): %w", n.Name, pid, err))
		}
	}
	return errors.Join(errs...)
}

// killPostgres SIGKILLs the postmaster and every child of it and waits
// until all are gone, zombies included (see reaper.go): a restart on the
// same data directory must not find any alive, and a process that was
// stopped (a frozen host, a held walsender) must not get to run again.
func (n *Node) killPostgres() error {
	procs := n.postgresProcs(true)
	if len(procs) == 0 {
		return nil
	}
	pm := procs[len(procs)-1]
	n.c.log.logf("[%s] SIGKILL postgres: postmaster %d and its %d children", n.Name, pm, len(procs)-1)
	if err := n.signalProcs(procs, sigkill); err != nil {
		return err
	}
	deadline := time.NewTimer(processGoneTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for reapOrphans(); !allGone(procs); reapOrphans() {
		select {
		case <-deadline.C:
			return fmt.Errorf("postgres of %s (pids %v) still alive %s after SIGKILL", n.Name, procs, processGoneTimeout)
		case <-tick.C:
		}
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
