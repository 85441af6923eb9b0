package postgres

import "time"

// Status is one observation of the local PostgreSQL instance, taken by
// Instance.Status. The zero value means "not running".
type Status struct {
	Running    bool // the postmaster accepts connections
	InRecovery bool // pg_is_in_recovery()
	Timeline   uint32
	// CurrentLSN is pg_current_wal_lsn() on a primary (0 in recovery).
	CurrentLSN LSN
	// ReceiveLSN and ReplayLSN are pg_last_wal_receive_lsn() and
	// pg_last_wal_replay_lsn() in recovery (0 on a primary).
	ReceiveLSN LSN
	ReplayLSN  LSN
	// ReplayPaused is pg_get_wal_replay_pause_state() != 'not paused'.
	ReplayPaused bool
	// ReplayedAt is pg_last_xact_replay_timestamp(); zero when unknown.
	ReplayedAt time.Time
	// Streaming is true when a WAL receiver is streaming from an upstream.
	Streaming bool
	// SystemID is the database system identifier (pg_control_system()).
	SystemID uint64
	// ServerVersion is server_version_num, e.g. 150004.
	ServerVersion int
	// PostmasterStart is pg_postmaster_start_time().
	PostmasterStart time.Time
	// PendingRestart is true when any setting in pg_settings has pending_restart.
	PendingRestart bool
	// Replication lists pg_stat_replication rows (primary, or cascading replica).
	Replication []Replica
}

// WALPosition is the position used to compare members: the current LSN on a
// primary, the greater of receive and replay LSN in recovery.
func (s Status) WALPosition() LSN {
	if !s.InRecovery {
		return s.CurrentLSN
	}
	return max(s.ReceiveLSN, s.ReplayLSN)
}

// Replica is one row of pg_stat_replication.
type Replica struct {
	PID             int
	Usename         string
	ApplicationName string
	ClientAddr      string
	State           string // "streaming", "catchup", ...
	SyncState       string // "async", "sync", "potential", "quorum"
	SyncPriority    int
	SentLSN         LSN
	WriteLSN        LSN
	FlushLSN        LSN
	ReplayLSN       LSN
}
