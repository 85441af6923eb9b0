package switchover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/boundedlog"
)

// Store is where the records live; the agent implements it over its
// bounded etcd client (every call bounded by retry_timeout and the lease
// deadline). Methods are safe for concurrent use when the client is.
type Store interface {
	// Get reads a record's JSON fresh from etcd with its ModRevision;
	// found is false when there is no such record.
	Get(ctx context.Context, id string) (data []byte, rev int64, found bool, err error)
	// CAS writes a record if its ModRevision is still rev (0: it must not
	// exist yet) and returns the new ModRevision; a lost race is
	// dcs.ErrConflict.
	CAS(ctx context.Context, id string, data []byte, rev int64) (int64, error)
	// IDs lists the kept records, oldest first (from the watch-fed view:
	// no etcd query).
	IDs() []string
	// Delete removes a record.
	Delete(ctx context.Context, id string) error
}

// ErrNotFound: the record does not exist (or was deleted under us).
var ErrNotFound = errors.New("switchover record not found")

// updateAttempts bounds Update's retries: only an abort request or a
// second driver races the driver's writes, so a few suffice.
const updateAttempts = 5

// Read reads a record fresh with its revision; ErrNotFound when absent.
func Read(ctx context.Context, st Store, id string) (*Record, int64, error) {
	data, rev, found, err := st.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, ErrNotFound
	}
	r, err := Decode(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", id, err)
	}
	return r, rev, nil
}

// Update applies change to a fresh read of the record and writes it with
// a CAS on its revision, re-reading and retrying when another writer (an
// abort request) got there first. An error from change is returned with
// the record as read, and nothing is written.
func Update(ctx context.Context, st Store, id string, change func(*Record) error) (*Record, error) {
	for range updateAttempts {
		r, rev, err := Read(ctx, st, id)
		if err != nil {
			return nil, err
		}
		if err := change(r); err != nil {
			return r, err
		}
		data, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("switchover record %s: %w", id, err)
		}
		_, err = st.CAS(ctx, id, data, rev)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, dcs.ErrConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("switchover record %s: too many concurrent updates", id)
}

// Create writes a new record; dcs.ErrConflict when the id is taken.
func Create(ctx context.Context, st Store, r *Record) (rev int64, err error) {
	data, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("switchover record %s: %w", r.ID, err)
	}
	return st.CAS(ctx, r.ID, data, 0)
}

// Trim removes the oldest records beyond keep (the bounded history).
func Trim(ctx context.Context, st Store, keep int) error {
	return boundedlog.Trim(ctx, st.IDs(), keep, st.Delete)
}
