package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPrimaryLifecycle runs one real primary through initdb, start, status,
// roles, slots, reload and an escalating stop.
func TestPrimaryLifecycle(t *testing.T) {
	inst := newTestInstance(t, "pg-1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dd := inst.Config().DataDir

	if empty, err := inst.DataDirEmpty(); err != nil || !empty {
		t.Fatalf("DataDirEmpty before initdb = %v, %v", empty, err)
	}
	if _, err := statusOf(t, inst); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Status before start: err = %v, want ErrNotRunning", err)
	}
	if err := inst.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if empty, err := inst.DataDirEmpty(); err != nil || empty {
		t.Fatalf("DataDirEmpty after initdb = %v, %v", empty, err)
	}
	for _, f := range []string{confFile, baseConfFile, hbaFile} {
		ownedByPG(t, inst, filepath.Join(dd, f))
	}
	base, _ := os.ReadFile(filepath.Join(dd, baseConfFile))
	if !strings.Contains(string(base), "max_connections") {
		t.Errorf("postgresql.base.conf is not initdb's file:\n%.300s", base)
	}

	startCtx, startCancel := context.WithTimeout(ctx, 30*time.Second)
	if err := inst.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	startCancel()
	if err := inst.Start(ctx); err != nil {
		t.Errorf("Start while running: %v", err)
	}
	pid, err := inst.PostmasterPID()
	if err != nil || pid <= 0 {
		t.Fatalf("PostmasterPID = %d, %v", pid, err)
	}

	st, err := statusOf(t, inst)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := inst.ControlData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !st.Running || st.InRecovery || st.Streaming || st.ReplayPaused:
		t.Errorf("primary status flags wrong: %+v", st)
	case st.Timeline != 1:
		t.Errorf("timeline = %d, want 1", st.Timeline)
	case st.CurrentLSN == 0 || st.WALPosition() != st.CurrentLSN:
		t.Errorf("CurrentLSN = %v, WALPosition = %v", st.CurrentLSN, st.WALPosition())
	case st.ReceiveLSN != 0 || st.ReplayLSN != 0:
		t.Errorf("primary has receive/replay LSN %v/%v", st.ReceiveLSN, st.ReplayLSN)
	case st.SystemID == 0 || st.SystemID != cd.SystemID:
		t.Errorf("SystemID = %d, pg_controldata says %d", st.SystemID, cd.SystemID)
	case st.ServerVersion < 150000:
		t.Errorf("ServerVersion = %d", st.ServerVersion)
	case time.Since(st.PostmasterStart) > time.Minute || time.Since(st.PostmasterStart) < 0:
		t.Errorf("PostmasterStart = %v", st.PostmasterStart)
	case st.PendingRestart:
		t.Errorf("PendingRestart on a fresh server")
	case len(st.Replication) != 0:
		t.Errorf("replication rows on a lone primary: %+v", st.Replication)
	}
	if cd.State != StateInProduction || cd.Timeline != 1 {
		t.Errorf("control data of a running primary: %+v", cd)
	}

	t.Run("StatusRedialsAndIsConcurrent", func(t *testing.T) {
		// Kill our own session behind the Instance's back: the next Status
		// must re-dial rather than report an error.
		n := queryInt(t, inst, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'regent' AND pid <> pg_backend_pid()")
		if n != 1 {
			t.Fatalf("terminated %d regent sessions, want 1", n)
		}
		if _, err := statusOf(t, inst); err != nil {
			t.Fatalf("Status after the session was killed: %v", err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := inst.Status(ctx); err != nil {
					t.Errorf("concurrent Status: %v", err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("SetupRoles", func(t *testing.T) {
		for range 2 { // idempotent
			if err := inst.SetupRoles(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n := queryInt(t, inst, "SELECT count(*) FROM pg_roles WHERE rolname = $1 AND rolreplication AND rolcanlogin", "replicator")
		if n != 1 {
			t.Errorf("replicator role with LOGIN REPLICATION: %d rows", n)
		}
	})

	t.Run("EnsureSlots", func(t *testing.T) {
		execSQL(t, inst, "SELECT pg_create_physical_replication_slot('stale_member')")
		if _, err := inst.EnsureSlots(ctx, SlotPolicy{Primary: true, Members: []string{"pg-1", "pg-2", "pg.Three"}}); err != nil {
			t.Fatal(err)
		}
		if got := slotNames(t, inst); !slices.Equal(got, []string{"pg_2", "pg_three"}) {
			t.Errorf("slots = %v, want [pg_2 pg_three] (own slot not created, stale one dropped)", got)
		}
		if _, err := inst.EnsureSlots(ctx, SlotPolicy{Primary: true, Members: []string{"pg-1", "pg-2"}}); err != nil {
			t.Fatal(err)
		}
		if got := slotNames(t, inst); !slices.Equal(got, []string{"pg_2"}) {
			t.Errorf("slots = %v, want [pg_2]", got)
		}
		// A permanent slot is created, an ignored one kept, an unknown one
		// dropped; slot files are never installed into a running server.
		execSQL(t, inst, "SELECT pg_create_physical_replication_slot('barman', true)")
		execSQL(t, inst, "SELECT pg_create_physical_replication_slot('stray', true)")
		// wal_level is replica here: the logical slot is refused, and the
		// refusal must not stop the other slots.
		policy := SlotPolicy{Primary: true, Members: []string{"pg-2", "pg-9"}, Permanent: []Slot{{Name: "archiver", Type: SlotPhysical},
			{Name: "cdc", Type: SlotLogical, Database: "postgres", Plugin: "test_decoding"}},
			Ignore: []SlotMatch{{Name: "barman", Type: SlotPhysical}}}
		have, err := inst.EnsureSlots(ctx, policy)
		if err != nil {
			t.Fatal(err)
		}
		if len(have) != 3 {
			t.Errorf("EnsureSlots returned %d slots as read, want 3 (pg_2, barman, stray)", len(have))
		}
		if got := slotNames(t, inst); !slices.Equal(got, []string{"archiver", "barman", "pg_2", "pg_9"}) {
			t.Errorf("slots = %v, want [archiver barman pg_2 pg_9]", got)
		}
		if err := inst.InstallSlotStates([]SlotState{{Name: "x", State: []byte("x")}}); err == nil {
			t.Error("InstallSlotStates into a running instance: no error")
		}
	})

	t.Run("ConfigureAndReload", func(t *testing.T) {
		changed, err := inst.WriteHBA([]string{"127.0.0.2"})
		if err != nil || !changed {
			t.Fatalf("WriteHBA = %v, %v", changed, err)
		}
		if err := inst.SetDynamicParameters(map[string]any{"max_worker_processes": 9, "work_mem": "5MB"}); err != nil {
			t.Fatal(err)
		}
		if changed, err := inst.ConfigurePrimary(); err != nil || !changed {
			t.Fatalf("ConfigurePrimary = %v, %v", changed, err)
		}
		if err := inst.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "reload to apply work_mem and flag the restart-only setting", func() (bool, string) {
			st, err := statusOf(t, inst)
			if err != nil {
				return false, err.Error()
			}
			wm := queryInt(t, inst, "SELECT setting::bigint FROM pg_settings WHERE name = 'work_mem'")
			return st.PendingRestart && wm == 5*1024, ""
		})
	})

	t.Run("StopEscalates", func(t *testing.T) {
		// An open transaction holds a smart shutdown forever.
		conn, err := pgx.Connect(ctx, inst.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "BEGIN; SELECT txid_current()"); err != nil {
			t.Fatal(err)
		}
		if _, err := statusOf(t, inst); err != nil { // Stop must close this session too
			t.Fatal(err)
		}
		const budget = 3 * time.Second
		start := time.Now()
		reached, err := inst.Stop(ctx, StopSmart, budget)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if reached != StopFast && reached != StopImmediate {
			t.Errorf("Stop reached %q, want fast or immediate", reached)
		}
		// Smart gets its share of the plan before fast.
		fastAt := planStop(StopSmart, budget).Stages[1].At
		if elapsed < fastAt-100*time.Millisecond || elapsed > budget+stopSlack {
			t.Errorf("Stop took %v with a %v budget (smart gets %v)", elapsed, budget, fastAt)
		}
		if _, err := inst.PostmasterPID(); !errors.Is(err, ErrNotRunning) {
			t.Errorf("PostmasterPID after stop: %v, want ErrNotRunning", err)
		}
		if _, err := statusOf(t, inst); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Status after stop: %v, want ErrNotRunning", err)
		}
		if reached, err := inst.Stop(ctx, StopFast, time.Second); err != nil || reached != StopFast {
			t.Errorf("Stop when stopped = %q, %v", reached, err)
		}
		cd, err := inst.ControlData(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if reached == StopFast && cd.State != StateShutDown {
			t.Errorf("after a fast stop the cluster state is %q", cd.State)
		}
	})

	t.Run("StartFailureShowsLog", func(t *testing.T) {
		// A value the catalogue accepts but the postmaster refuses at start.
		if err := inst.SetDynamicParameters(map[string]any{"shared_preload_libraries": "regent_no_such_library"}); err != nil {
			t.Fatal(err)
		}
		if _, err := inst.ConfigurePrimary(); err != nil {
			t.Fatal(err)
		}
		startCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err := inst.Start(startCtx)
		if err == nil || !strings.Contains(err.Error(), `"regent_no_such_library"`) {
			t.Fatalf("Start with a bad setting = %v, want the log's complaint", err)
		}
		if err := inst.SetDynamicParameters(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := inst.ConfigurePrimary(); err != nil {
			t.Fatal(err)
		}
		// A stale postmaster.pid naming a live process that is not a
		// postmaster of this cluster (the test itself) must not block Start.
		pidFile := filepath.Join(dd, "postmaster.pid")
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), dd)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := inst.PostmasterPID(); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("PostmasterPID with a reused pid = %v, want ErrNotRunning", err)
		}
		if err := inst.Start(startCtx); err != nil {
			t.Fatal(err)
		}
		if pid, err := inst.PostmasterPID(); err != nil || pid == os.Getpid() {
			t.Fatalf("PostmasterPID after start = %d, %v", pid, err)
		}
		if st, err := statusOf(t, inst); err != nil || !st.Running {
			t.Fatalf("Status after restart = %+v, %v", st, err)
		}
	})
}

func slotNames(t *testing.T, inst *Instance) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, inst.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT slot_name::text FROM pg_replication_slots ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}
