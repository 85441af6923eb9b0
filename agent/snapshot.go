package agent

import (
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/switchover"
)

// Snapshot is everything decide needs, observed at one instant. It is built
// by the loop's observe step and never modified afterwards.
type Snapshot struct {
	// Now is a monotonic clock reading taken when the snapshot was built.
	Now    time.Time
	Name   string
	Tags   config.Tags
	Config config.Dynamic
	// View is the cached cluster view; nil before the first successful read.
	View *dcs.Cluster
	// ViewFresh is true while the last successful etcd contact is younger
	// than ttl: an older view may hide a leader.
	ViewFresh bool
	PG        PGState
	Lease     LeaseState
	// WatchdogUsable is false when watchdog mode is required and the device
	// cannot be armed: such a member must not lead.
	WatchdogUsable bool
	// CreateWithoutLeader: a replica creation method needs no leader
	// (no_leader), so an initialized cluster without one can still get a
	// replica (from a backup).
	CreateWithoutLeader bool
	// Switchover is the running switchover record (nil when none).
	Switchover *switchover.Record
	// Quiescing: this leader stopped PostgreSQL on purpose for a switchover.
	Quiescing bool
	// Busy names long work running beside the loop (a clone, a rewind;
	// "" when none): PostgreSQL and its data directory belong to it.
	Busy string
	// Restart is the phase of a requested restart (restartJob).
	Restart RestartPhase
	// ScheduledRestart is when a scheduled restart is due (zero when none).
	ScheduledRestart time.Time
	// LeaderlessSince is when this agent first saw the cluster without a
	// leader (zero while there is one).
	LeaderlessSince time.Time
	// PreviousLeader is the last leader this agent saw ("" when it saw
	// none since it started).
	PreviousLeader string
	// StonithConfigured: fence.command is set, so a race over a former
	// leader that did not step down cleanly runs it first.
	StonithConfigured bool
	// WALSeen is this member's own WAL position as the previous tick saw
	// it and when it last moved (raceBackoff).
	WALSeen WALSeen
	// Peers holds the other members' REST status, fetched only when the
	// cluster has no leader and this member might race.
	Peers []PeerStatus
	// FastPath is the fence-confirmed fast path's view (nil when it does
	// not apply; fastpath.go).
	FastPath *FastPathView
	// FailsafeHold is the last failsafe call this member accepted (zero
	// when none): while it is younger than its TTL the leader that made it
	// may be serving writes without etcd, so this member must not race or
	// promote (agent/failsafe.go).
	FailsafeHold FailsafeHold
	// FailsafeTopology is the /failsafe key's member names (nil when the
	// key is absent or unreadable): with failsafe_mode on, a member it
	// does not name never races (Patroni's rule).
	FailsafeTopology map[string]string
}

// FailsafeHold is an accepted POST /failsafe: the leader that called,
// when (this host's monotonic clock) and for how long it holds.
type FailsafeHold struct {
	Leader string
	At     time.Time
	TTL    time.Duration
	// Since is the first call of the episode (the same leader calling
	// without a lapse); SinceWall the same on the wall clock, for display.
	Since, SinceWall time.Time
}

// Active reports whether the hold still binds at now.
func (h FailsafeHold) Active(now time.Time) bool {
	return h.Leader != "" && now.Sub(h.At) < h.TTL
}

// PGState is the local PostgreSQL as observed this tick.
type PGState struct {
	DataDirEmpty bool
	Running      bool
	// Status is valid when Running.
	Status postgres.Status
	// SystemID comes from Status, or from pg_controldata when stopped.
	SystemID uint64
	// DownSince is when the agent first saw PostgreSQL not running (zero
	// while it runs); it bounds an in-place restart of a crashed primary.
	DownSince time.Time
	// Unresponsive: the status query went unanswered (a hung or frozen
	// server, not a stopped one).
	Unresponsive bool
}

// LeaseState is this agent's hold on the leader key.
type LeaseState struct {
	// Leading is true while the last renewal confirmed the leader key is ours.
	Leading bool
	// ID is the agent's current session lease (0 when none).
	ID int64
	// Deadline is t_send_of_last_acked_renewal + ttl − safety_margin (or
	// earlier, see leadership.deadline): past it, etcd may expire the lease
	// at any moment, so writes must stop.
	Deadline time.Time
	// Unfenced: an earlier fence could not stop PostgreSQL; it may still
	// accept writes and must be fenced again before anything else.
	Unfenced bool
	// Failsafe: the deadline rests on a failsafe round (etcd could not be
	// asked; every member acknowledged this leader).
	Failsafe bool
}

// PeerStatus is another member's GET /patroni answer, reduced to what the
// election needs.
type PeerStatus struct {
	Name           string
	Reachable      bool
	Err            string
	InRecovery     bool
	WAL            postgres.LSN
	Timeline       int
	NoFailover     bool
	WatchdogFailed bool
	Priority       int
	// Replayed is the replay position of a peer in recovery.
	Replayed postgres.LSN
	// State is the peer's PostgreSQL state ("running", …).
	State string
	// Streaming lists the application names of its WAL senders in state
	// "streaming" (a primary's replicas).
	Streaming []string
}

// leaderName is the name in the leader key, "" when unlocked or unknown.
func (s *Snapshot) leaderName() string { return s.View.LeaderName() }

// staleOwnKey: the leader key names this member and sits on its current
// session lease, but the agent no longer leads (it fenced or demoted while
// etcd was away, and etcd renewed the lease when it came back). Nobody else
// can take the key while it exists, so it must be released.
func (s *Snapshot) staleOwnKey() bool {
	l := s.View.Leader
	return l != nil && l.Name == s.Name && !s.Lease.Leading && s.Lease.ID != 0 && l.Lease == s.Lease.ID
}

// member returns a member key by name.
func (s *Snapshot) member(name string) (dcs.Member, bool) {
	if s.View == nil {
		return dcs.Member{}, false
	}
	m, ok := s.View.Members[name]
	return m, ok
}
