package postgres

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestStopKillsFrozenChildren: a frozen host thaws with PostgreSQL frozen
// (the postmaster and a backend stopped): no shutdown mode is acted on, so
// Stop must end in SIGKILL — of the backend too, which runs in a session
// of its own and so outside the postmaster's process group. A backend left
// alive would hold the shared memory and could write once continued; the
// server must start again once init has reaped them.
func TestStopKillsFrozenChildren(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	inst, backend, pm, procs := busyPrimary(t, ctx, "pg-frozen")
	// Without postmaster.pid (an unreadable data directory) the server is
	// found by its working directory.
	if got, ok := postmasterIn(inst.Config().DataDir); !ok || got != pm {
		t.Errorf("postmasterIn(data dir) = %d, %v; want the postmaster %d", got, ok, pm)
	}
	if got, ok := postmasterIn(t.TempDir()); ok {
		t.Errorf("postmasterIn(an empty directory) = %d, want none", got)
	}
	if !slices.Contains(procs, backend) || procs[len(procs)-1] != pm {
		t.Fatalf("ServerProcesses(%d) = %v; want the backend %d among the children, the postmaster last", pm, procs, backend)
	}
	if pgid, err := syscall.Getpgid(backend); err != nil || pgid == pm {
		t.Fatalf("backend %d: process group %d (%v); the test needs it outside the postmaster's", backend, pgid, err)
	}
	for _, pid := range []int{backend, pm} {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}

	reached, err := inst.Stop(ctx, StopImmediate, time.Second)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if reached != StopKill {
		t.Errorf("Stop reached %q; a stopped postmaster cannot act on a shutdown signal, want %q", reached, StopKill)
	}
	for _, pid := range procs {
		if processAlive(pid) {
			t.Errorf("pid %d (postmaster %d, backend %d) alive after Stop returned", pid, pm, backend)
		}
	}
	if _, err := inst.PostmasterPID(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("PostmasterPID after Stop: %v, want ErrNotRunning", err)
	}
	waitReaped(t, procs)
	if err := inst.Start(ctx); err != nil {
		t.Fatalf("start after the kill: %v", err)
	}
	if n := queryInt(t, inst, "SELECT 1"); n != 1 {
		t.Errorf("SELECT 1 = %d after the restart", n)
	}
	if _, err := inst.Stop(ctx, StopFast, 0); err != nil {
		t.Errorf("final stop: %v", err)
	}
}
