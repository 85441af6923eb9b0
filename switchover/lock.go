package switchover

import (
	"time"

	"github.com/regent-ha/regent/dcs"
)

// StaleLockGrace is how long a switchover lock without a record must stay
// unchanged before it is removed: a start takes the lock and writes the
// record in two steps, a few round trips apart.
const StaleLockGrace = 10 * time.Second

// Lock is the switchover lock key as read, with the record it names.
type Lock struct {
	// ID is the switchover the lock names; Rev its ModRevision.
	ID  string
	Rev int64
	// Record is the named record's JSON; HasRecord is false when absent.
	Record    []byte
	HasRecord bool
}

// LockInView returns the lock in the cached view, if any.
func LockInView(v *dcs.Cluster) (Lock, bool) {
	if v == nil {
		return Lock{}, false
	}
	lock, ok := v.Extra[lockName]
	if !ok {
		return Lock{}, false
	}
	l := Lock{ID: string(lock.Data), Rev: lock.ModRevision}
	raw, ok := v.Extra[recordsPrefix+l.ID]
	l.Record, l.HasRecord = raw.Data, ok
	return l, true
}

// StaleLock remembers a lock seen without a record, to time the grace.
// The zero value has seen nothing.
type StaleLock struct {
	id    string
	rev   int64
	since time.Time
}

// LockVerdict classifies the switchover lock l: remove it now (its record
// is finished or unreadable: a close whose lock delete failed, e.g. under
// a slow etcd), remove it once it has stayed unchanged for StaleLockGrace
// (no record: a start that failed between its two writes), or keep it (its
// record is running). seen is what the caller noted last time (zero for a
// one-off check, which then never removes a lock without a record: it may
// be a start between its two writes); next is what to note now.
func LockVerdict(l Lock, seen StaleLock, now time.Time) (remove bool, next StaleLock) {
	if l.HasRecord {
		r, err := Decode(l.Record)
		return err != nil || r.Terminal(), StaleLock{}
	}
	if seen.id != l.ID || seen.rev != l.Rev {
		return false, StaleLock{id: l.ID, rev: l.Rev, since: now}
	}
	return now.Sub(seen.since) >= StaleLockGrace, seen
}
