package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// stopSlack is what Stop may take beyond its budget: the last poll and the
// /proc scan before SIGKILL. The fencing leader counts on it being small.
const stopSlack = 250 * time.Millisecond

// startPrimary initialises and starts a primary for a stop test.
func startPrimary(t *testing.T, ctx context.Context, name string) *Instance {
	t.Helper()
	inst := newTestInstance(t, name)
	if err := inst.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.ConfigurePrimary(); err != nil {
		t.Fatal(err)
	}
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return inst
}

// openBackend connects to inst and returns the connection's backend pid.
func openBackend(t *testing.T, ctx context.Context, inst *Instance) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, inst.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) }) // t.Context is cancelled by now
	var backend int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	return backend
}

// busyPrimary starts a primary with one open session; it returns the
// instance, the session's backend pid, the postmaster's pid and every
// server process (the postmaster last).
func busyPrimary(t *testing.T, ctx context.Context, name string) (inst *Instance, backend, pm int, procs []int) {
	t.Helper()
	inst = startPrimary(t, ctx, name)
	backend = openBackend(t, ctx, inst)
	pm, err := inst.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	return inst, backend, pm, ServerProcesses(pm, false)
}

// timedStop runs inst.Stop and checks the budget: it must return within
// budget + stopSlack, SIGKILL and reaping included.
func timedStop(t *testing.T, ctx context.Context, inst *Instance, from StopMode, budget time.Duration) (StopMode, time.Duration) {
	t.Helper()
	start := time.Now()
	reached, err := inst.Stop(ctx, from, budget)
	elapsed := time.Since(start)
	t.Logf("Stop(%s, %s) reached %q after %s", from, budget, reached, elapsed.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if elapsed > budget+stopSlack {
		t.Errorf("Stop took %s; want at most the budget + %s (%s), the wait after SIGKILL included",
			elapsed, stopSlack, budget+stopSlack)
	}
	return reached, elapsed
}

// requireGone checks no server process is alive once Stop has returned,
// and that the server starts again.
func requireGone(t *testing.T, ctx context.Context, inst *Instance, procs []int) {
	t.Helper()
	for _, pid := range procs {
		if processAlive(pid) {
			_, state, _, _ := ProcStat(pid)
			t.Errorf("server process %d (state %q) alive after Stop returned", pid, state)
		}
	}
	if _, err := inst.PostmasterPID(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("PostmasterPID after Stop: %v, want ErrNotRunning", err)
	}
	waitReaped(t, procs)
	if err := inst.Start(ctx); err != nil {
		t.Fatalf("start after the stop: %v", err)
	}
}

// waitReaped waits until init has reaped procs. Stop does not wait for a
// slow init beyond reapWait, and PostgreSQL takes the socket lock file of a
// postmaster not reaped yet for a running server's. Some inits (this
// sandbox's among them) reap only every few seconds.
func waitReaped(t *testing.T, procs []int) {
	t.Helper()
	start := time.Now()
	waitFor(t, 30*time.Second, "the killed server processes reaped", func() (bool, string) {
		if left := slices.IndexFunc(procs, processExists); left >= 0 {
			return false, fmt.Sprintf("pid %d not reaped", procs[left])
		}
		return true, ""
	})
	t.Logf("server processes reaped %s after Stop returned", time.Since(start).Round(time.Millisecond))
}

// TestStopImmediateFrozenPostmaster: a fencing leader stops a frozen
// PostgreSQL (postmaster and a backend SIGSTOPped) immediately with a 2 s
// budget. A stopped postmaster cannot act on SIGQUIT, so Stop must not wait
// for it: it SIGKILLs every server process at once and returns well before
// the budget, with none of them left alive.
func TestStopImmediateFrozenPostmaster(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	inst, backend, pm, procs := busyPrimary(t, ctx, "pg-frozen-budget")
	if !slices.Contains(procs, backend) {
		t.Fatalf("ServerProcesses(%d) = %v; want the backend %d among them", pm, procs, backend)
	}
	for _, pid := range []int{backend, pm} {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the postmaster in state T", func() (bool, string) {
		_, state, _, _ := ProcStat(pm)
		return state == 'T', string(state)
	})

	const budget = 2 * time.Second
	reached, elapsed := timedStop(t, ctx, inst, StopImmediate, budget)
	if reached != StopKill {
		t.Errorf("Stop reached %q; a stopped postmaster cannot act on SIGQUIT, want %q", reached, StopKill)
	}
	if elapsed >= budget/2 {
		t.Errorf("Stop took %s; a stopped postmaster must be killed at once, not after waiting for SIGQUIT (want < %s)",
			elapsed, budget/2)
	}
	requireGone(t, ctx, inst, procs)
}

// TestStopImmediateFrozenBackend: the postmaster acts on SIGQUIT but a
// SIGSTOPped backend cannot, and PostgreSQL waits 5 s before it SIGKILLs
// its children itself. Stop must SIGKILL them within its own budget.
func TestStopImmediateFrozenBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	inst, backend, _, procs := busyPrimary(t, ctx, "pg-frozen-backend")
	if err := syscall.Kill(backend, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	const budget = 2 * time.Second
	reached, _ := timedStop(t, ctx, inst, StopImmediate, budget)
	if reached != StopKill && reached != StopImmediate {
		t.Errorf("Stop reached %q, want %q (or %q)", reached, StopKill, StopImmediate)
	}
	requireGone(t, ctx, inst, procs)
}

// TestStopImmediateHealthyShortBudget: a healthy server still ends by
// immediate shutdown when the budget is short (1 s), the share kept for
// SIGKILL notwithstanding.
func TestStopImmediateHealthyShortBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	inst := startPrimary(t, ctx, "pg-healthy-budget")
	openBackend(t, ctx, inst)
	pm, err := inst.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	procs := ServerProcesses(pm, false)

	reached, _ := timedStop(t, ctx, inst, StopImmediate, time.Second)
	if reached != StopImmediate {
		t.Errorf("Stop reached %q; a healthy server acts on SIGQUIT, want %q", reached, StopImmediate)
	}
	requireGone(t, ctx, inst, procs)
}
