package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Commands is what the operator endpoints need from the agent
// (patroni-compat.md §2.4). Commands that change the local PostgreSQL are
// queued to the HA loop, which runs them between ticks; the call waits for
// the outcome (bounded by ctx).
type Commands interface {
	// PatchConfig merges patch into the config key (null deletes a key,
	// objects merge recursively), validates the result and writes it with a
	// CAS on the key's revision; it returns the merged config. ifRevision,
	// when not 0, is the mod revision the caller last read (If-Match): the
	// key must still have it, else *ConfigChangedError. Errors: *HTTPError
	// 400 (naming the bad key or value), 409 (lost the CAS race), 503 (no
	// config key, or etcd unreachable).
	PatchConfig(ctx context.Context, patch json.RawMessage, ifRevision int64) (json.RawMessage, error)
	// PutConfig validates and replaces the config key: a plain put, or with
	// ifRevision not 0 a CAS on it (*ConfigChangedError when the key no
	// longer has it). It returns what was written. *HTTPError 400 or 502.
	PutConfig(ctx context.Context, cfg json.RawMessage, ifRevision int64) (json.RawMessage, error)
	// Restart restarts PostgreSQL now, or schedules it (202 "Restart
	// scheduled"), with Patroni's conditions, codes and texts.
	Restart(ctx context.Context, req RestartRequest) (code int, text string)
	// CancelRestart: 200 "scheduled restart deleted" / 404 "no restarts are scheduled".
	CancelRestart(ctx context.Context) (code int, text string)
	// Reload re-reads the configuration and reloads PostgreSQL: 202 "reload scheduled".
	Reload(ctx context.Context) (code int, text string)
	// Reinitialize re-clones this replica from the leader: 200 "reinitialize
	// started", or 503 with Patroni's texts.
	Reinitialize(ctx context.Context, force bool) (code int, text string)
}

// RestartRequest is the parsed body of POST /restart.
type RestartRequest struct {
	Schedule        *time.Time    // nil = now
	Role            string        // "", "primary", "master" or "replica"
	PostgresVersion string        // restart only if the server is older
	Timeout         time.Duration // 0 = none
	RestartPending  bool          // restart only if a setting is pending restart
}

// HTTPError is a refused command: Status is the HTTP code.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// ConfigChangedError refuses a config write made against a revision the
// config key no longer has (If-Match): 412, with the current revision.
type ConfigChangedError struct {
	Expected int64 // the mod revision the caller read
	Current  int64 // the key's mod revision now; 0 when absent or unknown
}

func (e *ConfigChangedError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("the config changed since revision %d", e.Expected)
	}
	return fmt.Sprintf("the config changed since revision %d (now revision %d)", e.Expected, e.Current)
}
