package dcstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// CreateInitialize creates the initialize key with value "" if absent.
func (f *Fake) CreateInitialize(ctx context.Context) (bool, error) {
	_, err := f.CAS(ctx, f.s.keys.Initialize(), []byte{}, 0)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, dcs.ErrConflict):
		return false, nil
	}
	return false, err
}

// SetInitialize writes the system identifier.
func (f *Fake) SetInitialize(ctx context.Context, sysid string) error {
	return f.Put(ctx, f.s.keys.Initialize(), []byte(sysid))
}

// DeleteInitialize removes the initialize key.
func (f *Fake) DeleteInitialize(ctx context.Context) error {
	return f.Delete(ctx, f.s.keys.Initialize(), 0)
}

// CAS writes key if its ModRevision is modRev (0: only if absent) and
// returns the new revision; ErrConflict otherwise.
func (f *Fake) CAS(ctx context.Context, key string, value []byte, modRev int64) (int64, error) {
	if err := f.begin(ctx, "CAS", key); err != nil {
		return 0, err
	}
	defer f.end()
	if f.s.kvs[key].ModRevision != modRev {
		return 0, fmt.Errorf("%w: %s changed since revision %d", dcs.ErrConflict, key, modRev)
	}
	return f.s.put(key, value, 0), nil
}

// Put writes key unconditionally, without a lease.
func (f *Fake) Put(ctx context.Context, key string, value []byte) error {
	if err := f.begin(ctx, "Put", key); err != nil {
		return err
	}
	defer f.end()
	f.s.put(key, value, 0)
	return nil
}

// PutOnLease writes key on the current lease (ErrLeaseLost without one).
func (f *Fake) PutOnLease(ctx context.Context, key string, value []byte) error {
	return f.putOnLease(ctx, "PutOnLease", key, value)
}

// putOnLease is PutOnLease recorded as operation op (PutMember's write).
func (f *Fake) putOnLease(ctx context.Context, op, key string, value []byte) error {
	if err := f.begin(ctx, op, key); err != nil {
		return err
	}
	defer f.end()
	id, err := f.liveLease()
	if err != nil {
		return err
	}
	f.s.put(key, value, id)
	return nil
}

// Delete deletes key if its ModRevision is modRev (0: unconditionally);
// ErrConflict otherwise.
func (f *Fake) Delete(ctx context.Context, key string, modRev int64) error {
	if err := f.begin(ctx, "Delete", key); err != nil {
		return err
	}
	defer f.end()
	if modRev != 0 && f.s.kvs[key].ModRevision != modRev {
		return fmt.Errorf("%w: %s changed since revision %d", dcs.ErrConflict, key, modRev)
	}
	f.s.del(key)
	return nil
}

// Get reads one key.
func (f *Fake) Get(ctx context.Context, key string) (dcs.Value, bool, error) {
	if err := f.begin(ctx, "Get", key); err != nil {
		return dcs.Value{}, false, err
	}
	defer f.end()
	kv, ok := f.s.kvs[key]
	if !ok {
		return dcs.Value{}, false, nil
	}
	return dcs.Value{Data: slices.Clone(kv.Value), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}, true, nil
}

// Load returns a fresh view of the store.
func (f *Fake) Load(ctx context.Context) (*dcs.Cluster, error) {
	if err := f.begin(ctx, "Load", f.s.keys.Prefix()); err != nil {
		return nil, err
	}
	defer f.end()
	v := f.s.parse()
	v.LoadedAt = time.Now()
	return v, nil
}
