package agent

import (
	"context"
	"sync"

	"github.com/regent-ha/regent/dcs"

	"github.com/regent-ha/regent/switchover"
)

// maxSwitchoverRecords bounds the kept history of switchover records.
const maxSwitchoverRecords = 50

// recordStore keeps the switchover records in etcd for package
// switchover, through the agent's bounded client: every call is bounded
// by retry_timeout and, while leading, by the lease deadline.
type recordStore struct {
	dcs DCS
	own *ownWrites
}

// ownWrites remembers the newest record write this agent made (from the
// loop or from routing work beside it), for switchover.ActiveAfter.
type ownWrites struct {
	mu sync.Mutex
	w  switchover.Written
}

func (o *ownWrites) note(id string, rev int64, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id != o.w.ID || rev > o.w.Rev {
		o.w = switchover.Written{ID: id, Rev: rev, Data: data}
	}
}

func (o *ownWrites) last() switchover.Written {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w
}

var _ switchover.Store = recordStore{}

func (s recordStore) Get(ctx context.Context, id string) ([]byte, int64, bool, error) {
	v, ok, err := s.dcs.Get(ctx, s.dcs.Keys().Switchover(id))
	return v.Data, v.ModRevision, ok, err
}

func (s recordStore) CAS(ctx context.Context, id string, data []byte, rev int64) (int64, error) {
	rev, err := s.dcs.CAS(ctx, s.dcs.Keys().Switchover(id), data, rev)
	if err == nil && s.own != nil {
		s.own.note(id, rev, data)
	}
	return rev, err
}

func (s recordStore) IDs() []string { return switchover.IDs(s.dcs.View()) }

func (s recordStore) Delete(ctx context.Context, id string) error {
	return s.dcs.Delete(ctx, s.dcs.Keys().Switchover(id), 0)
}

func (a *Agent) records() recordStore { return recordStore{dcs: a.dcs, own: &a.ownRecords} }

// activeSwitchover is the running switchover as this agent should act on
// it: the view's record, or its own newer write (switchover.ActiveAfter).
func (a *Agent) activeSwitchover(v *dcs.Cluster) *switchover.Record {
	return switchover.ActiveAfter(v, a.ownRecords.last())
}

// readRecord reads a record fresh from etcd with its revision.
func (a *Agent) readRecord(ctx context.Context, id string) (*switchover.Record, int64, error) {
	return switchover.Read(ctx, a.records(), id)
}

// updateRecord applies change to the record with a CAS write (switchover.Update).
func (a *Agent) updateRecord(ctx context.Context, id string, change func(*switchover.Record) error) (*switchover.Record, error) {
	return switchover.Update(ctx, a.records(), id, change)
}

// trimSwitchovers keeps the last maxSwitchoverRecords records.
func (a *Agent) trimSwitchovers(ctx context.Context) {
	if err := switchover.Trim(ctx, a.records(), maxSwitchoverRecords); err != nil {
		a.log.Debug("switchover records not trimmed yet", "err", err)
	}
}
