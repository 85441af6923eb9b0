package dcstest

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/dcs"
)

// methodCalls records which agent.DCS methods the contract scenarios call.
type methodCalls struct {
	mu   sync.Mutex
	seen map[string]bool
}

// wrap returns d with every call recorded.
func (m *methodCalls) wrap(d agent.DCS) agent.DCS { return counted{d, m} }

func (m *methodCalls) called(method string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[method]
}

// counted forwards every method of agent.DCS and records the call under
// the forwarding method's own name. A method added to agent.DCS is
// promoted from the embedded value unrecorded, so TestFakeMatchesEtcd
// fails until it is forwarded here and played by a scenario.
type counted struct {
	agent.DCS
	calls *methodCalls
}

// saw records the calling method.
func (c counted) saw() {
	pc, _, _, _ := runtime.Caller(1)
	name := runtime.FuncForPC(pc).Name()
	c.calls.mu.Lock()
	defer c.calls.mu.Unlock()
	if c.calls.seen == nil {
		c.calls.seen = map[string]bool{}
	}
	c.calls.seen[name[strings.LastIndex(name, ".")+1:]] = true
}

func (c counted) Keys() dcs.Keys { c.saw(); return c.DCS.Keys() }
func (c counted) Lease() int64   { c.saw(); return c.DCS.Lease() }
func (c counted) GrantLease(ctx context.Context, ttl time.Duration) (int64, error) {
	c.saw()
	return c.DCS.GrantLease(ctx, ttl)
}
func (c counted) KeepAlive(ctx context.Context) error { c.saw(); return c.DCS.KeepAlive(ctx) }
func (c counted) AcquireLeader(ctx context.Context, name string) (bool, error) {
	c.saw()
	return c.DCS.AcquireLeader(ctx, name)
}
func (c counted) CheckLeader(ctx context.Context, name string) error {
	c.saw()
	return c.DCS.CheckLeader(ctx, name)
}
func (c counted) ReleaseLeader(ctx context.Context, name string) error {
	c.saw()
	return c.DCS.ReleaseLeader(ctx, name)
}
func (c counted) ReattachLeader(ctx context.Context, name string, oldLease int64) error {
	c.saw()
	return c.DCS.ReattachLeader(ctx, name, oldLease)
}
func (c counted) PutMember(ctx context.Context, name string, m dcs.Member) error {
	c.saw()
	return c.DCS.PutMember(ctx, name, m)
}
func (c counted) CreateInitialize(ctx context.Context) (bool, error) {
	c.saw()
	return c.DCS.CreateInitialize(ctx)
}
func (c counted) SetInitialize(ctx context.Context, sysid string) error {
	c.saw()
	return c.DCS.SetInitialize(ctx, sysid)
}
func (c counted) DeleteInitialize(ctx context.Context) error {
	c.saw()
	return c.DCS.DeleteInitialize(ctx)
}
func (c counted) CAS(ctx context.Context, key string, value []byte, modRev int64) (int64, error) {
	c.saw()
	return c.DCS.CAS(ctx, key, value, modRev)
}
func (c counted) Put(ctx context.Context, key string, value []byte) error {
	c.saw()
	return c.DCS.Put(ctx, key, value)
}
func (c counted) PutOnLease(ctx context.Context, key string, value []byte) error {
	c.saw()
	return c.DCS.PutOnLease(ctx, key, value)
}
func (c counted) Delete(ctx context.Context, key string, modRev int64) error {
	c.saw()
	return c.DCS.Delete(ctx, key, modRev)
}
func (c counted) PutAsLeader(ctx context.Context, name, key string, value []byte) error {
	c.saw()
	return c.DCS.PutAsLeader(ctx, name, key, value)
}
func (c counted) CASAsLeader(ctx context.Context, name, key string, value []byte, modRev int64) (int64, error) {
	c.saw()
	return c.DCS.CASAsLeader(ctx, name, key, value, modRev)
}
func (c counted) DeleteAsLeader(ctx context.Context, name, key string, modRev int64) error {
	c.saw()
	return c.DCS.DeleteAsLeader(ctx, name, key, modRev)
}
func (c counted) Get(ctx context.Context, key string) (dcs.Value, bool, error) {
	c.saw()
	return c.DCS.Get(ctx, key)
}
func (c counted) Load(ctx context.Context) (*dcs.Cluster, error) { c.saw(); return c.DCS.Load(ctx) }
func (c counted) View() *dcs.Cluster                             { c.saw(); return c.DCS.View() }
func (c counted) Notify() <-chan struct{}                        { c.saw(); return c.DCS.Notify() }
func (c counted) Subscribe() (<-chan struct{}, func())           { c.saw(); return c.DCS.Subscribe() }
func (c counted) TakeChanges() dcs.Change                        { c.saw(); return c.DCS.TakeChanges() }
func (c counted) LastContact() time.Time                         { c.saw(); return c.DCS.LastContact() }
func (c counted) Classify(err error) dcs.ErrorClass              { c.saw(); return c.DCS.Classify(err) }
