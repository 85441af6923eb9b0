package dcstest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// GrantLease grants a new lease and makes it current (ttl is not enforced:
// leases end only by ExpireLease).
func (f *Fake) GrantLease(ctx context.Context, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("dcstest: grant lease: ttl %s is not positive", ttl)
	}
	if err := f.begin(ctx, "GrantLease", ""); err != nil {
		return 0, err
	}
	defer f.end()
	f.s.nextID++
	f.s.leases[f.s.nextID] = true
	f.lease = f.s.nextID
	return f.lease, nil
}

// KeepAlive answers ErrLeaseLost (clearing the current lease) when the
// lease was expired or there is none.
func (f *Fake) KeepAlive(ctx context.Context) error {
	if err := f.begin(ctx, "KeepAlive", ""); err != nil {
		return err
	}
	defer f.end()
	_, err := f.liveLease()
	return err
}

// liveLease returns the current lease, or ErrLeaseLost (clearing it) when
// there is none or the store no longer has it. Caller holds the lock.
func (f *Fake) liveLease() (int64, error) {
	id := f.lease
	if id == 0 {
		return 0, fmt.Errorf("%w: no current lease", dcs.ErrLeaseLost)
	}
	if !f.s.leases[id] {
		f.lease = 0
		return 0, fmt.Errorf("%w: lease %x not found", dcs.ErrLeaseLost, id)
	}
	return id, nil
}

// AcquireLeader creates the leader key on the current lease if absent.
func (f *Fake) AcquireLeader(ctx context.Context, name string) (bool, error) {
	key := f.s.keys.Leader()
	if err := f.begin(ctx, "AcquireLeader", key); err != nil {
		return false, err
	}
	defer f.end()
	id, err := f.liveLease()
	if err != nil {
		return false, err
	}
	if kv, ok := f.s.kvs[key]; ok {
		return string(kv.Value) == name && kv.Lease == id, nil
	}
	f.s.put(key, []byte(name), id)
	return true, nil
}

// CheckLeader returns ErrNotLeader unless the leader key holds name on the
// current lease.
func (f *Fake) CheckLeader(ctx context.Context, name string) error {
	key := f.s.keys.Leader()
	if err := f.begin(ctx, "CheckLeader", key); err != nil {
		return err
	}
	defer f.end()
	return f.ownsLeader(key, name)
}

func (f *Fake) ownsLeader(key, name string) error { return f.ownsLeaderOn(key, name, f.lease) }

// ownsLeaderOn returns ErrNotLeader unless key holds name on lease id (not
// 0). Caller holds the lock.
func (f *Fake) ownsLeaderOn(key, name string, id int64) error {
	kv, ok := f.s.kvs[key]
	switch {
	case !ok:
		return fmt.Errorf("%w: leader key is absent", dcs.ErrNotLeader)
	case string(kv.Value) != name:
		return fmt.Errorf("%w: leader key names %q", dcs.ErrNotLeader, kv.Value)
	case id == 0 || kv.Lease != id:
		return fmt.Errorf("%w: leader key is on lease %x, ours is %x", dcs.ErrNotLeader, kv.Lease, id)
	}
	return nil
}

// ReleaseLeader deletes the leader key if it holds name on the current
// lease; ErrNotLeader otherwise.
func (f *Fake) ReleaseLeader(ctx context.Context, name string) error {
	key := f.s.keys.Leader()
	if err := f.begin(ctx, "ReleaseLeader", key); err != nil {
		return err
	}
	defer f.end()
	if err := f.ownsLeader(key, name); err != nil {
		return err
	}
	f.s.del(key)
	return nil
}

// PutMember writes members/<name> on the current lease.
func (f *Fake) PutMember(ctx context.Context, name string, m dcs.Member) error {
	key := f.s.keys.Member(name)
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("dcstest: put member %s: %w", name, err)
	}
	return f.putOnLease(ctx, "PutMember", key, data)
}

// ReattachLeader moves the leader key from oldLease to the current lease
// if it still holds name on oldLease; ErrNotLeader otherwise.
func (f *Fake) ReattachLeader(ctx context.Context, name string, oldLease int64) error {
	key := f.s.keys.Leader()
	if err := f.begin(ctx, "ReattachLeader", key); err != nil {
		return err
	}
	defer f.end()
	kv, ok := f.s.kvs[key]
	if !ok || string(kv.Value) != name || kv.Lease != oldLease || oldLease == 0 || f.lease == 0 {
		return fmt.Errorf("%w: leader key does not hold %q on lease %x", dcs.ErrNotLeader, name, oldLease)
	}
	f.s.put(key, []byte(name), f.lease)
	return nil
}
