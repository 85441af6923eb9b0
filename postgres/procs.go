package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Every child of a postmaster (backends, walsenders, the checkpointer…)
// calls setsid, so the postmaster's process group holds the postmaster
// alone: a SIGKILL of that group leaves the children running, holding the
// shared memory a restart needs and, if they were frozen, free to write
// again when they thaw. The server's processes are found by parent pid.

// ProcStat reads a process's command name, state and parent pid from /proc.
func ProcStat(pid int) (comm string, state byte, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	// Format: pid (comm) state ppid …; comm may hold spaces and parentheses.
	open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || closing < open {
		return "", 0, 0, false
	}
	fields := bytes.Fields(stat[closing+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return "", 0, 0, false
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	if err != nil {
		return "", 0, 0, false
	}
	return string(stat[open+1 : closing]), fields[0][0], ppid, true
}

// IsPostgresBinary reports whether pid runs the postgres binary; it guards
// signals against pid reuse.
func IsPostgresBinary(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	return base == "postgres" || base == "postmaster"
}

// ServerProcesses returns the postgres children of postmaster pm, then pm.
// With freeze, pm is stopped (SIGSTOP) before its children are listed, so
// that it cannot fork one the list would miss; the caller then kills or
// continues it. Where /proc cannot be read the list holds pm alone.
func ServerProcesses(pm int, freeze bool) []int {
	if freeze {
		_ = syscall.Kill(pm, syscall.SIGSTOP)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pm}
	}
	var procs []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		if _, _, ppid, ok := ProcStat(pid); ok && ppid == pm && IsPostgresBinary(pid) {
			procs = append(procs, pid)
		}
	}
	return append(procs, pm)
}

// postmasterIn finds a running postmaster of dataDir without reading its
// postmaster.pid: a postgres process whose working directory is dataDir
// (PostgreSQL chdirs there) and whose parent is not a postgres process.
// Where /proc cannot tell, it reports none.
func postmasterIn(dataDir string) (int, bool) {
	want := filepath.Clean(dataDir)
	if abs, err := filepath.Abs(want); err == nil {
		want = abs
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil || strings.TrimSuffix(cwd, " (deleted)") != want || !IsPostgresBinary(pid) {
			continue
		}
		if _, state, ppid, ok := ProcStat(pid); ok && state != 'Z' && state != 'X' && !IsPostgresBinary(ppid) {
			return pid, true
		}
	}
	return 0, false
}

// processExists reports whether pid exists, zombie or not.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if !processExists(pid) {
		return false
	}
	_, state, _, ok := ProcStat(pid)
	if !ok {
		// No /proc: a process that answers signal 0 counts as alive.
		_, err := os.Stat("/proc/self")
		return err != nil
	}
	return state != 'Z' && state != 'X'
}

// stoppedState reports whether a /proc state letter is a stopped process:
// T (job control: SIGSTOP, SIGTSTP…) or t (stopped by a tracer).
// Such a process acts on no signal until continued, except SIGKILL.
func stoppedState(state byte) bool {
	return state == 'T' || state == 't'
}

// processStopped reports whether pid exists and is stopped (stoppedState).
func processStopped(pid int) bool {
	_, state, _, ok := ProcStat(pid)
	return ok && stoppedState(state)
}
