package switchover

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/boundedlog"
)

// Stage is one step of the switchover machine; its value is the name kept
// in the record and shown to operators.
type Stage string

// The switchover stages, in order (DESIGN §5).
const (
	StagePreFlight  Stage = "PRE_FLIGHT_CHECKS"
	StageQuiesce    Stage = "QUIESCE_WRITES"
	StageCatchUp    Stage = "WAIT_FOR_REPLICATION_CATCHUP"
	StagePromote    Stage = "PROMOTE_STANDBY"
	StageRepoint    Stage = "REPOINT_CLIENT_TRAFFIC"
	StageValidation Stage = "POST_SWITCHOVER_VALIDATION"
	StageCleanup    Stage = "CLEANUP"
)

// Stages lists the stages in order.
var Stages = []Stage{StagePreFlight, StageQuiesce, StageCatchUp, StagePromote, StageRepoint, StageValidation, StageCleanup}

// StageNames returns the stage names in order, for renderers that key on
// the JSON strings.
func StageNames() []string {
	names := make([]string, len(Stages))
	for i, s := range Stages {
		names[i] = string(s)
	}
	return names
}

// index orders stages; unknown stages sort last.
func (s Stage) index() int {
	for i, st := range Stages {
		if st == s {
			return i
		}
	}
	return len(Stages)
}

// State is a switchover's outcome so far.
type State string

// Switchover states.
const (
	StateRunning   State = "running"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateAborted   State = "aborted"
)

// Kind is an event's kind.
type Kind string

// Event kinds.
const (
	KindStarted   Kind = "started"
	KindCompleted Kind = "completed"
	KindWarning   Kind = "warning"
	KindFailed    Kind = "failed"
	KindInfo      Kind = "info"
)

// Record is the durable record of one switchover, kept in etcd at
// switchovers/<id>: the request, the current stage and state, and the
// append-only event list. Whoever drives the current stage appends to it
// with CAS writes (Update), so a crashed driver leaves a record the next
// leader can resume or close.
type Record struct {
	ID          string    `json:"id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Reason      string    `json:"reason,omitempty"`
	RequestedBy string    `json:"requested_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Timeout     string    `json:"timeout"`
	Stage       Stage     `json:"stage"`
	State       State     `json:"state"`
	Events      []Event   `json:"events"`
	Failure     *Failure  `json:"failure,omitempty"`
	// AbortRequested is set by DELETE /switchover/<id>; honoured before
	// PROMOTE_STANDBY only.
	AbortRequested bool `json:"abort_requested,omitempty"`
	// FinalLSN is the old primary's shutdown checkpoint: the candidate must
	// have received and replayed past it before it may promote. In a
	// standby cluster's switchover (Standby) it is the old standby
	// leader's last received or replayed position, the end of the WAL it
	// had: the candidate must have replayed up to it (CaughtUp).
	FinalLSN uint64 `json:"final_lsn,omitempty"`
	// Standby: the switchover of a standby cluster (standby_cluster set
	// when it started): the old leader is a standby leader, the candidate
	// takes the key as the new standby leader and stays in recovery
	// (docs/disaster-recovery.md).
	Standby bool `json:"standby_cluster,omitempty"`
	// PreflightLagBytes is the candidate's lag when the checks ran.
	PreflightLagBytes int64 `json:"preflight_lag_bytes,omitempty"`
	// Routing is the routers' part (docs/routing.md); nil until routing
	// acted.
	Routing *RoutingState `json:"routing,omitempty"`
}

// RoutingState records what the routers were told, so whichever agent
// drives the next step knows what to undo or retry.
type RoutingState struct {
	// Paused: every pooler paused before QUIESCE_WRITES.
	Paused bool `json:"paused,omitempty"`
	// PauseFailed says why the pause failed (the switchover aborts).
	PauseFailed string `json:"pause_failed,omitempty"`
	// Repointed: the repoint ran after the promotion; Retry: some of its
	// actions failed, to run again in CLEANUP (Retried once it did).
	Repointed bool `json:"repointed,omitempty"`
	Retry     bool `json:"retry,omitempty"`
	Retried   bool `json:"retried,omitempty"`
}

// RoutingState returns the record's routing state (zero when none).
func (r *Record) RoutingState() RoutingState {
	if r.Routing == nil {
		return RoutingState{}
	}
	return *r.Routing
}

// UpdateRouting changes the record's routing state.
func (r *Record) UpdateRouting(change func(*RoutingState)) {
	if r.Routing == nil {
		r.Routing = &RoutingState{}
	}
	change(r.Routing)
}

// Event is one entry of the record's event list.
type Event struct {
	Seq        int       `json:"seq"`
	Stage      Stage     `json:"stage"`
	Kind       Kind      `json:"kind"`
	At         time.Time `json:"at"`
	DurationMs int64     `json:"duration_ms,omitempty"`
	Message    string    `json:"message,omitempty"`
}

// Failure says why a switchover failed and what the operator can do.
type Failure struct {
	Reason string `json:"reason"`
	Hint   string `json:"hint,omitempty"`
}

// Terminal reports a finished switchover.
func (r *Record) Terminal() bool { return r.State != StateRunning }

// TimeoutOr is the bound of QUIESCE_WRITES + WAIT_FOR_REPLICATION_CATCHUP
// (and of each later stage), or fallback when the record's is unusable.
func (r *Record) TimeoutOr(fallback time.Duration) time.Duration {
	d, err := time.ParseDuration(r.Timeout)
	if err != nil || d <= 0 {
		return fallback
	}
	return d
}

// PastPointOfNoReturn: from PROMOTE_STANDBY on the machine only goes
// forward (no abort, no restore of the old primary).
func (r *Record) PastPointOfNoReturn() bool {
	return r.Stage.index() >= StagePromote.index()
}

// Append adds an event stamped with the wall clock (events are read by
// people and other hosts; timeouts never compare them, see Clock).
func (r *Record) Append(stage Stage, kind Kind, format string, args ...any) {
	r.AppendAt(time.Now().UTC(), stage, kind, format, args...)
}

// AppendAt adds an event at the given time; a completed or failed event
// carries the time since the stage's started event, and a started event
// moves the record to its stage.
func (r *Record) AppendAt(at time.Time, stage Stage, kind Kind, format string, args ...any) {
	e := Event{Seq: len(r.Events) + 1, Stage: stage, Kind: kind, At: at, Message: fmt.Sprintf(format, args...)}
	if kind == KindCompleted || kind == KindFailed {
		for i := len(r.Events) - 1; i >= 0; i-- {
			if r.Events[i].Stage == stage && r.Events[i].Kind == KindStarted {
				e.DurationMs = at.Sub(r.Events[i].At).Milliseconds()
				break
			}
		}
	}
	r.Events = append(r.Events, e)
	if kind == KindStarted {
		r.Stage = stage
	}
}

// AppendTimed adds an event for an action that took took (a routing
// call): its duration is the action's, not the stage's, and it does not
// move the record to stage.
func (r *Record) AppendTimed(stage Stage, kind Kind, took time.Duration, format string, args ...any) {
	r.Events = append(r.Events, Event{Seq: len(r.Events) + 1, Stage: stage, Kind: kind, At: time.Now().UTC(),
		DurationMs: took.Milliseconds(), Message: fmt.Sprintf(format, args...)})
}

// StartedAt returns the time of the stage's (first) started event.
func (r *Record) StartedAt(stage Stage) (time.Time, bool) {
	for _, e := range r.Events {
		if e.Stage == stage && e.Kind == KindStarted {
			return e.At, true
		}
	}
	return time.Time{}, false
}

// CompletedAt returns the time of the stage's last completed event.
func (r *Record) CompletedAt(stage Stage) (time.Time, bool) {
	var at time.Time
	found := false
	for _, e := range r.Events {
		if e.Stage == stage && e.Kind == KindCompleted {
			at, found = e.At, true
		}
	}
	return at, found
}

// NewID returns a fresh record id: the creation time (so ids sort oldest
// first, which the bounded log relies on) and a random suffix.
func NewID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405-") + hex.EncodeToString(b[:])
}

// Decode parses a record's JSON.
func Decode(data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("switchover record: %w", err)
	}
	return &r, nil
}

// The view's names of the lock key and the records (relative to the
// cluster prefix, as in dcs.Cluster.Extra).
const (
	lockName      = "switchover"
	recordsPrefix = "switchovers/"
)

// Active returns the running record named by the lock key in the view,
// or nil (no lock, no record, a finished or unreadable one).
func Active(v *dcs.Cluster) *Record {
	if v == nil {
		return nil
	}
	lock, ok := v.Extra[lockName]
	if !ok {
		return nil
	}
	raw, ok := v.Extra[recordsPrefix+string(lock.Data)]
	if !ok {
		return nil
	}
	r, err := Decode(raw.Data)
	if err != nil || r.Terminal() {
		return nil
	}
	return r
}

// Written is a record as this agent last wrote it: its JSON and the
// ModRevision of that write.
type Written struct {
	ID   string
	Rev  int64
	Data []byte
}

// ActiveAfter is Active, unless this agent's own write w of the same
// record is newer than the view's copy (the watch has not delivered it
// yet): then w's record, or nil once w finished it. The event-driven ticks
// of a switchover come milliseconds apart, often before the watch catches
// up; a step decided on the older copy would be repeated (a second
// quiesce: a second checkpoint and stop, a second "started" event).
func ActiveAfter(v *dcs.Cluster, w Written) *Record {
	if v == nil || w.ID == "" {
		return Active(v)
	}
	lock, ok := v.Extra[lockName]
	if !ok || string(lock.Data) != w.ID {
		return Active(v)
	}
	if raw, ok := v.Extra[recordsPrefix+w.ID]; ok && raw.ModRevision >= w.Rev {
		return Active(v)
	}
	r, err := Decode(w.Data)
	if err != nil || r.Terminal() {
		return nil
	}
	return r
}

// ActiveID returns the id of the running switchover in the view, or "".
func ActiveID(v *dcs.Cluster) string {
	if r := Active(v); r != nil {
		return r.ID
	}
	return ""
}

// IDs returns the ids of the records in the view, oldest first.
func IDs(v *dcs.Cluster) []string {
	if v == nil {
		return nil
	}
	return boundedlog.Names(v.Extra, recordsPrefix)
}

// RecordData returns a record's JSON as the view holds it.
func RecordData(v *dcs.Cluster, id string) ([]byte, bool) {
	if v == nil {
		return nil, false
	}
	raw, ok := v.Extra[recordsPrefix+id]
	return raw.Data, ok
}
