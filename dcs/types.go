package dcs

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/lenient"
	"github.com/regent-ha/regent/internal/progress"
)

// Member is the JSON value of members/<name> (patroni-compat.md §1.3.1).
// Optional fields are omitted when false or unknown, as Patroni does.
type Member struct {
	ConnURL          string         `json:"conn_url"`
	APIURL           string         `json:"api_url"`
	State            string         `json:"state"`
	Role             string         `json:"role"`
	Version          string         `json:"version"`
	XLogLocation     *uint64        `json:"xlog_location,omitempty"`
	Timeline         int            `json:"timeline,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	PendingRestart   bool           `json:"pending_restart,omitempty"`
	ScheduledRestart map[string]any `json:"scheduled_restart,omitempty"`
	Pause            bool           `json:"pause,omitempty"`
	// CheckpointAfterPromote is written only as false (pointer to false),
	// until the first checkpoint after a promotion completes.
	CheckpointAfterPromote *bool `json:"checkpoint_after_promote,omitempty"`
	// Decision is Regent's own field (Patroni tools ignore it): while the
	// cluster has no leader, why this member does not race for it.
	Decision string `json:"decision,omitempty"`
	// ConfigError is Regent's own field: what this member cannot apply of
	// the cluster's dynamic config (it keeps its current values for those).
	ConfigError string `json:"config_error,omitempty"`
	// Progress is Regent's own field: a replica being created says how far
	// it got (written at most once per whole percent).
	Progress *progress.Progress `json:"progress,omitempty"`
	// Failsafe is Regent's own field: set while this member holds a
	// leader's failsafe call (it does not race or promote meanwhile).
	Failsafe *MemberFailsafe `json:"failsafe,omitempty"`
}

// MemberFailsafe is a member's active failsafe hold: the leader that
// called and when the episode began (RFC 3339).
type MemberFailsafe struct {
	Leader string `json:"leader"`
	Since  string `json:"since"`
}

// NoFailover reports the nofailover tag (lenient booleans, as Patroni).
func (m Member) NoFailover() bool { return lenient.Truthy(m.Tags["nofailover"]) }

// NoStream reports the nostream tag: the member replays WAL from the
// archive only, so no replication slot is kept for it.
func (m Member) NoStream() bool { return lenient.Truthy(m.Tags["nostream"]) }

// Tag returns a tag value and whether it is set.
func (m Member) Tag(name string) (any, bool) { v, ok := m.Tags[name]; return v, ok }

// Leader is the leader key: the bare member name on the leader's lease.
type Leader struct {
	Name           string
	Lease          int64
	CreateRevision int64
	ModRevision    int64
}

// Failover is the failover key (patroni-compat.md §1.3.4). The zero value
// (written as {}) means "no request".
type Failover struct {
	Leader      string `json:"leader,omitempty"`
	Member      string `json:"member,omitempty"`
	ScheduledAt string `json:"scheduled_at,omitempty"`
	// AssumeOldPrimaryDown is Regent's extension (Patroni ignores it): in
	// maintenance mode the operator vouches that the former primary can no
	// longer accept writes, so the candidate may promote without anyone
	// having confirmed it (see agent decidePausedFailover).
	AssumeOldPrimaryDown bool `json:"assume_old_primary_down,omitempty"`
}

// Empty reports a cleared request.
func (f Failover) Empty() bool { return f.Leader == "" && f.Member == "" }

// Sync is the sync key (patroni-compat.md §1.3.5). In quorum commit
// (Patroni 4) SyncStandby lists the voters and Quorum is how many of them,
// besides a candidate in the set, the election must see: n − k for
// "ANY k" of n. Patroni 3.0.2 readers ignore quorum.
type Sync struct {
	Leader      string  `json:"leader,omitempty"`
	SyncStandby *string `json:"sync_standby"`
	Quorum      *int    `json:"quorum,omitempty"`
}

// QuorumValue is the quorum field, 0 when absent.
func (s Sync) QuorumValue() int {
	if s.Quorum == nil || *s.Quorum < 0 {
		return 0
	}
	return *s.Quorum
}

// Standbys returns the comma-separated sync_standby names, trimmed and sorted.
func (s Sync) Standbys() []string {
	if s.SyncStandby == nil || *s.SyncStandby == "" {
		return nil
	}
	var out []string
	for _, n := range strings.Split(*s.SyncStandby, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Matches reports whether name is the sync leader or one of its standbys.
func (s Sync) Matches(name string) bool {
	if s.Leader == "" {
		return false
	}
	if s.Leader == name {
		return true
	}
	for _, n := range s.Standbys() {
		if n == name {
			return true
		}
	}
	return false
}

// Status is the status key: the leader's last published WAL position.
type Status struct {
	Optime uint64           `json:"optime"`
	Slots  map[string]int64 `json:"slots,omitempty"`
}

// HistoryEntry is one line of the history key:
// [timeline, switch_lsn, reason, promoted_at, new_leader]. The last two may
// be absent on lines copied from a .history file.
type HistoryEntry struct {
	Timeline   int
	SwitchLSN  uint64
	Reason     string
	PromotedAt string
	NewLeader  string
}

// MarshalJSON writes the entry as Patroni's 5-element array.
func (h HistoryEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{h.Timeline, h.SwitchLSN, h.Reason, h.PromotedAt, h.NewLeader})
}

// UnmarshalJSON reads 3- to 5-element arrays; missing elements stay empty.
func (h *HistoryEntry) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	fields := []any{&h.Timeline, &h.SwitchLSN, &h.Reason, &h.PromotedAt, &h.NewLeader}
	for i := 0; i < len(raw) && i < len(fields); i++ {
		// Lenient: a value of another type is left as its zero value.
		_ = json.Unmarshal(raw[i], fields[i])
	}
	return nil
}

// Value is a raw key value with the revisions needed for CAS writes.
type Value struct {
	Data           []byte
	CreateRevision int64
	ModRevision    int64
}

// Cluster is an immutable view of one cluster's keys, built by the cache
// from one range read plus the watch. Callers must not modify it.
type Cluster struct {
	// Revision is the etcd revision the view reflects.
	Revision int64
	// LoadedAt is the local monotonic time of the last successful read or
	// watch event; views older than ttl are stale.
	LoadedAt time.Time

	// Initialize is nil when the key is absent; "" while a bootstrap runs.
	Initialize *string
	// Config is the raw dynamic configuration JSON (nil when absent).
	Config *Value
	// Leader is nil when no member holds the leader key.
	Leader  *Leader
	Members map[string]Member
	// MemberRevs holds each member key's ModRevision (absent: unknown).
	MemberRevs  map[string]int64
	Status      Status
	History     []HistoryEntry
	Sync        Sync
	SyncRev     int64 // ModRevision of the sync key, 0 when absent
	Failover    Failover
	FailoverRev int64 // ModRevision of the failover key, 0 when absent
	// Extra holds every other key under the prefix (switchover, switchovers/…,
	// decisions/…) by its name after the prefix.
	Extra map[string]Value
}

// LeaderName returns the leader's member name or "".
func (c *Cluster) LeaderName() string {
	if c == nil || c.Leader == nil {
		return ""
	}
	return c.Leader.Name
}

// MemberNames returns the member names, sorted.
func (c *Cluster) MemberNames() []string {
	return slices.Sorted(maps.Keys(c.Members))
}

// Timeline is the cluster timeline from the history key: the last entry's
// timeline + 1, or 1 when the history is empty.
func (c *Cluster) Timeline() int {
	if len(c.History) == 0 {
		return 1
	}
	return c.History[len(c.History)-1].Timeline + 1
}

// Failsafe returns the failsafe key (patroni-compat.md §1.3: member name →
// api_url, written by a leader in failsafe mode) and whether it holds such
// an object. An absent key, invalid JSON or a value that is not an object
// of strings reads as absent, as Patroni discards it.
func (c *Cluster) Failsafe() (map[string]string, bool) {
	raw, ok := c.Extra["failsafe"]
	if !ok {
		return nil, false
	}
	var m map[string]string
	if err := json.Unmarshal(raw.Data, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// Suspicion is the value of suspects/<member> (Regent's own key; Patroni
// ignores it): the member has lost the leader named here — no WAL from it,
// its REST API and PostgreSQL unreachable — since Since (RFC 3339, for
// display only: agreement is timed on each reader's own clock). It is
// written on the member's session lease, so it ends with the member.
type Suspicion struct {
	Leader string `json:"leader"`
	// LeaderRevision is the ModRevision of the leader key suspected: a
	// suspicion of an older key says nothing about the current one.
	LeaderRevision int64  `json:"leader_revision"`
	Since          string `json:"since"`
}

// Suspects returns the suspects/<member> keys by member name. A value that
// is not a suspicion (invalid JSON, no leader) is left out.
func (c *Cluster) Suspects() map[string]Suspicion {
	out := map[string]Suspicion{}
	if c == nil {
		return out
	}
	for name, raw := range c.Extra {
		member, ok := strings.CutPrefix(name, "suspects/")
		if !ok || member == "" || strings.Contains(member, "/") {
			continue
		}
		var s Suspicion
		if json.Unmarshal(raw.Data, &s) == nil && s.Leader != "" {
			out[member] = s
		}
	}
	return out
}
