package restapi

import "time"

// The typed documents the agent publishes for the API: the decision log
// (GET /decisions; the agent writes each record to etcd and serves the
// list through Backend.Decisions) and Regent's blocks of GET /patroni.

// Decision is one automatic decision with its reasons and inputs, kept in
// etcd under decisions/ (the cluster's last 100, the agent's bound) and served
// by GET /decisions (DESIGN §3). The agent writes it; clients (regentctl,
// bench, the e2e tests) read it with this type.
type Decision struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Member string    `json:"member"`
	// Kind: failover (won the race and promoted), stood_down (did not race
	// while the cluster had no leader), fence, demote, restart_primary,
	// release.
	Kind           string            `json:"kind"`
	Reason         string            `json:"reason"`
	PreviousLeader string            `json:"previous_leader,omitempty"`
	Candidates     []CandidateRecord `json:"candidates,omitempty"`
	Timings        *FailoverTimings  `json:"timings,omitempty"`
	// Stonith is fence.command's run against the former leader (the
	// record's "fence" field, as published since the first release).
	Stonith *StonithRecord `json:"fence,omitempty"`
}

// CandidateRecord is one member's standing in an election.
type CandidateRecord struct {
	Name      string   `json:"name"`
	Self      bool     `json:"self,omitempty"`
	Reachable bool     `json:"reachable"`
	LSN       string   `json:"lsn,omitempty"`
	Timeline  int      `json:"timeline,omitempty"`
	Priority  int      `json:"failover_priority,omitempty"`
	Eligible  bool     `json:"eligible"`
	Reasons   []string `json:"reasons,omitempty"`
}

// FailoverTimings of a failover as this member saw it: the leader was last seen,
// its key's absence was detected, the key was won, PostgreSQL promoted.
type FailoverTimings struct {
	LeaderLastSeen time.Time `json:"leader_last_seen,omitempty"`
	DetectedAt     time.Time `json:"detected_at"`
	ElectedAt      time.Time `json:"elected_at,omitempty"`
	PromotedAt     time.Time `json:"promoted_at,omitempty"`
	ElectionMs     int64     `json:"election_ms,omitempty"`
	PromotionMs    int64     `json:"promotion_ms,omitempty"`
	// UpstreamLastSeen: the last tick this member's WAL receiver streamed
	// from the old leader — for a dead leader, about when it died, while
	// its key (LeaderLastSeen) outlives it by up to ttl.
	UpstreamLastSeen time.Time `json:"upstream_last_seen,omitzero"`
	// FirstWriteAt: the new primary's first write transaction committed
	// (its write probe right after leaving recovery).
	FirstWriteAt time.Time `json:"first_write_at,omitzero"`
	// AgreedAt: the fence-confirmed fast path's majority agreed the old
	// leader was gone (DetectedAt is then when this member began to
	// suspect it); zero for a failover after the lease expired.
	AgreedAt time.Time `json:"agreed_at,omitzero"`
	// Timeline is the new primary's timeline (the history entry of the
	// switch names the one before it).
	Timeline int `json:"timeline,omitempty"`
	// Phases is the RTO budget: where the time went, in order.
	Phases []PhaseRecord `json:"phases,omitempty"`
}

// PhaseRecord is one phase of a failover and how long it took.
type PhaseRecord struct {
	Phase string `json:"phase"`
	Ms    int64  `json:"ms"`
}

// StonithRecord is fence.command's outcome, kept in the decision record.
type StonithRecord struct {
	Target     string `json:"target"`
	Ran        bool   `json:"ran"`
	ExitCode   int    `json:"exit_code"`
	DurationMs int64  `json:"duration_ms"`
	Output     string `json:"output,omitempty"`
	Error      string `json:"error,omitempty"`
}

// WatchdogStatus is the watchdog block of GET /patroni (Regent's part).
type WatchdogStatus struct {
	Mode               string `json:"mode"`
	Armed              bool   `json:"armed"`
	TimeoutSeconds     int    `json:"timeout_s,omitempty"`
	LastKeepaliveAgeMs *int64 `json:"last_keepalive_age_ms,omitempty"`
	Failed             bool   `json:"failed,omitempty"`
	Reason             string `json:"reason,omitempty"`
}

// SyncStatus is the synchronous-mode block of GET /patroni (Regent's part).
type SyncStatus struct {
	Strict bool `json:"strict"`
	// Degraded: non-strict mode with no synchronous standby, running
	// asynchronously (acknowledged commits may be lost on failover).
	Degraded bool     `json:"degraded,omitempty"`
	Standbys []string `json:"sync_standby,omitempty"`
}
