package dcstest

import (
	"context"
	"fmt"
	"time"

	"github.com/regent-ha/regent/agent"
)

// leaderWrites drives the leader-guarded writes through a leader that
// holds its key and through every way of not holding it: another member's
// key, the right name on another lease, our lease under another name, our
// key left on an older lease, our key gone with an expired lease, no lease
// at all. After every write it records the outcome and whether the target
// key moved (read back by b), so "ErrNotLeader, unchanged" is checked on
// both implementations.
func leaderWrites(ctx context.Context, a, b agent.DCS, expire func(id int64)) []string {
	log, rec := recorder()
	keys := a.Keys()
	status, history, sync, failover := keys.Status(), keys.History(), keys.Sync(), keys.Failover()
	// try runs write, then records its outcome, whether key's ModRevision
	// moved, the value it holds, and whether a returned revision is the
	// key's new ModRevision.
	try := func(step, key string, write func() (int64, error)) int64 {
		before, _, err := b.Get(ctx, key)
		if err != nil {
			rec(step+" (read before)", "", err)
		}
		rev, werr := write()
		after, found, err := b.Get(ctx, key)
		if err != nil {
			rec(step+" (read after)", "", err)
		}
		state := fmt.Sprintf("moved=%v found=%v value=%q", after.ModRevision != before.ModRevision, found, after.Data)
		if rev != 0 {
			state += fmt.Sprintf(" rev-is-mod=%v", rev == after.ModRevision)
		}
		rec(step, state, werr)
		return rev
	}
	put := func(c agent.DCS, name, key, value string) func() (int64, error) {
		return func() (int64, error) { return 0, c.PutAsLeader(ctx, name, key, []byte(value)) }
	}
	cas := func(c agent.DCS, name, key, value string, modRev int64) func() (int64, error) {
		return func() (int64, error) { return c.CASAsLeader(ctx, name, key, []byte(value), modRev) }
	}
	del := func(c agent.DCS, name, key string, modRev int64) func() (int64, error) {
		return func() (int64, error) { return 0, c.DeleteAsLeader(ctx, name, key, modRev) }
	}

	try("put without any lease", status, put(a, "pg1", status, `{"optime":0}`))
	oldA, err := a.GrantLease(ctx, 30*time.Second)
	rec("grant a", "", err)
	_, err = b.GrantLease(ctx, 30*time.Second)
	rec("grant b", "", err)
	try("put before anyone leads", status, put(a, "pg1", status, `{"optime":0}`))
	won, err := a.AcquireLeader(ctx, "pg1")
	rec("acquire a", won, err)

	// The leader writes; nobody else can.
	try("leader puts status", status, put(a, "pg1", status, `{"optime":1}`))
	try("other member puts status", status, put(b, "pg2", status, `{"optime":9}`))
	try("other member as the leader's name", status, put(b, "pg1", status, `{"optime":9}`))
	try("leader's lease under another name", status, put(a, "pg2", status, `{"optime":9}`))
	try("leader puts status again", status, put(a, "pg1", status, `{"optime":2}`))

	// Revision compares behind the guard.
	h1 := try("leader creates history", history, cas(a, "pg1", history, `[[1,0,"a"]]`, 0))
	try("leader creates history again", history, cas(a, "pg1", history, `[]`, 0))
	h2 := try("leader cas history", history, cas(a, "pg1", history, `[[1,0,"a"],[2,1,"b"]]`, h1))
	try("leader cas history stale", history, cas(a, "pg1", history, `[]`, h1))
	try("other member cas history", history, cas(b, "pg2", history, `[]`, h2))
	try("other member cas history stale", history, cas(b, "pg2", history, `[]`, h1))
	s1 := try("leader creates sync", sync, cas(a, "pg1", sync, `{"leader":"pg1","sync_standby":"pg2"}`, 0))
	try("other member deletes sync", sync, del(b, "pg2", sync, s1))
	try("other member deletes sync any", sync, del(b, "pg2", sync, 0))
	try("leader deletes sync stale", sync, del(a, "pg1", sync, h1))
	try("leader deletes sync", sync, del(a, "pg1", sync, s1))
	try("leader deletes absent sync any", sync, del(a, "pg1", sync, 0))
	try("leader deletes absent sync at revision", sync, del(a, "pg1", sync, s1))
	try("leader puts failover", failover, put(a, "pg1", failover, `{"leader":"pg1","member":"pg2"}`))

	// The leader key itself is never written this way.
	leaderKey := keys.Leader()
	before, _, _ := b.Get(ctx, leaderKey)
	err = a.PutAsLeader(ctx, "pg1", leaderKey, []byte("pg1"))
	after, _, _ := b.Get(ctx, leaderKey)
	rec("put the leader key", fmt.Sprintf("refused=%v moved=%v", err != nil, after.ModRevision != before.ModRevision), nil)

	// A new lease leaves the key on the old one until it is reattached.
	_, err = a.GrantLease(ctx, 30*time.Second)
	rec("grant a again", "", err)
	try("put with the key on the old lease", status, put(a, "pg1", status, `{"optime":9}`))
	rec("reattach a", "", a.ReattachLeader(ctx, "pg1", oldA))
	try("put after reattach", status, put(a, "pg1", status, `{"optime":3}`))

	// Deposed: the lease expires, the key goes, another member takes it;
	// the old leader has not noticed yet (no keepalive since).
	expire(a.Lease())
	try("deposed puts, no leader key", status, put(a, "pg1", status, `{"optime":9}`))
	won, err = b.AcquireLeader(ctx, "pg2")
	rec("acquire b", won, err)
	st, _, err := b.Get(ctx, status)
	rec("read status", "", err)
	try("deposed puts status", status, put(a, "pg1", status, `{"optime":9}`))
	try("deposed cas status", status, cas(a, "pg1", status, `{"optime":9}`, st.ModRevision))
	try("deposed cas history", history, cas(a, "pg1", history, `[]`, h2))
	try("deposed deletes failover", failover, del(a, "pg1", failover, 0))
	try("new leader puts status", status, put(b, "pg2", status, `{"optime":4}`))
	try("new leader deletes failover", failover, del(b, "pg2", failover, 0))

	// Once it learns the lease is gone it has none.
	err = a.KeepAlive(ctx)
	rec("keepalive deposed", a.Lease() == 0, err)
	try("put with no lease", status, put(a, "pg1", status, `{"optime":9}`))
	return *log
}
