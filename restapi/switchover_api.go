package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Switchovers is what the switchover endpoints need from the agent. The
// switchover itself runs in the agents' HA loops from its record in etcd;
// these calls only start, read, abort or watch it. Every method honours ctx.
type Switchovers interface {
	// StartSwitchover runs the pre-flight checks and, unless DryRun, takes
	// the cluster's switchover lock and writes the record (PATCH /switchover).
	// Errors are *SwitchoverError (400, 409, 412, 503).
	StartSwitchover(ctx context.Context, req SwitchoverRequest) (SwitchoverStarted, error)
	// Switchover returns the record JSON; ErrNotFound when there is none.
	Switchover(ctx context.Context, id string) (json.RawMessage, error)
	// ListSwitchovers returns recent records (a JSON array, newest first).
	ListSwitchovers(ctx context.Context) (json.RawMessage, error)
	// AbortSwitchover asks the running switchover to stop and restore the old
	// primary. ErrNotFound; *SwitchoverError 409 when it is past
	// PROMOTE_STANDBY or no longer running.
	AbortSwitchover(ctx context.Context, id string) error
	// WatchSwitchover yields the record JSON now and after every change,
	// and closes the channel after the terminal version (state completed,
	// failed or aborted) or when ctx ends. ErrNotFound when there is none.
	WatchSwitchover(ctx context.Context, id string) (<-chan json.RawMessage, error)

	// PatroniSwitchover serves POST /switchover and POST /failover after the
	// request passed the syntax checks of patroni-compat.md §2.6 steps 1–4:
	// it runs steps 5–8 (feasibility 412, write, 202 when scheduled, else
	// poll up to 2·max(10, loop_wait) s) and returns Patroni's code and text.
	PatroniSwitchover(ctx context.Context, req PatroniSwitchoverRequest) (code int, text string)
	// CancelScheduled serves DELETE /switchover: 200 "scheduled switchover
	// deleted", 404 "no switchover is scheduled", 409 on a lost CAS.
	CancelScheduled(ctx context.Context) (code int, text string)
}

// SwitchoverRequest is the body of PATCH /switchover.
type SwitchoverRequest struct {
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Timeout bounds QUIESCE_WRITES and WAIT_FOR_REPLICATION_CATCHUP
	// (Go duration, e.g. "30s"); zero = the cluster's switchover_timeout.
	Timeout Duration `json:"timeout,omitempty"`
	// RequestedBy is filled by the server from the request (remote address,
	// basic-auth user): clients do not send it.
	RequestedBy string `json:"-"`
}

// SwitchoverStarted answers a started (202) or dry-run (200) request.
type SwitchoverStarted struct {
	ID     string `json:"id,omitempty"`
	Events string `json:"events,omitempty"` // "/switchover/<id>/events"
	// DryRun results: the chosen candidate and every member's verdict.
	DryRun     bool               `json:"dry_run,omitempty"`
	From       string             `json:"from,omitempty"`
	To         string             `json:"to,omitempty"`
	Candidates []CandidateVerdict `json:"candidates,omitempty"`
}

// CandidateVerdict is one member's pre-flight result.
type CandidateVerdict struct {
	Member  string   `json:"member"`
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
}

// SwitchoverError is a refused switchover request: Status is the HTTP code
// (400, 404, 409, 412, 503); ID names the running switchover on 409;
// Rejected lists per-candidate reasons on 412.
type SwitchoverError struct {
	Status   int
	Message  string
	ID       string
	Rejected []CandidateVerdict
}

func (e *SwitchoverError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// AsSwitchoverError unwraps err into a *SwitchoverError.
func AsSwitchoverError(err error) (*SwitchoverError, bool) {
	var se *SwitchoverError
	ok := errors.As(err, &se)
	return se, ok
}

// PatroniSwitchoverRequest is the parsed body of Patroni's POST /switchover
// and POST /failover (patroni-compat.md §2.6).
type PatroniSwitchoverRequest struct {
	Action      string     // "switchover" or "failover"
	Leader      string     // "" when absent or null
	Candidate   string     // "candidate", or its alias "member"
	ScheduledAt *time.Time // nil when not scheduled; always has a zone
	// AssumeOldPrimaryDown (Regent's extension, "assume_old_primary_down"):
	// in maintenance mode, promote even though nobody confirmed that the
	// former primary stopped. The operator vouches for it.
	AssumeOldPrimaryDown bool
}

// Duration is a time.Duration that reads and writes Go duration strings.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}
