package agent

import (
	"context"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/switchover"
)

// cleanStaleLock removes a switchover lock that no running record backs
// (switchover.LockVerdict), so a failed close or start under a slow etcd
// does not leave the cluster looking busy. Guarded by the leader key and
// the lock's revision: a lock taken again meanwhile stays.
func (a *Agent) cleanStaleLock(ctx context.Context, v *dcs.Cluster) {
	lock, ok := switchover.LockInView(v)
	if !ok {
		a.soStaleLock = switchover.StaleLock{}
		return
	}
	remove, next := switchover.LockVerdict(lock, a.soStaleLock, a.now())
	a.soStaleLock = next
	if !remove {
		return
	}
	a.log.Warn("removing a stale switchover lock", "switchover_id", lock.ID)
	if err := a.dcs.DeleteAsLeader(ctx, a.name, a.dcs.Keys().SwitchoverLock(), lock.Rev); err != nil {
		a.log.Warn("cannot remove the stale switchover lock", "switchover_id", lock.ID, "err", err)
	}
}
