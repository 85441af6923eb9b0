package switchover

import (
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// Role is an agent's part in a switchover.
type Role int

const (
	// RoleNone: neither the old leader before the point of no return nor
	// the new leader after it. A leader in this role found the switchover
	// without its driver (a crash, a lost lease, an automatic election).
	RoleNone Role = iota
	// RoleOldLeader drives PRE_FLIGHT_CHECKS to PROMOTE_STANDBY.
	RoleOldLeader
	// RoleNewLeader drives PROMOTE_STANDBY to CLEANUP.
	RoleNewLeader
)

func (r Role) String() string {
	return [...]string{"none", "old_leader", "new_leader"}[r]
}

// RoleOf is self's part in the switchover r.
func RoleOf(r *Record, self string) Role {
	switch {
	case r.From == self && !r.PastPointOfNoReturn():
		return RoleOldLeader
	case r.To == self && r.PastPointOfNoReturn():
		return RoleNewLeader
	}
	return RoleNone
}

// StepKind is what the agent does next with a switchover.
type StepKind int

const (
	// Wait: nothing to do this tick.
	Wait StepKind = iota
	// RestorePrimary: the record is gone while this leader is quiesced;
	// start PostgreSQL again as the primary — in a standby cluster as the
	// standby leader, in recovery (never stay quiesced).
	RestorePrimary
	// StartQuiesce: /primary turns 503, checkpoint, fast stop in the
	// background; the record enters QUIESCE_WRITES.
	StartQuiesce
	// ReadFinalLSN: the stop ended; read the shutdown checkpoint from the
	// control data, then call Next again with Inputs.Final set.
	ReadFinalLSN
	// FinishQuiesce: record the final LSN and enter
	// WAIT_FOR_REPLICATION_CATCHUP.
	FinishQuiesce
	// PollCatchUp: read the candidate's replay position, then call Next
	// again with Inputs.CatchUp set.
	PollCatchUp
	// HandOver: the candidate caught up with the final LSN
	// (Record.CaughtUp); enter PROMOTE_STANDBY, name it in the failover
	// key and release the leader key.
	HandOver
	// AwaitStop: the switchover must end before the promotion, but the
	// background stop is still running: wait for it (the loop keeps
	// renewing), then FailBeforePromote.
	AwaitStop
	// FailBeforePromote: restore this leader as the primary, clear the
	// failover key and close the record with Step.State and Step.Failure.
	FailBeforePromote
	// RecordPromotion: the new leader is out of recovery; PROMOTE_STANDBY
	// is done and REPOINT_CLIENT_TRAFFIC starts.
	RecordPromotion
	// FinishRepoint: the replicas stream from the new leader (or the stage
	// timed out: Step.Missing are the ones that do not); validation starts.
	FinishRepoint
	// Validate: probe a write on the new leader, then call Next again with
	// Inputs.Probe set.
	Validate
	// FinishValidation: record the validation (Step.Missing holds the old
	// leader when it does not stream yet) and close the record completed.
	FinishValidation
	// Close: close the record with Step.State (and Step.Failure) and
	// release the lock.
	Close
	// PauseRouting: pause the poolers (routing.PointPause) beside the
	// loop before QUIESCE_WRITES; its outcome lands in Record.Routing.
	PauseRouting
	// RepointRouting: point the routers at the new leader
	// (routing.PointRepoint) beside the loop; the agent starts it the
	// moment it promotes, and Next asks again if that did not happen.
	RepointRouting
	// RetryRouting: repeat the repoint whose actions failed, in CLEANUP.
	RetryRouting
)

func (k StepKind) String() string {
	return [...]string{"wait", "restore_primary", "start_quiesce", "read_final_lsn", "finish_quiesce", "poll_catch_up", "hand_over",
		"await_stop", "fail_before_promote", "record_promotion", "finish_repoint", "validate", "finish_validation", "close",
		"pause_routing", "repoint_routing", "retry_routing"}[k]
}

// Inputs is what Next needs, observed by the agent at one instant.
type Inputs struct {
	// Record is the running switchover from the view (nil when none).
	Record *Record
	// Self is this agent's member name.
	Self string
	// Leading: this agent holds the leader key.
	Leading bool
	// Timeout is the record's timeout (Record.TimeoutOr).
	Timeout time.Duration
	// Elapsed and InStage are Clock.Observe's readings: how long this
	// agent has seen the switchover, and its current stage.
	Elapsed, InStage time.Duration
	// Quiesce is this agent's own quiesce (its background stop).
	Quiesce Quiesce
	// PGRunning and PGInRecovery are the local PostgreSQL's state.
	PGRunning, PGInRecovery bool
	// Standby: the dynamic config makes this a standby cluster now. Its
	// leader is a standby leader, in recovery (standby.go): no routers to
	// pause or repoint, no promotion to wait for, no write to probe.
	Standby bool
	// View is the cluster view the record came from (members' states).
	View *dcs.Cluster
	// Streaming lists the members streaming from this agent's PostgreSQL.
	Streaming []string
	// Final is the old leader's shutdown checkpoint; nil until
	// ReadFinalLSN read it.
	Final *Final
	// CatchUp is the candidate's position; nil until PollCatchUp read it.
	CatchUp *CatchUp
	// Probe is the new leader's write probe; nil until Validate ran it.
	Probe *Probe
	// Routing is this agent's routing configuration and work.
	Routing Routing
}

// Routing is what Next knows of the routers (docs/routing.md).
type Routing struct {
	// Pause: routing.PointPause has actions (poolers or a pause hook).
	Pause bool
	// Repoint: routing.PointRepoint has actions.
	Repoint bool
	// Busy: routing work runs beside the loop right now.
	Busy bool
}

// Quiesce is the old leader's local part of a switchover: PostgreSQL
// being (or having been) stopped on purpose while the lease is held.
type Quiesce struct {
	// Active: a quiesce is under way; ID is its switchover.
	Active bool
	ID     string
	// Stopped: its background stop has ended, with StopErr.
	Stopped bool
	StopErr error
}

// settled: no background stop is running.
func (q Quiesce) settled() bool { return !q.Active || q.Stopped }

// Final is the old leader's control data after its stop.
type Final struct {
	LSN postgres.LSN
	// State is the cluster state pg_control reports ("shut down", …).
	State string
	Err   error
}

// CatchUp is the candidate as the old leader reads it during catch-up.
type CatchUp struct {
	// InView: the candidate still has a member key.
	InView bool
	// Reachable: it answered GET /patroni; Replayed is its replay LSN.
	Reachable bool
	Replayed  postgres.LSN
}

// Probe is the new leader's write probe result.
type Probe struct {
	Err error
}

// Step is what to do next, with why.
type Step struct {
	Kind   StepKind
	Reason string
	// State and Failure are the outcome for FailBeforePromote, AwaitStop
	// and Close (Failure nil when completed).
	State   State
	Failure *Failure
	// Missing: FinishRepoint's and FinishValidation's members that do not
	// stream from the new leader yet.
	Missing []string
	// Stopped: the quiesce's stop has ended, so PostgreSQL counts as
	// stopped (every step once the stop ended during QUIESCE_WRITES).
	Stopped bool
}

// Next classifies what this agent does next with the switchover; it does
// no I/O and reads no clock (Inputs carries the readings). The leader
// drives: the old one up to PROMOTE_STANDBY, the new one after it; a
// leader in neither role closes the switchover failed.
func Next(in Inputs) Step {
	r := in.Record
	if r == nil {
		switch {
		case !in.Quiesce.Active:
			return Step{Kind: Wait, Reason: "no switchover running"}
		case in.Quiesce.settled():
			return Step{Kind: RestorePrimary, Reason: "switchover record gone while quiesced; restoring the primary"}
		}
		return Step{Kind: Wait, Reason: "switchover record gone while quiesced; waiting for the stop to end"}
	}
	if !in.Leading {
		return Step{Kind: Wait, Reason: "not leading: the leader drives the switchover"}
	}
	if in.Standby {
		// A standby cluster takes no writes: nothing for the routers to
		// hold or move (docs/routing.md follows the primary).
		in.Routing.Pause, in.Routing.Repoint = false, false
	}
	switch RoleOf(r, in.Self) {
	case RoleOldLeader:
		return oldLeader(in)
	case RoleNewLeader:
		return newLeader(in)
	}
	return Step{Kind: Close, State: StateFailed, Failure: &Failure{
		Reason: fmt.Sprintf("%s leads now, but the switchover %s → %s was at %s: its orchestrator stopped driving it (crash or lost lease) and an automatic election chose %s", in.Self, r.From, r.To, r.Stage, in.Self),
		Hint:   "the cluster has exactly one primary (" + in.Self + "); see GET /decisions for the election; request a new switchover if still wanted",
	}, Reason: "leading outside the switchover's roles"}
}

// oldLeader: PRE_FLIGHT_CHECKS → QUIESCE_WRITES → catch-up → hand over.
func oldLeader(in Inputs) Step {
	r := in.Record
	expired := in.Elapsed > in.Timeout
	switch {
	case r.AbortRequested:
		return failBeforePromote(in, StateAborted, "aborted on request at "+string(r.Stage), "")
	case r.Stage == StagePreFlight:
		return preQuiesce(in)
	case r.Stage == StageQuiesce:
		return quiesce(in, expired)
	}
	// WAIT_FOR_REPLICATION_CATCHUP: the only stage left before the point of
	// no return (RoleOf).
	return catchUp(in, expired)
}

// preQuiesce: the poolers pause before the old primary is fenced, so the
// transactions they hold never see it stop. A pause that fails or times
// out ends the switchover here: nothing has changed yet and the old
// primary is still writable.
func preQuiesce(in Inputs) Step {
	rs := in.Record.RoutingState()
	switch {
	case in.Standby:
		return Step{Kind: StartQuiesce, Reason: "pre-flight passed: stopping the standby leader (it takes no writes)"}
	case !in.Routing.Pause || rs.Paused:
		return Step{Kind: StartQuiesce, Reason: "pre-flight passed: fencing writes"}
	case in.Routing.Busy:
		return Step{Kind: Wait, Reason: "routing: pausing the poolers"}
	case rs.PauseFailed != "":
		return failBeforePromote(in, StateFailed, "routing: "+rs.PauseFailed+"; aborted before QUIESCE_WRITES, the old primary stays writable",
			"a long transaction holds PgBouncer's PAUSE: end it or raise routing.pgbouncer[].pause_timeout, then retry")
	}
	return Step{Kind: PauseRouting, Reason: "pre-flight passed: pausing the poolers before fencing writes"}
}

func quiesce(in Inputs, expired bool) Step {
	r, q := in.Record, in.Quiesce
	switch {
	case !q.Active || q.ID != r.ID:
		// This agent restarted mid-switchover: it cannot vouch for the stop.
		return failBeforePromote(in, StateFailed, "the old primary's agent restarted during QUIESCE_WRITES", "request the switchover again")
	case !q.Stopped && expired:
		return failBeforePromote(in, StateFailed, "the old primary did not stop within "+r.Timeout, "look for long transactions or a slow archive_command; raise the timeout")
	case !q.Stopped:
		return Step{Kind: Wait, Reason: "waiting for the old primary to stop"}
	}
	s := afterStop(in)
	s.Stopped = true
	return s
}

// afterStop: the old leader's stop ended; read and record the final LSN.
func afterStop(in Inputs) Step {
	switch f := in.Final; {
	case in.Quiesce.StopErr != nil:
		return failBeforePromote(in, StateFailed, "stopping the old primary failed: "+in.Quiesce.StopErr.Error(), "see the agent log of "+in.Self)
	case f == nil:
		return Step{Kind: ReadFinalLSN, Reason: "the old primary stopped; reading its final LSN"}
	case f.Err != nil:
		return failBeforePromote(in, StateFailed, "cannot read the final LSN: "+f.Err.Error(), "")
	default:
		return Step{Kind: FinishQuiesce, Reason: fmt.Sprintf("the old primary stopped at %s (%s)", f.LSN, f.State)}
	}
}

func catchUp(in Inputs, expired bool) Step {
	r, c := in.Record, in.CatchUp
	switch {
	case c == nil:
		return Step{Kind: PollCatchUp, Reason: "reading " + r.To + "'s replay position"}
	case !c.InView:
		return failBeforePromote(in, StateFailed, "candidate "+r.To+" disappeared during catch-up", "check the candidate's agent")
	case c.Reachable && r.CaughtUp(c.Replayed):
		return Step{Kind: HandOver, Reason: fmt.Sprintf("%s replayed %s, caught up with the final LSN %s", r.To, c.Replayed, postgres.LSN(r.FinalLSN))}
	}
	got := "unreachable"
	if c.Reachable {
		got = "replayed " + c.Replayed.String()
	}
	if expired {
		return failBeforePromote(in, StateFailed, fmt.Sprintf("candidate %s did not catch up within %s (%s, final LSN %s)", r.To, r.Timeout, got, postgres.LSN(r.FinalLSN)),
			"check the candidate's replication (pg_stat_wal_receiver) and retry")
	}
	return Step{Kind: Wait, Reason: fmt.Sprintf("candidate %s %s, final LSN %s", r.To, got, postgres.LSN(r.FinalLSN))}
}

// failBeforePromote ends the switchover before the point of no return;
// while the background stop still runs it waits for it (blocking would
// let the lease lapse and turn an abort into a failover).
func failBeforePromote(in Inputs, state State, reason, hint string) Step {
	f := &Failure{Reason: reason, Hint: hint}
	if in.Routing.Busy {
		// A PAUSE still in flight would land after the restore's RESUME.
		return Step{Kind: Wait, State: state, Failure: f, Reason: "waiting for the routing work to end before restoring: " + reason}
	}
	if !in.Quiesce.settled() {
		return Step{Kind: AwaitStop, State: state, Failure: f, Reason: "waiting for the old primary's stop to finish before restoring it: " + reason}
	}
	return Step{Kind: FailBeforePromote, State: state, Failure: f, Reason: reason}
}

// newLeader: PROMOTE_STANDBY → REPOINT_CLIENT_TRAFFIC → validation → CLEANUP.
// In a standby cluster the new leader is a standby leader: the stage
// completes once it runs in recovery holding the key (never out of it).
func newLeader(in Inputs) Step {
	r := in.Record
	switch {
	case in.Standby && !in.PGRunning:
		return Step{Kind: Wait, Reason: "taking over as the standby leader: PostgreSQL is not running"}
	case in.Standby && !in.PGInRecovery:
		// Never expected (every standby-cluster path starts in recovery):
		// the loop demotes it (decideStandbyLeader); the record waits.
		return Step{Kind: Wait, Reason: "standby cluster, but PostgreSQL is out of recovery; waiting for the loop to demote it"}
	case !in.Standby && (!in.PGRunning || in.PGInRecovery):
		return Step{Kind: Wait, Reason: "promotion still under way"}
	}
	late := in.InStage > in.Timeout
	switch r.Stage {
	case StagePromote:
		if in.Standby {
			return Step{Kind: RecordPromotion, Reason: in.Self + " holds the key as the standby leader, in recovery"}
		}
		return Step{Kind: RecordPromotion, Reason: in.Self + " is out of recovery"}
	case StageRepoint:
		if rs := r.RoutingState(); in.Routing.Repoint && !rs.Repointed {
			if in.Routing.Busy {
				return Step{Kind: Wait, Reason: "routing: repointing the routers to " + in.Self}
			}
			return Step{Kind: RepointRouting, Reason: "routing: pointing the routers at " + in.Self}
		}
		missing := NotStreaming(in.View, in.Self, r.From, in.Streaming)
		if len(missing) == 0 {
			return Step{Kind: FinishRepoint, Reason: "every running replica streams from " + in.Self}
		}
		if !late {
			return Step{Kind: Wait, Reason: fmt.Sprintf("waiting for %v to stream from %s", missing, in.Self)}
		}
		return Step{Kind: FinishRepoint, Missing: missing, Reason: fmt.Sprintf("%v not streaming after %s; going on", missing, r.Timeout)}
	case StageValidation:
		s := validation(in, late)
		if rs := r.RoutingState(); s.Kind == FinishValidation && rs.Retry && !rs.Retried {
			if in.Routing.Busy {
				return Step{Kind: Wait, Reason: "routing: waiting for the routing work to end before the retry"}
			}
			return Step{Kind: RetryRouting, Reason: "routing: retrying the repoint actions that failed"}
		}
		return s
	case StageCleanup:
		return Step{Kind: Close, State: StateCompleted, Reason: "cleanup"}
	}
	return Step{Kind: Wait, Reason: "no new-leader step at " + string(r.Stage)}
}

// validation: a write probe on a primary; a standby leader takes no
// writes, so there only the old leader streaming from it is checked.
func validation(in Inputs, late bool) Step {
	r := in.Record
	if in.Probe == nil && !in.Standby {
		return Step{Kind: Validate, Reason: "probing a write on " + in.Self}
	}
	var missing []string
	if !slices.Contains(in.Streaming, r.From) {
		missing = []string{r.From}
	}
	var probeErr error
	if in.Probe != nil {
		probeErr = in.Probe.Err
	}
	switch {
	case in.Standby && missing == nil:
		return Step{Kind: FinishValidation, Reason: r.From + " streams from the standby leader " + in.Self}
	case !in.Standby && probeErr == nil && missing == nil:
		return Step{Kind: FinishValidation, Reason: "a write succeeded and " + r.From + " streams from " + in.Self}
	case !late:
		return Step{Kind: Wait, Reason: fmt.Sprintf("validation pending (write probe: %v, %s streaming: %t)", probeErr, r.From, missing == nil)}
	}
	return Step{Kind: FinishValidation, Missing: missing, Reason: "validation timed out after " + r.Timeout + "; going on with warnings"}
}

// NotStreaming lists the running members of v (other than self and skip)
// that are not among streaming.
func NotStreaming(v *dcs.Cluster, self, skip string, streaming []string) []string {
	if v == nil {
		return nil
	}
	var missing []string
	for _, name := range v.MemberNames() {
		if name == self || name == skip || v.Members[name].State != "running" {
			continue
		}
		if !slices.Contains(streaming, name) {
			missing = append(missing, name)
		}
	}
	return missing
}

// Polls reports whether self, in the switchover r, waits on a fact no
// etcd event reports, so its loop must look again within a short poll
// rather than at the next loop_wait tick (docs/architecture.md,
// "Event-driven hand-overs"):
//   - the candidate during quiesce and catch-up: the old leader reads its
//     replay position from its published status (GET /patroni), which is
//     only as fresh as its last tick, the moment its stop has ended;
//   - the new leader after the point of no return: its promotion ending
//     and the replicas streaming from it are PostgreSQL states, not etcd
//     changes.
//
// The old leader's own waits need no poll here: its stop's end wakes its
// loop, its record updates come back as watch events, and its catch-up
// poll follows its quiesce. A poll only shortens a wait; the loop still
// does every step.
func Polls(r *Record, self string, leading bool) bool {
	if r == nil || r.Terminal() {
		return false
	}
	switch {
	case !leading:
		return r.To == self && (r.Stage == StageQuiesce || r.Stage == StageCatchUp)
	case RoleOf(r, self) == RoleNewLeader:
		return r.Stage != StageCleanup
	}
	return false
}
