package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/postgres"
)

// PostgreSQL is started by the agent through pg_ctl and outlives it; we
// find it through <data_dir>/postmaster.pid. Every child of a postmaster is
// a session leader of its own (backends, walsenders…), so they are found
// by parent pid, with the postmaster stopped first so that it cannot fork
// one we would miss (the same approach as testcluster's pgproc.go).

// postmasterPID returns the pid recorded in postmaster.pid if that process
// is alive and is a postgres binary.
func postmasterPID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	_, state, _, ok := postgres.ProcStat(pid)
	if !ok || state == 'Z' || state == 'X' || !postgres.IsPostgresBinary(pid) {
		return 0, false
	}
	return pid, true
}

// postgresProcs returns the postmaster's children, then the postmaster
// (see postgres.ServerProcesses). Unless sig is SIGCONT, the postmaster is
// SIGSTOPped first.
func postgresProcs(dataDir string, sig syscall.Signal) []int {
	pm, ok := postmasterPID(dataDir)
	if !ok {
		return nil
	}
	return postgres.ServerProcesses(pm, sig != syscall.SIGCONT)
}

// signalPostgres signals every PostgreSQL process of the data directory
// (each child's group, then the postmaster) and returns their pids.
func signalPostgres(dataDir string, sig syscall.Signal) []int {
	procs := postgresProcs(dataDir, sig)
	for _, pid := range procs {
		if syscall.Kill(-pid, sig) != nil {
			_ = syscall.Kill(pid, sig)
		}
	}
	return procs
}

// killPostgres SIGKILLs every PostgreSQL process of the data directory and
// waits until they are gone, zombies included (reaped as the subreaper).
func killPostgres(dataDir string) error {
	procs := signalPostgres(dataDir, syscall.SIGKILL)
	if len(procs) == 0 {
		return nil
	}
	deadline := time.Now().Add(processGoneTimeout)
	for {
		testcluster.ReapOrphans()
		alive := 0
		for _, pid := range procs {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
				alive = pid
			}
		}
		if alive == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres pid %d still alive %s after SIGKILL", alive, processGoneTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling /proc: no event to wait on
	}
}
