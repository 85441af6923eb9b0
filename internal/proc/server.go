package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// Every child of a postmaster is a session leader of its own (backends,
// walsenders…), so the children are found by parent pid
// (postgres.ServerProcesses), with the postmaster stopped first when they
// are to be killed, so that it cannot fork one we would miss.

// ServerPID returns the pid recorded in <dataDir>/postmaster.pid and
// whether that process is alive (a zombie counts as dead).
func ServerPID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil || pid <= 0 { // the first line
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
	procs := ServerProcesses(dataDir, sig != syscall.SIGCONT)
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
	if err := signalProcs(procs, syscall.SIGKILL); err != nil {
		return procs, err
	}
	deadline := time.NewTimer(GoneTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ReapOrphans(); !allGone(procs); ReapOrphans() {
		select {
		case <-deadline.C:
			return procs, fmt.Errorf("postgres of %s (pids %v) still alive %s after SIGKILL", dataDir, procs, GoneTimeout)
		case <-tick.C:
		}
	}
	return procs, nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	_, state, _, ok := postgres.ProcStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// processGone reports that pid no longer exists, not even as a zombie.
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

func allGone(pids []int) bool {
	for _, pid := range pids {
		if !processGone(pid) {
			return false
		}
	}
	return true
}
