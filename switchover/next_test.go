package switchover

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// at is a running record at stage, from pg1 to pg2.
func at(stage Stage, change ...func(*Record)) *Record {
	r := &Record{ID: "s1", From: "pg1", To: "pg2", Timeout: "30s", Stage: stage, State: StateRunning, FinalLSN: 0x5000000}
	for _, c := range change {
		c(r)
	}
	return r
}

// oldLeader: the inputs of pg1, leading, driving r, with its quiesce.
func oldLeaderIn(r *Record, q Quiesce, change ...func(*Inputs)) Inputs {
	in := Inputs{Record: r, Self: "pg1", Leading: true, Timeout: 30 * time.Second, Elapsed: time.Second, InStage: time.Second,
		Quiesce: q, PGRunning: true}
	for _, c := range change {
		c(&in)
	}
	return in
}

// newLeaderIn: the inputs of pg2, leading and promoted, driving r.
func newLeaderIn(r *Record, change ...func(*Inputs)) Inputs {
	in := Inputs{Record: r, Self: "pg2", Leading: true, Timeout: 30 * time.Second, Elapsed: time.Second, InStage: time.Second,
		PGRunning: true, View: cluster(map[string]string{"pg1": "running", "pg2": "running", "pg3": "running"})}
	for _, c := range change {
		c(&in)
	}
	return in
}

// cluster is a view with the named members in the given PostgreSQL states.
func cluster(states map[string]string) *dcs.Cluster {
	c := &dcs.Cluster{Members: map[string]dcs.Member{}}
	for name, st := range states {
		c.Members[name] = dcs.Member{State: st}
	}
	return c
}

var (
	mine      = Quiesce{Active: true, ID: "s1"}
	stopped   = Quiesce{Active: true, ID: "s1", Stopped: true}
	errStop   = errors.New("pg_ctl: server does not shut down")
	stopFails = Quiesce{Active: true, ID: "s1", Stopped: true, StopErr: errStop}
	expired   = func(in *Inputs) { in.Elapsed = 31 * time.Second }
	late      = func(in *Inputs) { in.InStage = 31 * time.Second }
	withFinal = func(f Final) func(*Inputs) { return func(in *Inputs) { in.Final = &f } }
	withCatch = func(c CatchUp) func(*Inputs) { return func(in *Inputs) { in.CatchUp = &c } }
	withProbe = func(err error) func(*Inputs) { return func(in *Inputs) { in.Probe = &Probe{Err: err} } }
	streaming = func(names ...string) func(*Inputs) { return func(in *Inputs) { in.Streaming = names } }
	failed    = func(reason, hint string) *Failure { return &Failure{Reason: reason, Hint: hint} }
)

// TestNext: every branch of the switchover's next step. Reasons are
// compared where they are written to the record (Failure); elsewhere only
// their presence.
func TestNext(t *testing.T) {
	aborted := func(r *Record) { r.AbortRequested = true }
	pausing := func(in *Inputs) { in.Routing.Pause, in.Routing.Repoint = true, true }
	repointing := func(in *Inputs) { in.Routing.Repoint = true }
	busy := func(in *Inputs) { in.Routing.Busy = true }
	paused := func(r *Record) { r.UpdateRouting(func(s *RoutingState) { s.Paused = true }) }
	pauseFailed := func(r *Record) {
		r.UpdateRouting(func(s *RoutingState) { s.PauseFailed = "pgbouncer[0] PAUSE app: no answer within 1s" })
	}
	repointed := func(retry bool) func(*Record) {
		return func(r *Record) { r.UpdateRouting(func(s *RoutingState) { s.Repointed, s.Retry = true, retry }) }
	}
	retried := func(r *Record) { r.UpdateRouting(func(s *RoutingState) { s.Retried = true }) }
	standbyRec := func(r *Record) { r.Standby = true }
	standbyIn := func(in *Inputs) { in.Standby = true }
	inRecovery := func(in *Inputs) { in.PGInRecovery = true }
	for _, tt := range []struct {
		name string
		in   Inputs
		want Step
	}{
		// No record.
		{"no switchover", Inputs{Self: "pg1", Leading: true}, Step{Kind: Wait}},
		{"record gone while quiesced, stop ended: restore", Inputs{Self: "pg1", Leading: true, Quiesce: stopped}, Step{Kind: RestorePrimary}},
		{"record gone while quiesced, restored even when not leading", Inputs{Self: "pg1", Quiesce: stopped}, Step{Kind: RestorePrimary}},
		{"record gone while the stop still runs: wait for it", Inputs{Self: "pg1", Leading: true, Quiesce: mine}, Step{Kind: Wait}},

		// Not leading: nothing to drive.
		{"not leading", oldLeaderIn(at(StagePreFlight), Quiesce{}, func(in *Inputs) { in.Leading = false }), Step{Kind: Wait}},

		// Old leader before the point of no return.
		{"pre-flight done: quiesce", oldLeaderIn(at(StagePreFlight), Quiesce{}), Step{Kind: StartQuiesce}},
		{"abort before quiesce", oldLeaderIn(at(StagePreFlight, aborted), Quiesce{}),
			Step{Kind: FailBeforePromote, State: StateAborted, Failure: failed("aborted on request at PRE_FLIGHT_CHECKS", "")}},
		{"abort while stopping: wait for the stop", oldLeaderIn(at(StageQuiesce, aborted), mine),
			Step{Kind: AwaitStop, State: StateAborted, Failure: failed("aborted on request at QUIESCE_WRITES", "")}},
		{"abort after the stop: restore", oldLeaderIn(at(StageCatchUp, aborted), stopped),
			Step{Kind: FailBeforePromote, State: StateAborted, Failure: failed("aborted on request at WAIT_FOR_REPLICATION_CATCHUP", "")}},
		{"quiesce without a local stop: agent restarted", oldLeaderIn(at(StageQuiesce), Quiesce{}),
			Step{Kind: FailBeforePromote, State: StateFailed, Failure: failed("the old primary's agent restarted during QUIESCE_WRITES", "request the switchover again")}},
		{"quiesce of another switchover still stopping", oldLeaderIn(at(StageQuiesce), Quiesce{Active: true, ID: "s0"}),
			Step{Kind: AwaitStop, State: StateFailed, Failure: failed("the old primary's agent restarted during QUIESCE_WRITES", "request the switchover again")}},
		{"stopping", oldLeaderIn(at(StageQuiesce), mine), Step{Kind: Wait}},
		{"stop past the timeout: wait for it, then fail", oldLeaderIn(at(StageQuiesce), mine, expired),
			Step{Kind: AwaitStop, State: StateFailed, Failure: failed("the old primary did not stop within 30s", "look for long transactions or a slow archive_command; raise the timeout")}},
		{"stop failed", oldLeaderIn(at(StageQuiesce), stopFails),
			Step{Kind: FailBeforePromote, State: StateFailed, Stopped: true, Failure: failed("stopping the old primary failed: "+errStop.Error(), "see the agent log of pg1")}},
		{"stopped: read the final LSN", oldLeaderIn(at(StageQuiesce), stopped), Step{Kind: ReadFinalLSN, Stopped: true}},
		{"stopped, past the timeout: still read the final LSN", oldLeaderIn(at(StageQuiesce), stopped, expired), Step{Kind: ReadFinalLSN, Stopped: true}},
		{"final LSN read", oldLeaderIn(at(StageQuiesce), stopped, withFinal(Final{LSN: 0x5000028, State: "shut down"})), Step{Kind: FinishQuiesce, Stopped: true}},
		{"final LSN unreadable", oldLeaderIn(at(StageQuiesce), stopped, withFinal(Final{Err: errors.New("pg_controldata: exit 1")})),
			Step{Kind: FailBeforePromote, State: StateFailed, Stopped: true, Failure: failed("cannot read the final LSN: pg_controldata: exit 1", "")}},
		{"catch-up: poll the candidate", oldLeaderIn(at(StageCatchUp), stopped), Step{Kind: PollCatchUp}},
		{"catch-up after an agent restart: poll too", oldLeaderIn(at(StageCatchUp), Quiesce{}), Step{Kind: PollCatchUp}},
		{"candidate gone", oldLeaderIn(at(StageCatchUp), stopped, withCatch(CatchUp{})),
			Step{Kind: FailBeforePromote, State: StateFailed, Failure: failed("candidate pg2 disappeared during catch-up", "check the candidate's agent")}},
		{"candidate past the final LSN: hand over", oldLeaderIn(at(StageCatchUp), stopped, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x5000001})),
			Step{Kind: HandOver}},
		{"candidate past the final LSN after the timeout: still hand over", oldLeaderIn(at(StageCatchUp), stopped, expired, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x5000001})),
			Step{Kind: HandOver}},
		{"candidate at the final LSN: not past it yet", oldLeaderIn(at(StageCatchUp), stopped, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x5000000})),
			Step{Kind: Wait}},
		{"candidate unreachable: wait", oldLeaderIn(at(StageCatchUp), stopped, withCatch(CatchUp{InView: true})), Step{Kind: Wait}},
		{"candidate behind past the timeout", oldLeaderIn(at(StageCatchUp), stopped, expired, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x4000000})),
			Step{Kind: FailBeforePromote, State: StateFailed, Failure: failed("candidate pg2 did not catch up within 30s (replayed 0/4000000, final LSN 0/5000000)",
				"check the candidate's replication (pg_stat_wal_receiver) and retry")}},
		{"candidate unreachable past the timeout", oldLeaderIn(at(StageCatchUp), stopped, expired, withCatch(CatchUp{InView: true})),
			Step{Kind: FailBeforePromote, State: StateFailed, Failure: failed("candidate pg2 did not catch up within 30s (unreachable, final LSN 0/5000000)",
				"check the candidate's replication (pg_stat_wal_receiver) and retry")}},

		// New leader after the point of no return.
		{"promotion under way: still in recovery", newLeaderIn(at(StagePromote), func(in *Inputs) { in.PGInRecovery = true }), Step{Kind: Wait}},
		{"promotion under way: not running", newLeaderIn(at(StagePromote), func(in *Inputs) { in.PGRunning = false }), Step{Kind: Wait}},
		{"promoted", newLeaderIn(at(StagePromote)), Step{Kind: RecordPromotion}},
		{"repoint: every running replica streams", newLeaderIn(at(StageRepoint), streaming("pg3")), Step{Kind: FinishRepoint}},
		{"repoint: a stopped replica is not waited for", newLeaderIn(at(StageRepoint), func(in *Inputs) {
			in.View = cluster(map[string]string{"pg1": "stopped", "pg2": "running", "pg3": "stopped"})
		}), Step{Kind: FinishRepoint}},
		{"repoint: waiting for pg3", newLeaderIn(at(StageRepoint)), Step{Kind: Wait}},
		{"repoint: pg3 still missing past the timeout", newLeaderIn(at(StageRepoint), late), Step{Kind: FinishRepoint, Missing: []string{"pg3"}}},
		{"validation: probe a write", newLeaderIn(at(StageValidation)), Step{Kind: Validate}},
		{"validation passed", newLeaderIn(at(StageValidation), withProbe(nil), streaming("pg1", "pg3")), Step{Kind: FinishValidation}},
		{"validation: old leader not streaming yet", newLeaderIn(at(StageValidation), withProbe(nil), streaming("pg3")), Step{Kind: Wait}},
		{"validation: write failed", newLeaderIn(at(StageValidation), withProbe(errors.New("read-only")), streaming("pg1")), Step{Kind: Wait}},
		{"validation past the timeout: go on with warnings", newLeaderIn(at(StageValidation), late, withProbe(errors.New("read-only"))),
			Step{Kind: FinishValidation, Missing: []string{"pg1"}}},
		{"validation past the timeout, old leader streams", newLeaderIn(at(StageValidation), late, withProbe(errors.New("read-only")), streaming("pg1")),
			Step{Kind: FinishValidation}},
		{"cleanup", newLeaderIn(at(StageCleanup)), Step{Kind: Close, State: StateCompleted}},
		{"new leader at an unknown stage", newLeaderIn(at("SOMETHING_NEWER")), Step{Kind: Wait}},
		{"a record without a stage is past nothing: closed by its leader", oldLeaderIn(at(""), Quiesce{}),
			Step{Kind: Close, State: StateFailed, Failure: failed(
				"pg1 leads now, but the switchover pg1 → pg2 was at : its orchestrator stopped driving it (crash or lost lease) and an automatic election chose pg1",
				"the cluster has exactly one primary (pg1); see GET /decisions for the election; request a new switchover if still wanted")}},

		// Routing (docs/routing.md).
		{"routing: pause the poolers before the quiesce", oldLeaderIn(at(StagePreFlight), Quiesce{}, pausing), Step{Kind: PauseRouting}},
		{"routing: pause running", oldLeaderIn(at(StagePreFlight), Quiesce{}, pausing, busy), Step{Kind: Wait}},
		{"routing: paused, now quiesce", oldLeaderIn(at(StagePreFlight, paused), Quiesce{}, pausing), Step{Kind: StartQuiesce}},
		{"routing: pause failed: abort before the quiesce", oldLeaderIn(at(StagePreFlight, pauseFailed), Quiesce{}, pausing),
			Step{Kind: FailBeforePromote, State: StateFailed, Failure: failed(
				"routing: pgbouncer[0] PAUSE app: no answer within 1s; aborted before QUIESCE_WRITES, the old primary stays writable",
				"a long transaction holds PgBouncer's PAUSE: end it or raise routing.pgbouncer[].pause_timeout, then retry")}},
		{"routing: abort while the pause runs: wait for it first", oldLeaderIn(at(StagePreFlight, aborted), Quiesce{}, pausing, busy),
			Step{Kind: Wait, State: StateAborted, Failure: failed("aborted on request at PRE_FLIGHT_CHECKS", "")}},
		{"routing: no pause configured: quiesce at once", oldLeaderIn(at(StagePreFlight), Quiesce{}, repointing), Step{Kind: StartQuiesce}},
		{"routing: repoint not run yet", newLeaderIn(at(StageRepoint), repointing, streaming("pg3")), Step{Kind: RepointRouting}},
		{"routing: repoint running", newLeaderIn(at(StageRepoint), repointing, busy, streaming("pg3")), Step{Kind: Wait}},
		{"routing: repointed, replicas stream", newLeaderIn(at(StageRepoint, repointed(false)), repointing, streaming("pg3")), Step{Kind: FinishRepoint}},
		{"routing: a failed repoint is retried in cleanup", newLeaderIn(at(StageValidation, repointed(true)), repointing, withProbe(nil), streaming("pg1", "pg3")),
			Step{Kind: RetryRouting}},
		{"routing: the retry runs", newLeaderIn(at(StageValidation, repointed(true)), repointing, busy, withProbe(nil), streaming("pg1", "pg3")), Step{Kind: Wait}},
		{"routing: retried once, then done", newLeaderIn(at(StageValidation, repointed(true), retried), repointing, withProbe(nil), streaming("pg1", "pg3")),
			Step{Kind: FinishValidation}},
		{"routing: validation pending is not hurried by the retry", newLeaderIn(at(StageValidation, repointed(true)), repointing, withProbe(nil), streaming("pg3")),
			Step{Kind: Wait}},

		// A standby cluster (standby.go): a standby leader on both ends.
		{"standby: pre-flight done: stop the standby leader, no pause", oldLeaderIn(at(StagePreFlight, standbyRec), Quiesce{}, standbyIn, pausing), Step{Kind: StartQuiesce}},
		{"standby: candidate at the old leader's last position: hand over", oldLeaderIn(at(StageCatchUp, standbyRec), stopped, standbyIn, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x5000000})),
			Step{Kind: HandOver}},
		{"standby: candidate short of it: wait", oldLeaderIn(at(StageCatchUp, standbyRec), stopped, standbyIn, withCatch(CatchUp{InView: true, Reachable: true, Replayed: 0x4FFFFFF})),
			Step{Kind: Wait}},
		{"standby: new leader not running yet: wait", newLeaderIn(at(StagePromote, standbyRec), standbyIn, inRecovery, func(in *Inputs) { in.PGRunning = false }), Step{Kind: Wait}},
		{"standby: new standby leader in recovery holding the key: stage done", newLeaderIn(at(StagePromote, standbyRec), standbyIn, inRecovery), Step{Kind: RecordPromotion}},
		{"standby: new leader out of recovery is never recorded as taken over", newLeaderIn(at(StagePromote, standbyRec), standbyIn), Step{Kind: Wait}},
		{"standby: promote-cluster meanwhile: the promotion is waited for", newLeaderIn(at(StagePromote, standbyRec), inRecovery), Step{Kind: Wait}},
		{"standby: no routers to repoint", newLeaderIn(at(StageRepoint, standbyRec), standbyIn, inRecovery, repointing, streaming("pg3")), Step{Kind: FinishRepoint}},
		{"standby: validation without a write probe", newLeaderIn(at(StageValidation, standbyRec), standbyIn, inRecovery, streaming("pg1", "pg3")), Step{Kind: FinishValidation}},
		{"standby: validation waits for the old leader to stream", newLeaderIn(at(StageValidation, standbyRec), standbyIn, inRecovery, streaming("pg3")), Step{Kind: Wait}},
		{"standby: validation past the timeout goes on", newLeaderIn(at(StageValidation, standbyRec), standbyIn, inRecovery, late), Step{Kind: FinishValidation, Missing: []string{"pg1"}}},
		{"standby: a failed switchover restores the old leader (as the standby leader)", oldLeaderIn(at(StageCatchUp, standbyRec, aborted), stopped, standbyIn),
			Step{Kind: FailBeforePromote, State: StateAborted, Failure: failed("aborted on request at WAIT_FOR_REPLICATION_CATCHUP", "")}},

		// A leader in neither role: the driver is gone.
		{"candidate leads before the hand-over (automatic failover)", newLeaderIn(at(StageCatchUp)),
			Step{Kind: Close, State: StateFailed, Failure: failed(
				"pg2 leads now, but the switchover pg1 → pg2 was at WAIT_FOR_REPLICATION_CATCHUP: its orchestrator stopped driving it (crash or lost lease) and an automatic election chose pg2",
				"the cluster has exactly one primary (pg2); see GET /decisions for the election; request a new switchover if still wanted")}},
		{"old leader leads again after the hand-over", oldLeaderIn(at(StagePromote), Quiesce{}),
			Step{Kind: Close, State: StateFailed, Failure: failed(
				"pg1 leads now, but the switchover pg1 → pg2 was at PROMOTE_STANDBY: its orchestrator stopped driving it (crash or lost lease) and an automatic election chose pg1",
				"the cluster has exactly one primary (pg1); see GET /decisions for the election; request a new switchover if still wanted")}},
		{"a third member leads", oldLeaderIn(at(StageRepoint), Quiesce{}, func(in *Inputs) { in.Self = "pg3" }),
			Step{Kind: Close, State: StateFailed, Failure: failed(
				"pg3 leads now, but the switchover pg1 → pg2 was at REPOINT_CLIENT_TRAFFIC: its orchestrator stopped driving it (crash or lost lease) and an automatic election chose pg3",
				"the cluster has exactly one primary (pg3); see GET /decisions for the election; request a new switchover if still wanted")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Next(tt.in)
			if got.Reason == "" {
				t.Errorf("step %s without a reason", got.Kind)
			}
			if got.Failure != nil && got.Reason != got.Failure.Reason && got.Kind == FailBeforePromote {
				t.Errorf("reason %q, failure %q: a failure's step reason is the failure's", got.Reason, got.Failure.Reason)
			}
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextIsStableAcrossReads: a read step is asked for only while its
// fact is missing, so the agent's read-then-classify-again ends.
func TestNextIsStableAcrossReads(t *testing.T) {
	reads := map[StepKind]func(*Inputs){
		ReadFinalLSN: withFinal(Final{LSN: 1}),
		PollCatchUp:  withCatch(CatchUp{}),
		Validate:     withProbe(nil),
	}
	for _, in := range []Inputs{
		oldLeaderIn(at(StageQuiesce), stopped), oldLeaderIn(at(StageCatchUp), stopped), newLeaderIn(at(StageValidation)),
	} {
		first := Next(in)
		fill, ok := reads[first.Kind]
		if !ok {
			t.Fatalf("%s: step %s is not a read", in.Record.Stage, first.Kind)
		}
		fill(&in)
		if again := Next(in); again.Kind == first.Kind {
			t.Errorf("%s: %s asked for again once its fact was read", in.Record.Stage, first.Kind)
		}
	}
}

func TestRoleOf(t *testing.T) {
	for _, tt := range []struct {
		stage Stage
		self  string
		want  Role
	}{
		{StagePreFlight, "pg1", RoleOldLeader},
		{StageCatchUp, "pg1", RoleOldLeader},
		{StagePromote, "pg1", RoleNone},
		{StageCatchUp, "pg2", RoleNone},
		{StagePromote, "pg2", RoleNewLeader},
		{StageCleanup, "pg2", RoleNewLeader},
		{StageRepoint, "pg3", RoleNone},
	} {
		if got := RoleOf(at(tt.stage), tt.self); got != tt.want {
			t.Errorf("RoleOf(%s, %s) = %s, want %s", tt.stage, tt.self, got, tt.want)
		}
	}
}

// TestStepKindNames: every kind has a name (logged as the step).
func TestStepKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := Wait; k <= Close; k++ {
		name := k.String()
		if name == "" || seen[name] {
			t.Errorf("step kind %d named %q (empty or repeated)", k, name)
		}
		seen[name] = true
	}
}

func TestNotStreaming(t *testing.T) {
	v := cluster(map[string]string{"pg1": "running", "pg2": "running", "pg3": "running", "pg4": "starting", "pg5": "running"})
	if diff := cmp.Diff([]string{"pg5"}, NotStreaming(v, "pg2", "pg1", []string{"pg3"})); diff != "" {
		t.Errorf("NotStreaming (-want +got):\n%s", diff)
	}
	if got := NotStreaming(nil, "pg2", "pg1", nil); got != nil {
		t.Errorf("NotStreaming without a view = %v, want none", got)
	}
}

func TestRoleNames(t *testing.T) {
	if got := []string{RoleNone.String(), RoleOldLeader.String(), RoleNewLeader.String()}; !cmp.Equal(got, []string{"none", "old_leader", "new_leader"}) {
		t.Errorf("role names %v", got)
	}
}

// TestPolls: only a wait no etcd event ends is polled: the candidate's
// published replay position during catch-up, and the new leader's
// promotion and replicas after the point of no return.
func TestPolls(t *testing.T) {
	closed := func(r *Record) { r.State = StateCompleted }
	for _, tc := range []struct {
		name    string
		r       *Record
		self    string
		leading bool
		want    bool
	}{
		{"no switchover", nil, "pg2", false, false},
		{"candidate at catch-up", at(StageCatchUp), "pg2", false, true},
		{"candidate during quiesce", at(StageQuiesce), "pg2", false, true},
		{"candidate at pre-flight", at(StagePreFlight), "pg2", false, false},
		{"candidate before the key is released: the leader key's deletion wakes it", at(StagePromote), "pg2", false, false},
		{"bystander replica at catch-up", at(StageCatchUp), "pg3", false, false},
		{"old leader at catch-up: its quiesce polls", at(StageCatchUp), "pg1", true, false},
		{"new leader promoting", at(StagePromote), "pg2", true, true},
		{"new leader repointing", at(StageRepoint), "pg2", true, true},
		{"new leader validating", at(StageValidation), "pg2", true, true},
		{"new leader in cleanup", at(StageCleanup), "pg2", true, false},
		{"closed record", at(StageRepoint, closed), "pg2", true, false},
		{"leader outside the roles", at(StageRepoint), "pg3", true, false},
	} {
		if got := Polls(tc.r, tc.self, tc.leading); got != tc.want {
			t.Errorf("%s: Polls = %t, want %t", tc.name, got, tc.want)
		}
	}
}

// TestCaughtUp: a primary's candidate replays past the shutdown
// checkpoint's start; a standby leader's reaches the end of its WAL.
func TestCaughtUp(t *testing.T) {
	for _, tt := range []struct {
		name     string
		standby  bool
		replayed postgres.LSN
		want     bool
	}{
		{"primary: at the checkpoint record's start is not past it", false, 0x5000000, false},
		{"primary: past it", false, 0x5000001, true},
		{"primary: behind", false, 0x4FFFFFF, false},
		{"standby: at the old leader's last position", true, 0x5000000, true},
		{"standby: beyond it (the candidate also streamed from the remote's archive)", true, 0x5000100, true},
		{"standby: behind", true, 0x4FFFFFF, false},
	} {
		r := &Record{FinalLSN: 0x5000000, Standby: tt.standby}
		if got := r.CaughtUp(tt.replayed); got != tt.want {
			t.Errorf("%s: CaughtUp(%s) = %t, want %t", tt.name, tt.replayed, got, tt.want)
		}
	}
}

// TestFinalPosition: a primary's final LSN is its shutdown checkpoint; a
// standby leader's the furthest of its last read position and pg_control's
// minimum recovery ending location, and unknown when neither is.
func TestFinalPosition(t *testing.T) {
	cd := postgres.ControlData{State: "shut down in recovery", CheckpointLSN: 0x3000060, MinRecoveryEndLSN: 0x5000028}
	for _, tt := range []struct {
		name     string
		standby  bool
		cd       postgres.ControlData
		lastSeen postgres.LSN
		want     postgres.LSN
		err      error
	}{
		{"primary: the shutdown checkpoint", false, postgres.ControlData{State: "shut down", CheckpointLSN: 0x5000028}, 0, 0x5000028, nil},
		{"primary: a position read before the stop is ignored", false, postgres.ControlData{CheckpointLSN: 0x5000028}, 0x6000000, 0x5000028, nil},
		{"standby: the read position when further", true, cd, 0x5000100, 0x5000100, nil},
		{"standby: pg_control's when further (WAL replayed after the read)", true, cd, 0x4000000, 0x5000028, nil},
		{"standby: pg_control's alone when the read failed", true, cd, 0, 0x5000028, nil},
		{"standby: the read alone when pg_control has none", true, postgres.ControlData{State: "shut down in recovery"}, 0x5000100, 0x5000100, nil},
		{"standby: neither is known", true, postgres.ControlData{State: "shut down in recovery", CheckpointLSN: 0x3000060}, 0, 0, errNoStandbyPosition},
		{"standby: stopped in recovery after an immediate stop", true, postgres.ControlData{State: "in archive recovery", MinRecoveryEndLSN: 0x5000028}, 0x5000000, 0x5000028, nil},
		{"standby: it stopped as a primary (promote-cluster meanwhile)", true, postgres.ControlData{State: "shut down", CheckpointLSN: 0x6000028}, 0x6000000, 0, errLeftRecovery},
		{"standby: it crashed as a primary", true, postgres.ControlData{State: "in production", CheckpointLSN: 0x6000028}, 0x6000000, 0, errLeftRecovery},
	} {
		got, err := FinalPosition(tt.standby, tt.cd, tt.lastSeen)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: FinalPosition = %s, %v; want %s, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}
