package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// ioLimits is what bounds one etcd or PostgreSQL call, published by the
// loop (setLease, applyConfig) so that any goroutine can read it.
type ioLimits struct {
	retry time.Duration
	// deadline is the lease deadline while leading, zero otherwise.
	deadline time.Time
	// loopWait is published for the REST goroutines (awaitNewLeader), which
	// must not read the loop-owned dynamic config.
	loopWait time.Duration
	// ttl bounds how old the cluster view may be when the REST API serves
	// it (apiView), as it bounds ViewFresh for the loop.
	ttl time.Duration
	// failsafeMode is the dynamic config's failsafe_mode, for POST
	// /failsafe; probing caps etcd calls at failsafeProbe (a leader
	// bridging an etcd outage in failsafe mode).
	failsafeMode, probing bool
}

// publishLimits publishes the current bounds; loop goroutine only.
func (a *Agent) publishLimits() {
	l := &ioLimits{retry: a.dyn.RetryTimeout, loopWait: a.dyn.LoopWait, ttl: a.dyn.TTL,
		failsafeMode: a.dyn.FailsafeMode, probing: a.failsafeProbing()}
	if a.lease.leading {
		l.deadline = a.lease.deadline()
	}
	a.limits.Store(l)
}

// ioDeadline is the latest moment a call started now may still run:
// now + retry_timeout, and while leading no later than the lease deadline.
// Safe for concurrent use.
func (a *Agent) ioDeadline() time.Time {
	l := a.limits.Load()
	d := a.now().Add(l.retry)
	if !l.deadline.IsZero() && l.deadline.Before(d) {
		d = l.deadline
	}
	return d
}

// dcsDeadline is ioDeadline for etcd calls, and no later than
// failsafeProbe from now while a leader bridges an etcd outage in
// failsafe mode (failsafeProbe says why). Safe for concurrent use.
func (a *Agent) dcsDeadline() time.Time {
	d := a.ioDeadline()
	if a.limits.Load().probing {
		if p := a.now().Add(failsafeProbe); p.Before(d) {
			d = p
		}
	}
	return d
}

// boundedCall runs call with ctx bounded by bound(): the one shape of
// every wrapper of boundedDCS and boundedPostgres.
func boundedCall[T any](ctx context.Context, bound func() time.Time, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithDeadline(ctx, bound())
	defer cancel()
	return call(ctx)
}

// boundedDo is boundedCall for a call that returns only an error.
func boundedDo(ctx context.Context, bound func() time.Time, call func(context.Context) error) error {
	ctx, cancel := context.WithDeadline(ctx, bound())
	defer cancel()
	return call(ctx)
}

// boundedDCS is the only DCS the agent holds: every call that takes a
// context gets one bounded by ioDeadline, so no path (a tick, a switchover
// step, a command, a REST handler) can wait on etcd past retry_timeout or
// past the moment the leader must fence — etcd's client otherwise waits for
// a connection forever. It embeds nothing: a method added to DCS does not
// compile until it is written here, bounded.
type boundedDCS struct {
	inner DCS
	bound func() time.Time
}

func (b boundedDCS) Keys() dcs.Keys                       { return b.inner.Keys() }
func (b boundedDCS) Lease() int64                         { return b.inner.Lease() }
func (b boundedDCS) View() *dcs.Cluster                   { return b.inner.View() }
func (b boundedDCS) Notify() <-chan struct{}              { return b.inner.Notify() }
func (b boundedDCS) Subscribe() (<-chan struct{}, func()) { return b.inner.Subscribe() }
func (b boundedDCS) TakeChanges() dcs.Change              { return b.inner.TakeChanges() }
func (b boundedDCS) LastContact() time.Time               { return b.inner.LastContact() }
func (b boundedDCS) Classify(err error) dcs.ErrorClass    { return b.inner.Classify(err) }

func (b boundedDCS) GrantLease(ctx context.Context, ttl time.Duration) (int64, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) (int64, error) { return b.inner.GrantLease(ctx, ttl) })
}

func (b boundedDCS) KeepAlive(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.inner.KeepAlive)
}

func (b boundedDCS) AcquireLeader(ctx context.Context, name string) (bool, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) (bool, error) { return b.inner.AcquireLeader(ctx, name) })
}

func (b boundedDCS) CheckLeader(ctx context.Context, name string) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.CheckLeader(ctx, name) })
}

func (b boundedDCS) ReleaseLeader(ctx context.Context, name string) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.ReleaseLeader(ctx, name) })
}

func (b boundedDCS) ReattachLeader(ctx context.Context, name string, oldLease int64) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.ReattachLeader(ctx, name, oldLease) })
}

func (b boundedDCS) PutMember(ctx context.Context, name string, m dcs.Member) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.PutMember(ctx, name, m) })
}

func (b boundedDCS) CreateInitialize(ctx context.Context) (bool, error) {
	return boundedCall(ctx, b.bound, b.inner.CreateInitialize)
}

func (b boundedDCS) SetInitialize(ctx context.Context, sysid string) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.SetInitialize(ctx, sysid) })
}

func (b boundedDCS) DeleteInitialize(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.inner.DeleteInitialize)
}

func (b boundedDCS) PutOnLease(ctx context.Context, key string, value []byte) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.PutOnLease(ctx, key, value) })
}

func (b boundedDCS) CAS(ctx context.Context, key string, value []byte, modRev int64) (int64, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) (int64, error) { return b.inner.CAS(ctx, key, value, modRev) })
}

func (b boundedDCS) Put(ctx context.Context, key string, value []byte) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.Put(ctx, key, value) })
}

func (b boundedDCS) Delete(ctx context.Context, key string, modRev int64) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.Delete(ctx, key, modRev) })
}

func (b boundedDCS) PutAsLeader(ctx context.Context, name, key string, value []byte) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.PutAsLeader(ctx, name, key, value) })
}

func (b boundedDCS) CASAsLeader(ctx context.Context, name, key string, value []byte, modRev int64) (int64, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) (int64, error) { return b.inner.CASAsLeader(ctx, name, key, value, modRev) })
}

func (b boundedDCS) DeleteAsLeader(ctx context.Context, name, key string, modRev int64) error {
	return boundedDo(ctx, b.bound, func(ctx context.Context) error { return b.inner.DeleteAsLeader(ctx, name, key, modRev) })
}

func (b boundedDCS) Get(ctx context.Context, key string) (v dcs.Value, ok bool, err error) {
	err = boundedDo(ctx, b.bound, func(ctx context.Context) (err error) { v, ok, err = b.inner.Get(ctx, key); return err })
	return v, ok, err
}

func (b boundedDCS) Load(ctx context.Context) (*dcs.Cluster, error) {
	return boundedCall(ctx, b.bound, b.inner.Load)
}

// boundedPostgres bounds the PostgreSQL calls that are queries or short
// commands by ioDeadline, like boundedDCS. The long operations (InitDB,
// Start, Stop, Promote, Clone, Rewind) pass through: each caller gives
// them an explicit budget (a stop budget, the lease deadline for a
// leader's start and promote, cloneTimeout), and the ones that can outlast
// a lease run beside the loop (restart, the switchover's stop).
type boundedPostgres struct {
	Postgres
	bound func() time.Time
}

func (b boundedPostgres) Status(ctx context.Context) (postgres.Status, error) {
	return boundedCall(ctx, b.bound, b.Postgres.Status)
}

func (b boundedPostgres) ControlData(ctx context.Context) (postgres.ControlData, error) {
	return boundedCall(ctx, b.bound, b.Postgres.ControlData)
}

func (b boundedPostgres) SetupRoles(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.Postgres.SetupRoles)
}

func (b boundedPostgres) Checkpoint(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.Postgres.Checkpoint)
}

func (b boundedPostgres) ProbeWrite(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.Postgres.ProbeWrite)
}

func (b boundedPostgres) Reload(ctx context.Context) error {
	return boundedDo(ctx, b.bound, b.Postgres.Reload)
}

func (b boundedPostgres) TimelineHistory(ctx context.Context, from postgres.Upstream, timeline uint32) ([]postgres.TimelineSwitch, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) ([]postgres.TimelineSwitch, error) {
		return b.Postgres.TimelineHistory(ctx, from, timeline)
	})
}

func (b boundedPostgres) SourceCheckpointTimeline(ctx context.Context, from postgres.Upstream, checkpoint bool) (uint32, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) (uint32, error) {
		return b.Postgres.SourceCheckpointTimeline(ctx, from, checkpoint)
	})
}

func (b boundedPostgres) EnsureSlots(ctx context.Context, p postgres.SlotPolicy) ([]postgres.Slot, error) {
	return boundedCall(ctx, b.bound, func(ctx context.Context) ([]postgres.Slot, error) { return b.Postgres.EnsureSlots(ctx, p) })
}
