package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
)

// The switchover stages, in order (DESIGN §5).
const (
	StagePreFlight  = "PRE_FLIGHT_CHECKS"
	StageQuiesce    = "QUIESCE_WRITES"
	StageCatchUp    = "WAIT_FOR_REPLICATION_CATCHUP"
	StagePromote    = "PROMOTE_STANDBY"
	StageRepoint    = "REPOINT_CLIENT_TRAFFIC"
	StageValidation = "POST_SWITCHOVER_VALIDATION"
	StageCleanup    = "CLEANUP"
)

// Stages lists the stages in order.
var Stages = []string{StagePreFlight, StageQuiesce, StageCatchUp, StagePromote, StageRepoint, StageValidation, StageCleanup}

// Switchover states.
const (
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
	StateAborted   = "aborted"
)

// SwitchoverRecord is the durable record of one switchover, kept in etcd
// at switchovers/<id>: the request, the current stage and state, and the
// append-only event list. Whoever drives the current stage appends to it
// with CAS writes, so a crashed driver leaves a record the next leader can
// resume or close.
type SwitchoverRecord struct {
	ID          string            `json:"id"`
	From        string            `json:"from"`
	To          string            `json:"to"`
	Reason      string            `json:"reason,omitempty"`
	RequestedBy string            `json:"requested_by,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	Timeout     string            `json:"timeout"`
	Stage       string            `json:"stage"`
	State       string            `json:"state"`
	Events      []SwitchoverEvent `json:"events"`
	Failure     *Failure          `json:"failure,omitempty"`
	// AbortRequested is set by DELETE /switchover/<id>; honoured before
	// PROMOTE_STANDBY only.
	AbortRequested bool `json:"abort_requested,omitempty"`
	// FinalLSN is the old primary's shutdown checkpoint: the candidate must
	// have received and replayed past it before it may promote.
	FinalLSN uint64 `json:"final_lsn,omitempty"`
	// PreflightLagBytes is the candidate's lag when the checks ran.
	PreflightLagBytes int64 `json:"preflight_lag_bytes,omitempty"`
}

// SwitchoverEvent is one entry of the record's event list.
type SwitchoverEvent struct {
	Seq        int       `json:"seq"`
	Stage      string    `json:"stage"`
	Kind       string    `json:"kind"` // started, completed, warning, failed, info
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
func (r *SwitchoverRecord) Terminal() bool { return r.State != StateRunning }

// timeout is the bound of QUIESCE_WRITES + WAIT_FOR_REPLICATION_CATCHUP.
func (r *SwitchoverRecord) timeout() time.Duration {
	d, err := time.ParseDuration(r.Timeout)
	if err != nil || d <= 0 {
		return config.DefaultSwitchoverTimeout
	}
	return d
}

// stageIndex orders stages; unknown stages sort last.
func stageIndex(stage string) int {
	for i, s := range Stages {
		if s == stage {
			return i
		}
	}
	return len(Stages)
}

// pastPointOfNoReturn: from PROMOTE_STANDBY on the machine only goes forward.
func (r *SwitchoverRecord) pastPointOfNoReturn() bool {
	return stageIndex(r.Stage) >= stageIndex(StagePromote)
}

// event appends an event; a completed event carries the stage's duration.
func (r *SwitchoverRecord) event(stage, kind, format string, args ...any) {
	now := time.Now().UTC()
	e := SwitchoverEvent{Seq: len(r.Events) + 1, Stage: stage, Kind: kind, At: now, Message: fmt.Sprintf(format, args...)}
	if kind == "completed" || kind == "failed" {
		for i := len(r.Events) - 1; i >= 0; i-- {
			if r.Events[i].Stage == stage && r.Events[i].Kind == "started" {
				e.DurationMs = now.Sub(r.Events[i].At).Milliseconds()
				break
			}
		}
	}
	r.Events = append(r.Events, e)
	if kind == "started" {
		r.Stage = stage
	}
}

// startedStage reports whether the stage has a started event.
func (r *SwitchoverRecord) startedStage(stage string) (time.Time, bool) {
	for _, e := range r.Events {
		if e.Stage == stage && e.Kind == "started" {
			return e.At, true
		}
	}
	return time.Time{}, false
}

func newSwitchoverID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405-") + hex.EncodeToString(b[:])
}

// errRecordGone: the record was deleted under us.
var errRecordGone = errors.New("switchover record not found")

// readRecord reads a record fresh from etcd with its revision.
func (a *Agent) readRecord(ctx context.Context, id string) (*SwitchoverRecord, int64, error) {
	v, ok, err := a.dcs.Get(ctx, a.dcs.Keys().Switchover(id))
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, errRecordGone
	}
	var r SwitchoverRecord
	if err := json.Unmarshal(v.Data, &r); err != nil {
		return nil, 0, fmt.Errorf("switchover record %s: %w", id, err)
	}
	return &r, v.ModRevision, nil
}

// updateRecord applies change to the record with a CAS write, re-reading
// and retrying when another writer (an abort request) got there first.
func (a *Agent) updateRecord(ctx context.Context, id string, change func(*SwitchoverRecord) error) (*SwitchoverRecord, error) {
	for attempt := 0; attempt < 5; attempt++ {
		r, rev, err := a.readRecord(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(r); err != nil {
			return r, err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if _, err := a.dcs.CAS(ctx, a.dcs.Keys().Switchover(id), data, rev); err == nil {
			return r, nil
		} else if !errors.Is(err, dcs.ErrConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("switchover record %s: too many concurrent updates", id)
}

// activeSwitchover returns the running record named by the lock key in the
// cached view, or nil.
func activeSwitchover(v *dcs.Cluster) *SwitchoverRecord {
	if v == nil {
		return nil
	}
	lock, ok := v.Extra["switchover"]
	if !ok {
		return nil
	}
	raw, ok := v.Extra["switchovers/"+string(lock.Data)]
	if !ok {
		return nil
	}
	var r SwitchoverRecord
	if json.Unmarshal(raw.Data, &r) != nil || r.Terminal() {
		return nil
	}
	return &r
}
