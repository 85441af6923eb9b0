package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/regent-ha/regent/dcs"
)

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

// cleanStaleLock removes a switchover lock that no running record backs
// (lockVerdict), so a failed close or start under a slow etcd does not
// leave the cluster looking busy. Guarded by the leader key and the lock's
// revision: a lock taken again meanwhile stays.
func (a *Agent) cleanStaleLock(ctx context.Context, v *dcs.Cluster) {
	remove, next := lockVerdict(v, a.soStaleLock, a.now())
	a.soStaleLock = next
	if !remove {
		return
	}
	lock := v.Extra["switchover"]
	a.log.Warn("removing a stale switchover lock", "switchover_id", string(lock.Data))
	if err := a.dcs.DeleteAsLeader(ctx, a.name, a.dcs.Keys().SwitchoverLock(), lock.ModRevision); err != nil {
		a.log.Warn("cannot remove the stale switchover lock", "switchover_id", string(lock.Data), "err", err)
	}
}
