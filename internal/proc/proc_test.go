package proc

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/postgres"
)

func state(t *testing.T, pid int) byte {
	t.Helper()
	_, s, _, ok := postgres.ProcStat(pid)
	if !ok {
		t.Fatalf("pid %d gone", pid)
	}
	return s
}

func TestHandleLifecycle(t *testing.T) {
	h := &Handle{Name: "sleeper", Launch: Plain}
	if h.Running() || h.PID() != 0 || h.Crashed() != nil {
		t.Fatalf("before Start: running %v, pid %d, crashed %v", h.Running(), h.PID(), h.Crashed())
	}
	exited := make(chan error, 1)
	if _, err := h.Start(exec.CommandContext(t.Context(), "sleep", "60"), nil, func(err error) { exited <- err }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(exec.CommandContext(t.Context(), "sleep", "60"), nil, nil); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start: %v, want already running", err)
	}
	pid := h.PID()
	if err := h.Freeze(true, false); err != nil {
		t.Fatal(err)
	}
	if s := state(t, pid); s != 'T' {
		t.Errorf("frozen pid %d in state %c", pid, s)
	}
	h.Thaw()
	if err := waitState(pid, 'S'); err != nil {
		t.Error(err)
	}
	// Stop resumes a frozen process before SIGTERM.
	if _, err := h.FreezeProcess(); err != nil {
		t.Fatal(err)
	}
	exit, err := h.Stop(5 * time.Second)
	if err != nil || exit == nil { // sleep dies of SIGTERM: a non-zero status
		t.Errorf("Stop: exit %v, err %v; want a signal exit and no error", exit, err)
	}
	if got := <-exited; got == nil {
		t.Error("the exited callback got a clean status for a SIGTERMed sleep")
	}
	if h.Running() || h.Crashed() != nil {
		t.Errorf("after Stop: running %v, crashed %v", h.Running(), h.Crashed())
	}
}

func TestHandleCrashAndKill(t *testing.T) {
	h := &Handle{Name: "shell", Launch: Plain}
	p, err := h.Start(exec.CommandContext(t.Context(), "sh", "-c", "exit 3"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := h.Crashed(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Crashed = %v, want exit status 3", err)
	}
	if _, err := h.Start(exec.CommandContext(t.Context(), "sh", "-c", "sleep 60 & wait"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	if h.Running() || h.Crashed() != nil {
		t.Errorf("after Kill: running %v, crashed %v", h.Running(), h.Crashed())
	}
}

func TestServerWithoutPostmaster(t *testing.T) {
	dir := t.TempDir()
	if pid, alive := ServerPID(dir); pid != 0 || alive {
		t.Errorf("ServerPID of an empty dir = %d, %v", pid, alive)
	}
	if procs, err := KillServer(dir); procs != nil || err != nil {
		t.Errorf("KillServer of an empty dir = %v, %v", procs, err)
	}
	h := &Handle{Name: "none", DataDir: dir, Launch: Plain}
	if err := h.FreezePostmaster(); err == nil {
		t.Error("FreezePostmaster without a postmaster succeeded")
	}
}

// waitState polls pid's state until it is want (a thawed sleep goes back
// to S), up to GoneTimeout.
func waitState(pid int, want byte) error {
	deadline := time.Now().Add(GoneTimeout)
	for {
		_, s, _, ok := postgres.ProcStat(pid)
		if ok && s == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d in state %c, want %c", pid, s, want)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: no event to wait on
	}
}
