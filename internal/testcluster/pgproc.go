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

// isPostgres guards against pid reuse: the process must be a postgres binary.
func isPostgres(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	return base == "postgres" || base == "postmaster"
}

// signalPostgres signals the postmaster's process group (pg_ctl makes the
// postmaster a session leader, so its group holds every backend), falling
// back to the postmaster alone.
func (n *Node) signalPostgres(sig syscall.Signal) error {
	pid, alive := n.PostmasterPID()
	if !alive || !isPostgres(pid) {
		return nil
	}
	if err := syscall.Kill(-pid, sig); err == nil {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal postgres of %s (pid %d): %w", n.Name, pid, err)
	}
	return nil
}

// killPostgres SIGKILLs the postmaster's group and waits until the
// postmaster is gone, zombie included (see reaper.go): a restart on the
// same data directory must not find it alive.
func (n *Node) killPostgres() error {
	pid, alive := n.PostmasterPID()
	if !alive || !isPostgres(pid) {
		return nil
	}
	n.c.log.logf("[%s] SIGKILL postgres process group %d", n.Name, pid)
	if err := n.signalPostgres(sigkill); err != nil {
		return err
	}
	deadline := time.NewTimer(processGoneTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for reapOrphans(); !processGone(pid); reapOrphans() {
		select {
		case <-deadline.C:
			return fmt.Errorf("postgres of %s (pid %d) still alive %s after SIGKILL", n.Name, pid, processGoneTimeout)
		case <-tick.C:
		}
	}
	return nil
}
