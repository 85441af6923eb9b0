package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// stuckArchiveCommand never finishes within a test: a fast shutdown waits
// for the archiver, which waits for it.
const stuckArchiveCommand = "sleep 60"

// TestStopEscalatesToImmediateWhenFastHangs: a client holds a transaction
// open (smart shutdown waits for it) and the archiver is stuck in its
// archive_command with WAL left to archive (fast shutdown waits for the
// archiver after its checkpoint). Stop from smart must still end the
// server within its budget, by immediate shutdown (or SIGKILL), with
// smart and fast each given their share of the plan first.
func TestStopEscalatesToImmediateWhenFastHangs(t *testing.T) {
	inst := newTestInstance(t, "pg-archiving")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := inst.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inst.SetDynamicParameters(map[string]any{"archive_mode": "on", "archive_command": stuckArchiveCommand}); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.ConfigurePrimary(); err != nil {
		t.Fatal(err)
	}
	startCtx, startCancel := context.WithTimeout(ctx, 30*time.Second)
	err := inst.Start(startCtx)
	startCancel()
	if err != nil {
		t.Fatal(err)
	}

	// Two finished WAL segments to archive; the archiver blocks on the first.
	execSQL(t, inst, "CREATE TABLE e2e_arch (id int); INSERT INTO e2e_arch SELECT generate_series(1, 10000)")
	execSQL(t, inst, "SELECT pg_switch_wal()")
	waitFor(t, 15*time.Second, "the archiver inside archive_command", func() (bool, string) {
		n := queryInt(t, inst, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'archiver' AND wait_event = 'ArchiveCommand'")
		return n == 1, fmt.Sprintf("%d archivers waiting on archive_command", n)
	})
	execSQL(t, inst, "INSERT INTO e2e_arch SELECT generate_series(1, 10000)")
	execSQL(t, inst, "SELECT pg_switch_wal()")
	if ready := readyWAL(t, inst); ready < 2 {
		t.Fatalf("%d WAL segments waiting for the archiver, want ≥ 2", ready)
	}

	conn, err := pgx.Connect(ctx, inst.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "BEGIN; SELECT txid_current()"); err != nil {
		t.Fatal(err)
	}

	const budget = 3 * time.Second
	start := time.Now()
	reached, err := inst.Stop(ctx, StopSmart, budget)
	elapsed := time.Since(start)
	t.Logf("Stop(smart, %s) reached %q after %s", budget, reached, elapsed.Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if reached != StopImmediate && reached != StopKill {
		t.Errorf("Stop reached %q; smart and fast cannot finish here, want immediate (or kill)", reached)
	}
	// Smart and fast get their shares of the plan before immediate, and
	// the whole stop, a SIGKILL included, ends within the budget.
	plan := planStop(StopSmart, budget)
	immediateAt := plan.Stages[len(plan.Stages)-1].At
	if elapsed < immediateAt-100*time.Millisecond || elapsed > budget+stopSlack {
		t.Errorf("Stop took %s; want between %s (smart and fast tried) and the budget + %s (%s)",
			elapsed, immediateAt, stopSlack, budget+stopSlack)
	}
	if _, err := inst.PostmasterPID(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("PostmasterPID after Stop: %v, want ErrNotRunning", err)
	}
	// Informative: the fast shutdown's checkpoint may have completed (the
	// control file then says "shut down"); what held it was the archiver.
	if cd, err := inst.ControlData(ctx); err == nil {
		t.Logf("control data state after Stop: %q", cd.State)
	}
}

// readyWAL counts the WAL segments marked ready for the archiver.
func readyWAL(t *testing.T, inst *Instance) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(inst.Config().DataDir, "pg_wal", "archive_status"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".ready") {
			n++
		}
	}
	return n
}
