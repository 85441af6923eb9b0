package restapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/regent-ha/regent/internal/progress"
)

// Snapshot is what the HA loop publishes once per tick (and on every
// transition). The server keeps the latest one in an atomic.Pointer and
// answers every health check from it: no PostgreSQL or etcd query per
// request. A published Snapshot is immutable.
type Snapshot struct {
	// Status is the GET /patroni document (patroni-compat.md §2.2) as of
	// the tick. ClusterUnlocked is recomputed per request from the times
	// below.
	Status Status

	// LeaderUntil bounds "I hold the leader lock" (L in §2.3): true only
	// while time.Now() is before it. The loop sets it to
	// t_send_of_last_acked_renewal + ttl − safety_margin; zero when not leader.
	// In a standby cluster the standby leader holds the lock too, and
	// StandbyCluster keeps /primary 503 there (PostgreSQL stays in recovery).
	LeaderUntil time.Time
	// ViewFreshUntil bounds the cached cluster view (C in §2.3): the view is
	// null once time.Now() is past it (last successful DCS read + ttl).
	ViewFreshUntil time.Time
	// Unlocked is true when the view had no leader key.
	Unlocked bool
	// Paused is the last known config "pause".
	Paused bool
	// StandbyCluster is true when the dynamic config has an active standby_cluster.
	StandbyCluster bool
	// Optime is the cluster's status.optime (0 when unknown).
	Optime uint64
	// LeaseDeadline is the leader's own deadline; when set (and
	// Status.Regent is), regent.lease_remaining_ms is computed per request
	// from it rather than taken from Status.
	LeaseDeadline time.Time
	// LivenessUntil is the scheduled start of the next tick plus the liveness
	// threshold (ttl on a running primary, 2·ttl otherwise); /liveness answers
	// 503 once it has passed.
	LivenessUntil time.Time
}

// Status is the GET /patroni document. Optional fields are omitted, never
// written as false (patroni-compat.md §6 item 8).
type Status struct {
	State                    string         `json:"state"`
	PostmasterStartTime      string         `json:"postmaster_start_time,omitempty"`
	Role                     string         `json:"role"`
	ServerVersion            int            `json:"server_version,omitempty"`
	XLog                     *XLog          `json:"xlog,omitempty"`
	SyncStandby              bool           `json:"sync_standby,omitempty"`
	Timeline                 int            `json:"timeline,omitempty"`
	Replication              []Replication  `json:"replication,omitempty"`
	ClusterUnlocked          bool           `json:"cluster_unlocked,omitempty"`
	FailsafeModeIsActive     bool           `json:"failsafe_mode_is_active,omitempty"`
	DCSLastSeen              int64          `json:"dcs_last_seen"`
	Tags                     map[string]any `json:"tags,omitempty"`
	DatabaseSystemIdentifier string         `json:"database_system_identifier,omitempty"`
	PendingRestart           bool           `json:"pending_restart,omitempty"`
	Patroni                  Agent          `json:"patroni"`
	ScheduledRestart         map[string]any `json:"scheduled_restart,omitempty"`
	WatchdogFailed           bool           `json:"watchdog_failed,omitempty"`
	Pause                    bool           `json:"pause,omitempty"`
	// Regent is Regent's own block, ignored by Patroni tools.
	Regent *RegentStatus `json:"regent,omitempty"`
}

// XLog is the WAL block: Location on a primary; the others in recovery.
type XLog struct {
	Location          *uint64 `json:"location,omitempty"`
	ReceivedLocation  *uint64 `json:"received_location,omitempty"`
	ReplayedLocation  *uint64 `json:"replayed_location,omitempty"`
	ReplayedTimestamp *string `json:"replayed_timestamp,omitempty"`
	Paused            *bool   `json:"paused,omitempty"`
}

// Replication is one WAL sender, as Patroni reports it.
type Replication struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
}

// Agent identifies the agent: {"version": …, "scope": …}.
type Agent struct {
	Version string `json:"version"`
	Scope   string `json:"scope"`
}

// RegentStatus carries Regent's extra status fields.
type RegentStatus struct {
	Name string `json:"name"`
	// LeaseRemainingMs is how long this leader may still serve writes, as
	// of the request when Snapshot.LeaseDeadline is set.
	LeaseRemainingMs int64           `json:"lease_remaining_ms,omitempty"`
	Watchdog         *WatchdogStatus `json:"watchdog,omitempty"`
	Synchronous      *SyncStatus     `json:"synchronous,omitempty"`
	LastDecision     string          `json:"last_decision,omitempty"`
	// ConfigError is what this member cannot apply of the cluster's
	// dynamic config; it keeps its current values for those keys.
	ConfigError string `json:"config_error,omitempty"`
	// Progress of the replica this member is creating.
	Progress *progress.Progress `json:"progress,omitempty"`
	// EtcdError is the class of the last failed etcd renewal (unreachable,
	// timeout, no_leader, auth, compare_failed, lease_lost, other); absent
	// while etcd answers.
	EtcdError string `json:"etcd_error,omitempty"`
	// Failsafe is set while failsafe mode is active on this member.
	Failsafe *FailsafeStatus `json:"failsafe,omitempty"`
}

// FailsafeStatus describes an active failsafe episode: on the leader, how
// long its deadline has rested on the members' acknowledgements; on a
// member, the leader whose failsafe call it holds and how old that is.
type FailsafeStatus struct {
	Leader string `json:"leader"`
	// Since is when it began (the leader's first round, or the call held).
	Since time.Time `json:"since"`
	AgeMs int64     `json:"age_ms"`
}

// Backend is what the server needs from the agent beyond the published
// Snapshot: the cluster reads of /cluster, /history, /config and
// /decisions. The agent answers them from its watch-fed view, never with
// an etcd request per call; a view etcd has not confirmed for a ttl is
// refused with ErrViewStale (wrapped). Every method must honour ctx and
// never block past it.
type Backend interface {
	// Cluster returns the GET /cluster document.
	Cluster(ctx context.Context) (ClusterDoc, error)
	// History returns the history key's array (nil or empty when absent).
	History(ctx context.Context) (json.RawMessage, error)
	// Config returns the raw dynamic config JSON and the key's mod
	// revision (served as the ETag); ErrNotFound when absent.
	Config(ctx context.Context) (json.RawMessage, int64, error)
	// Decisions returns Regent's decision log (a JSON array, newest first).
	Decisions(ctx context.Context) (json.RawMessage, error)
}

// ClusterDoc is the GET /cluster document (patroni-compat.md §2.5).
type ClusterDoc struct {
	Members             []ClusterMember `json:"members"`
	Pause               bool            `json:"pause,omitempty"`
	ScheduledSwitchover *Scheduled      `json:"scheduled_switchover,omitempty"`
	// FailsafeModeIsActive and Failsafe: failsafe mode is active on the
	// member that answered (the members may then come from the last view
	// etcd gave it, older than a ttl).
	FailsafeModeIsActive bool            `json:"failsafe_mode_is_active,omitempty"`
	Failsafe             *FailsafeStatus `json:"failsafe,omitempty"`
}

// ClusterMember is one entry of ClusterDoc.Members.
type ClusterMember struct {
	Name             string         `json:"name"`
	Role             string         `json:"role"`
	State            string         `json:"state"`
	APIURL           string         `json:"api_url,omitempty"`
	Host             string         `json:"host,omitempty"`
	Port             int            `json:"port,omitempty"`
	Timeline         int            `json:"timeline,omitempty"`
	PendingRestart   bool           `json:"pending_restart,omitempty"`
	ScheduledRestart map[string]any `json:"scheduled_restart,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	// Lag is bytes behind the leader, or the string "unknown"; absent on the leader.
	Lag any `json:"lag,omitempty"`
	// Decision (Regent's): while the cluster has no leader, why this member
	// does not race for it.
	Decision string `json:"decision,omitempty"`
	// ConfigError (Regent's): what this member cannot apply of the
	// cluster's dynamic config.
	ConfigError string `json:"config_error,omitempty"`
	// Progress (Regent's): of the replica this member is creating.
	Progress *progress.Progress `json:"progress,omitempty"`
}

// Scheduled describes a scheduled switchover.
type Scheduled struct {
	At   string `json:"at"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}
