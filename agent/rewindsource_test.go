package agent

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
)

func TestRewindSourceReady(t *testing.T) {
	for _, tt := range []struct {
		name              string
		controlTL, target uint32
		err               error
		ready             bool
	}{
		{"control file on the source's timeline", 8, 8, nil, true},
		{"control file past it (a newer promotion)", 9, 8, nil, true},
		{"control file still on the old timeline: pg_rewind would copy nothing", 7, 8, nil, false},
		{"source unreachable", 8, 8, errors.New("connect: refused"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ready, why := rewindSourceReady(tt.controlTL, tt.target, tt.err)
			if ready != tt.ready || (why == "") != tt.ready {
				t.Errorf("rewindSourceReady(%d, %d, %v) = %v %q, want %v and a reason only when not ready", tt.controlTL, tt.target, tt.err, ready, why, tt.ready)
			}
		})
	}
}

func TestStoppedDiverged(t *testing.T) {
	history := []postgres.TimelineSwitch{{Timeline: 7, SwitchLSN: 0x70C0000}}
	standby := func(tl uint32, end postgres.LSN) postgres.ControlData {
		return postgres.ControlData{State: postgres.StateShutDownInRecovery, Timeline: tl, MinRecoveryEndTimeline: tl, MinRecoveryEndLSN: end}
	}
	for _, tt := range []struct {
		name     string
		cd       postgres.ControlData
		diverged bool
	}{
		// The chaos suite's case: minimum recovery point 0/70C7D88 on
		// timeline 7, past the fork of timeline 8.
		{"replica replayed past the fork", standby(7, 0x70C7D88), true},
		{"replica stopped before the fork", standby(7, 0x70B0000), false},
		{"replica already on the upstream's timeline", standby(8, 0x70D0000), false},
		{"primary shut down past the fork", postgres.ControlData{State: postgres.StateShutDown, Timeline: 7, CheckpointLSN: 0x70C1000}, true},
		{"crashed on another timeline", postgres.ControlData{State: postgres.StateInArchiveRecovery, Timeline: 7, CheckpointLSN: 0x7000000}, true},
		{"crashed on the upstream's timeline (after a rewind)", postgres.ControlData{State: postgres.StateInArchiveRecovery, Timeline: 8, CheckpointLSN: 0x70D0000}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := stoppedDiverged(tt.cd, 8, history); got != tt.diverged {
				t.Errorf("stoppedDiverged(%+v) = %v, want %v", tt.cd, got, tt.diverged)
			}
		})
	}
}

// storeLedByStandbyLeader: pg0 holds the leader key on timeline 2, whose
// history forks timeline 1 at 0/2000000 — before a replica at 0/3000000.
func storeLedByStandbyLeader(t *testing.T) *dcstest.Fake {
	t.Helper()
	store := newStore()
	leader := addPeer(t, store, "pg0", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni",
		State: "running", Role: "standby_leader", Timeline: 2})
	takeLeader(t, leader, "pg0")
	if err := store.Put(t.Context(), store.Keys().Initialize(), []byte("7000000000000000001")); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestReplicaRewindWaitsForTheSourceCheckpoint: a diverged replica asks
// its rewind source for a CHECKPOINT and rewinds only once the source's
// control file is on the source's timeline — found by the chaos suite: a
// standby leader that had just followed a remote failover still showed
// the old timeline in its control file, and pg_rewind against it copied
// nothing, leaving the replica unable to start.
func TestReplicaRewindWaitsForTheSourceCheckpoint(t *testing.T) {
	store := storeLedByStandbyLeader(t)
	pg := pgtest.New(7000000000000000001)
	pg.SetReplica(0x3000000)
	pg.NotStreaming = true
	pg.Histories = map[uint32][]postgres.TimelineSwitch{2: {{Timeline: 1, SwitchLSN: 0x2000000}}}
	pg.SourceTimeline = 1 // no restartpoint on timeline 2 yet
	h := newLoopHarness(t, store, pg)
	for i := 0; i < 3; i++ {
		h.tick()
		h.advance(rewindCheckEvery)
	}
	h.awaitJob()
	if ops := pg.Ops(); slices.Contains(ops, "rewind pg0") || !slices.Contains(ops, "checkpoint pg0") {
		t.Fatalf("ops %v: want a CHECKPOINT asked of pg0 and no rewind while its control file is on timeline 1", ops)
	}
	pg.SourceTimeline = 2
	h.tick()
	h.awaitJob()
	if ops := pg.Ops(); !slices.Contains(ops, "rewind pg0") {
		t.Fatalf("ops %v: want a rewind against pg0 once its control file reached timeline 2", ops)
	}
}

// TestReplicaThatCannotStartIsRewound: a stopped replica whose start
// fails and whose control file diverged from the leader's history is
// rewound (its divergence read with pg_controldata), not left down.
func TestReplicaThatCannotStartIsRewound(t *testing.T) {
	store := storeLedByStandbyLeader(t)
	pg := pgtest.New(7000000000000000001) // stopped, control file on timeline 1
	pg.StartErr = errors.New("pg_ctl start: FATAL: requested timeline 2 does not contain minimum recovery point 0/3000000 on timeline 1")
	pg.Histories = map[uint32][]postgres.TimelineSwitch{2: {{Timeline: 1, SwitchLSN: 0x2000000}}}
	pg.SourceTimeline = 2
	h := newLoopHarness(t, store, pg)
	for i := 0; i < 4 && !slices.Contains(pg.Ops(), "rewind pg0"); i++ {
		h.tick()
		h.advance(rewindCheckEvery)
	}
	h.awaitJob()
	if ops := pg.Ops(); !slices.Contains(ops, "rewind pg0") {
		t.Fatalf("ops %v (state %s, last plan %q): want the replica that cannot start rewound against pg0", ops, h.agent.pgState, h.agent.lastPlan.Reason)
	}
	pg.StartErr = nil
	for i := 0; i < 3 && h.agent.pgState != PGRunning; i++ {
		h.tick()
		h.advance(time.Second)
	}
	if h.agent.pgState != PGRunning {
		t.Errorf("state %s after the rewind, want the replica running", h.agent.pgState)
	}
}
