package dcstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// ErrDown is wrapped by every error of a Fake that SetDown(true) cut off.
var ErrDown = errors.New("dcstest: etcd unreachable")

// Fake is an in-memory *dcs.Client for one agent. It has the same methods
// with the same semantics and sentinel errors; it is safe for concurrent
// use and never blocks except on its lock.
type Fake struct {
	s *store

	lease   int64
	down    bool
	hook    func(op, key string) error
	view    *dcs.Cluster
	changes dcs.Change
	notify  chan struct{}
	subMu   sync.Mutex
	subs    []chan struct{}
	contact time.Time
	// hang makes every call wait for its context (SetHang).
	hang atomic.Bool
}

// New returns a Fake on a new, empty store. Unlike the real client, its
// view is never nil: it starts as the empty cluster at revision 0.
func New(keys dcs.Keys) *Fake {
	s := &store{keys: keys, kvs: map[string]dcs.KV{}, leases: map[int64]bool{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newClient()
}

// Peer returns another Fake (another agent) on the same store, with no
// lease, up, and the current view.
func (f *Fake) Peer() *Fake {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.newClient()
}

func (s *store) newClient() *Fake {
	f := &Fake{s: s, notify: make(chan struct{}, 1)}
	v := *s.parse()
	v.LoadedAt = time.Now()
	f.view = &v
	s.clients = append(s.clients, f)
	return f
}

// publish installs view (shared, immutable) with this Fake's LoadedAt.
func (f *Fake) publish(view *dcs.Cluster, bits dcs.Change) {
	v := *view
	v.LoadedAt = time.Now()
	f.view = &v
	f.changes |= bits
	f.contact = v.LoadedAt
	select {
	case f.notify <- struct{}{}:
	default:
	}
	f.subMu.Lock()
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.subMu.Unlock()
}

// Subscribe returns a coalescing channel signalled after every view change.
func (f *Fake) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.subMu.Lock()
	f.subs = append(f.subs, ch)
	f.subMu.Unlock()
	return ch, func() {
		f.subMu.Lock()
		defer f.subMu.Unlock()
		for i, c := range f.subs {
			if c == ch {
				f.subs = append(f.subs[:i], f.subs[i+1:]...)
				return
			}
		}
	}
}

// Keys returns the key layout.
func (f *Fake) Keys() dcs.Keys { return f.s.keys }

// SetDown cuts this Fake off from the store (true) or reconnects it. While
// down every call fails with ErrDown and the view goes stale; on reconnect
// the view is reloaded with ChangeReload and the bits that differ.
func (f *Fake) SetDown(down bool) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if f.down && !down {
		view := f.s.parse()
		f.publish(view, dcs.ChangeReload|dcs.Diff(f.s.keys, f.view, view))
	}
	f.down = down
}

// SetHang makes every call that talks to the store block until its
// context ends (true), as etcd's client does while it cannot reach a
// member, or answer again (false). A call whose context has no deadline
// then blocks forever: what the agent's bounded calls must never allow.
func (f *Fake) SetHang(hang bool) { f.hang.Store(hang) }

// Intercept installs fn, called with the operation name (the method name,
// e.g. "CAS") and key before every call that talks to the store; a non-nil
// return fails the call with that error. fn runs under the Fake's lock and
// must not call the Fake. nil removes it.
func (f *Fake) Intercept(fn func(op, key string) error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.hook = fn
}

// ExpireLease expires lease id as etcd would: the lease is gone and the
// keys attached to it are deleted. Fakes holding it learn on their next
// KeepAlive or write.
func (f *Fake) ExpireLease(id int64) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.dropLease(id)
}

// LeaseAlive reports whether the store still has lease id.
func (f *Fake) LeaseAlive(id int64) bool {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.leases[id]
}

// Revision returns the store's current revision.
func (f *Fake) Revision() int64 {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.rev
}

// begin locks the store and checks ctx, down and the hook. On nil error the
// caller holds the lock and must call f.end.
func (f *Fake) begin(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dcstest: %s %s: %w", op, key, err)
	}
	if f.hang.Load() {
		<-ctx.Done()
		return fmt.Errorf("dcstest: %s %s: %w", op, key, ctx.Err())
	}
	f.s.mu.Lock()
	if f.down {
		f.s.mu.Unlock()
		return fmt.Errorf("dcstest: %s %s: %w", op, key, ErrDown)
	}
	if f.hook != nil {
		if err := f.hook(op, key); err != nil {
			f.s.mu.Unlock()
			return err
		}
	}
	return nil
}

// end records the store's answer and unlocks.
func (f *Fake) end() {
	f.contact = time.Now()
	f.s.mu.Unlock()
}

// Lease returns the current lease id, 0 when none.
func (f *Fake) Lease() int64 {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.lease
}

// View returns the latest view (never nil).
func (f *Fake) View() *dcs.Cluster {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.view
}

// Notify returns the capacity-1 change signal.
func (f *Fake) Notify() <-chan struct{} { return f.notify }

// TakeChanges returns and clears the accumulated change bits.
func (f *Fake) TakeChanges() dcs.Change {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	c := f.changes
	f.changes = 0
	return c
}

// LastContact returns the time of the last successful call or view update.
func (f *Fake) LastContact() time.Time {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.contact
}

// Classify classifies err as the real client does; ErrDown (the Fake cut
// off from the store) reads as unreachable.
func (f *Fake) Classify(err error) dcs.ErrorClass {
	if errors.Is(err, ErrDown) {
		return dcs.ErrClassUnreachable
	}
	return dcs.ClassifyError(err)
}
