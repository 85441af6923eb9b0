package dcstest

import (
	"context"
	"fmt"

	"github.com/regent-ha/regent/dcs"
)

// PutAsLeader writes key whatever its revision, only while the leader key
// holds name on the current lease; ErrNotLeader otherwise (also without a
// current lease), and the key is unchanged. As dcs.Client.PutAsLeader.
func (f *Fake) PutAsLeader(ctx context.Context, name, key string, value []byte) error {
	_, err := f.asLeader(ctx, "PutAsLeader", name, key, func() (int64, error) {
		return f.s.put(key, value, 0), nil
	})
	return err
}

// CASAsLeader writes key only while the leader key holds name on the
// current lease (ErrNotLeader otherwise) and only if its ModRevision is
// modRev, 0 meaning absent (ErrConflict otherwise); it returns the new
// revision. As dcs.Client.CASAsLeader.
func (f *Fake) CASAsLeader(ctx context.Context, name, key string, value []byte, modRev int64) (int64, error) {
	return f.asLeader(ctx, "CASAsLeader", name, key, func() (int64, error) {
		if f.s.kvs[key].ModRevision != modRev {
			return 0, fmt.Errorf("%w: cas as leader %s: changed since revision %d", dcs.ErrConflict, key, modRev)
		}
		return f.s.put(key, value, 0), nil
	})
}

// DeleteAsLeader deletes key only while the leader key holds name on the
// current lease (ErrNotLeader otherwise) and, when modRev is not 0, only
// if its ModRevision is modRev (ErrConflict otherwise). As
// dcs.Client.DeleteAsLeader.
func (f *Fake) DeleteAsLeader(ctx context.Context, name, key string, modRev int64) error {
	_, err := f.asLeader(ctx, "DeleteAsLeader", name, key, func() (int64, error) {
		if modRev != 0 && f.s.kvs[key].ModRevision != modRev {
			return 0, fmt.Errorf("%w: delete as leader %s: changed since revision %d", dcs.ErrConflict, key, modRev)
		}
		f.s.del(key)
		return f.s.rev, nil
	})
	return err
}

// asLeader checks, in the order the real client does, that key is not the
// leader key, that there is a current lease (both without touching the
// store), then ctx, down and the hook, then the leader key; write runs
// under the lock only when all pass.
func (f *Fake) asLeader(ctx context.Context, op, name, key string, write func() (int64, error)) (int64, error) {
	leader := f.s.keys.Leader()
	if key == leader {
		return 0, fmt.Errorf("dcstest: %s: %s is the leader key", op, key)
	}
	f.s.mu.Lock()
	id := f.lease
	f.s.mu.Unlock()
	if id == 0 {
		return 0, fmt.Errorf("%w: %s %s: no current lease", dcs.ErrNotLeader, op, key)
	}
	if err := f.begin(ctx, op, key); err != nil {
		return 0, err
	}
	defer f.end()
	if err := f.ownsLeaderOn(leader, name, id); err != nil {
		return 0, fmt.Errorf("%s %s as %q: %w", op, key, name, err)
	}
	return write()
}
