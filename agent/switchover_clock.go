package agent

import (
	"encoding/json"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// switchoverClock measures a switchover's timeouts on this host's own
// monotonic clock. The record's CreatedAt and event times are written by
// other hosts (any member can create the record, the old and new leaders
// write events), so comparing them with this host's clock would let clock
// skew shorten or stretch a timeout. The clock starts when this agent
// first sees the record, and again when it first sees each stage: a
// timeout can only come later than the record says, never earlier.
type switchoverClock struct {
	id          string
	firstSeen   time.Time
	stage       string
	stageSeenAt time.Time
}

// observe notes the record at now and returns how long this agent has
// seen the switchover, and its current stage.
func (c *switchoverClock) observe(r *SwitchoverRecord, now time.Time) (total, inStage time.Duration) {
	if c.id != r.ID {
		*c = switchoverClock{id: r.ID, firstSeen: now}
	}
	if c.stage != r.Stage {
		c.stage, c.stageSeenAt = r.Stage, now
	}
	return now.Sub(c.firstSeen), now.Sub(c.stageSeenAt)
}

// staleLockGrace is how long a switchover lock without a record must stay
// unchanged before the leader removes it: StartSwitchover takes the lock
// and writes the record in two steps, a few round trips apart.
const staleLockGrace = 10 * time.Second

// staleLock remembers a lock seen without a running record.
type staleLock struct {
	id    string
	rev   int64
	since time.Time
}

// lockVerdict classifies the switchover lock for the leader's cleanup:
// remove it now (its record is finished: a close whose lock delete failed,
// e.g. under a slow etcd), remove it once it has stayed unchanged for
// staleLockGrace (no record: a start that failed between its two writes),
// or keep it.
func lockVerdict(v *dcs.Cluster, seen staleLock, now time.Time) (remove bool, next staleLock) {
	lock, ok := v.Extra["switchover"]
	if !ok {
		return false, staleLock{}
	}
	id := string(lock.Data)
	raw, hasRecord := v.Extra["switchovers/"+id]
	if hasRecord {
		var r SwitchoverRecord
		if json.Unmarshal(raw.Data, &r) == nil && !r.Terminal() {
			return false, staleLock{}
		}
		return true, staleLock{}
	}
	if seen.id != id || seen.rev != lock.ModRevision {
		return false, staleLock{id: id, rev: lock.ModRevision, since: now}
	}
	return now.Sub(seen.since) >= staleLockGrace, seen
}
