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
)

// TestCloneStreamPromoteRewind builds a primary and a clone, checks
// streaming, promotes the clone, lets the old primary diverge, rewinds it
// and makes it stream from the new primary.
func TestCloneStreamPromoteRewind(t *testing.T) {
	a := newTestInstance(t, "pg-a")
	b := newTestInstance(t, "pg-b")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// Primary a.
	if err := a.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteHBA([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.SetupRoles(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnsureSlots(ctx, SlotPolicy{Primary: true, Members: []string{"pg-a", "pg-b"}}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, a, "CREATE TABLE t (id int PRIMARY KEY)")
	execSQL(t, a, "INSERT INTO t SELECT generate_series(1, 100)")

	// Clone b from a and stream.
	if err := b.Clone(ctx, upstreamOf(a)); err != nil {
		t.Fatal(err)
	}
	bdd := b.Config().DataDir
	if st, err := os.Stat(bdd); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("clone data dir mode: %v, %v", st.Mode(), err)
	}
	ownedByPG(t, b, bdd)
	ownedByPG(t, b, filepath.Join(bdd, standbyFile))
	conf := readFile(t, filepath.Join(bdd, confFile))
	for _, want := range []string{"cluster_name = 'pg-b'", fmt.Sprintf("port = %d", upstreamOf(b).Port), "primary_slot_name = 'pg_b'"} {
		if !strings.Contains(conf, want) {
			t.Errorf("clone's postgresql.conf lacks %q", want)
		}
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitStreaming(t, b, a, 1)
	primary, _ := statusOf(t, a)
	if len(primary.Replication) != 1 || primary.Replication[0].ApplicationName != "pg-b" || primary.Replication[0].Usename != "replicator" {
		t.Errorf("pg_stat_replication on the primary: %+v", primary.Replication)
	}

	t.Run("Promote", func(t *testing.T) {
		if err := b.Promote(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := statusOf(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if st.InRecovery || st.Timeline != 2 || st.CurrentLSN == 0 {
			t.Fatalf("after promote: in recovery %v, timeline %d, current %v", st.InRecovery, st.Timeline, st.CurrentLSN)
		}
		// The rewind source's check: a CHECKPOINT moves the control file
		// to the new timeline.
		if tl, err := a.SourceCheckpointTimeline(ctx, upstreamOf(b), true); err != nil || tl != 2 {
			t.Fatalf("SourceCheckpointTimeline(promoted b, checkpoint) = %d, %v; want 2", tl, err)
		}
		if changed, err := b.ConfigurePrimary(); err != nil || !changed {
			t.Errorf("ConfigurePrimary after promote = %v, %v; want changed", changed, err)
		}
		if err := b.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		execSQL(t, b, "INSERT INTO t SELECT generate_series(201, 210)")
	})
	if t.Failed() {
		return
	}

	t.Run("Rewind", func(t *testing.T) {
		// The old primary a writes WAL the new timeline never saw.
		execSQL(t, a, "INSERT INTO t SELECT generate_series(1001, 1050)")
		if reached, err := a.Stop(ctx, StopFast, 10*time.Second); err != nil || reached != StopFast {
			t.Fatalf("stop old primary = %q, %v", reached, err)
		}
		cd, err := a.ControlData(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tl, end, clean := cd.WALEnd()
		if tl != 1 || !clean {
			t.Fatalf("old primary WALEnd = %d, %v, clean %v (control data %+v)", tl, end, clean, cd)
		}
		hist, err := a.TimelineHistory(ctx, upstreamOf(b), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0].Timeline != 1 {
			t.Fatalf("history of timeline 2 = %+v", hist)
		}
		if !NeedsRewind(tl, end, 2, hist) {
			t.Fatalf("NeedsRewind(%d, %v, 2, %+v) = false after divergent writes", tl, end, hist)
		}
		if _, err := b.EnsureSlots(ctx, SlotPolicy{Primary: true, Members: []string{"pg-a", "pg-b"}}); err != nil {
			t.Fatal(err)
		}
		divergedStandby(t, a, b, tl)
		if err := a.Rewind(ctx, upstreamOf(b)); err != nil {
			t.Fatal(err)
		}
		conf := readFile(t, filepath.Join(a.Config().DataDir, confFile))
		for _, want := range []string{"cluster_name = 'pg-a'", "primary_slot_name = 'pg_a'", fmt.Sprintf("port = %d\n", upstreamOf(a).Port)} {
			if !strings.Contains(conf, want) {
				t.Errorf("rewound postgresql.conf lacks %q", want)
			}
		}
		if strings.Contains(conf, fmt.Sprintf("port = %d\n", upstreamOf(b).Port)) {
			t.Errorf("rewound postgresql.conf kept the source's port")
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitStreaming(t, a, b, 2)
		// On a standby the CHECKPOINT is a restartpoint: once it replayed
		// b's checkpoint record of timeline 2, its control file shows 2
		// (what a rewind against a standby leader waits for).
		waitFor(t, 30*time.Second, "standby a's control file on timeline 2 after CHECKPOINT (a restartpoint)", func() (bool, string) {
			tl, err := b.SourceCheckpointTimeline(ctx, upstreamOf(a), true)
			return err == nil && tl == 2, fmt.Sprintf("timeline %d, err %v", tl, err)
		})
		if n := queryInt(t, a, "SELECT count(*) FROM t WHERE id > 1000"); n != 0 {
			t.Errorf("%d divergent rows survived the rewind", n)
		}
		if n := queryInt(t, a, "SELECT count(*) FROM t"); n != 110 {
			t.Errorf("rewound replica has %d rows, want 110", n)
		}
	})
}

// divergedStandby starts the diverged old primary a as a standby of b, as
// an agent that has not yet found the divergence does. PostgreSQL fetches
// b's timeline history, cannot follow it (a replayed past the fork point)
// and retries forever: a must keep reporting its own timeline tl, not b's,
// or the agent's divergence check never runs and a never streams again.
// It leaves a stopped.
func divergedStandby(t *testing.T, a, b *Instance, tl uint32) {
	t.Helper()
	ctx := t.Context()
	up := upstreamOf(b)
	if _, err := a.ConfigureStandby(&up); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	history := filepath.Join(a.Config().DataDir, "pg_wal", "00000002.history")
	waitFor(t, 30*time.Second, "the diverged standby to fetch timeline 2's history", func() (bool, string) {
		_, err := os.Stat(history)
		return err == nil, fmt.Sprint(err)
	})
	st, err := statusOf(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if !st.InRecovery || st.Streaming || st.Timeline != tl {
		t.Errorf("diverged standby: in recovery %v, streaming %v, timeline %d; want recovery, not streaming, its own timeline %d",
			st.InRecovery, st.Streaming, st.Timeline, tl)
	}
	if reached, err := a.Stop(ctx, StopFast, 10*time.Second); err != nil || reached != StopFast {
		t.Fatalf("stop the diverged standby = %q, %v", reached, err)
	}
}

// waitStreaming waits until replica streams from primary on timeline tl
// and has replayed a row written after it started streaming.
func waitStreaming(t *testing.T, replica, primary *Instance, tl uint32) {
	t.Helper()
	waitFor(t, 30*time.Second, replica.name+" streaming", func() (bool, string) {
		st, err := statusOf(t, replica)
		if err != nil {
			return false, err.Error()
		}
		return st.InRecovery && st.Streaming && st.Timeline == tl, fmt.Sprintf("%+v", st)
	})
	execSQL(t, primary, "CREATE TABLE IF NOT EXISTS marker (n int); INSERT INTO marker VALUES (1)")
	pst, _ := statusOf(t, primary)
	waitFor(t, 30*time.Second, replica.name+" replaying to "+pst.CurrentLSN.String(), func() (bool, string) {
		st, err := statusOf(t, replica)
		if err != nil {
			return false, err.Error()
		}
		return st.ReplayLSN >= pst.CurrentLSN && st.ReceiveLSN >= pst.CurrentLSN, fmt.Sprintf("replay %v receive %v", st.ReplayLSN, st.ReceiveLSN)
	})
	st, _ := statusOf(t, replica)
	if st.SystemID != pst.SystemID || st.WALPosition() < pst.CurrentLSN || st.ReplayedAt.IsZero() {
		t.Errorf("replica status: system id %d (primary %d), position %v, replayed at %v", st.SystemID, pst.SystemID, st.WALPosition(), st.ReplayedAt)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCloneFailureLeavesEmptyDataDir clones from a port nobody listens on.
func TestCloneFailureLeavesEmptyDataDir(t *testing.T) {
	inst := newTestInstance(t, "pg-c")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := inst.Clone(ctx, Upstream{Member: "nobody", Host: "127.0.0.1", Port: freePort(t)})
	if err == nil {
		t.Fatal("Clone from a closed port succeeded")
	}
	entries, rerr := os.ReadDir(inst.Config().DataDir)
	if rerr != nil || len(entries) != 0 {
		t.Errorf("data dir after a failed clone: %v entries, %v", len(entries), rerr)
	}
	if empty, err := inst.DataDirEmpty(); err != nil || !empty {
		t.Errorf("DataDirEmpty after a failed clone = %v, %v", empty, err)
	}
	if err := os.WriteFile(filepath.Join(inst.Config().DataDir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := inst.Clone(ctx, Upstream{Member: "nobody", Host: "127.0.0.1", Port: 1}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Clone into a non-empty data dir = %v", err)
	}
	// Not a data directory: the wipe refuses and the file stays.
	if err := inst.WipeDataDir(ctx, AnySystem); !errors.Is(err, ErrWipeRefused) {
		t.Errorf("WipeDataDir of a directory holding junk = %v, want ErrWipeRefused", err)
	}
	if _, err := os.Stat(filepath.Join(inst.Config().DataDir, "junk")); err != nil {
		t.Errorf("the refused wipe deleted junk: %v", err)
	}
}
