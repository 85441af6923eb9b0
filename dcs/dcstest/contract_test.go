package dcstest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
)

// Both implementations are the agent's DCS: the interface itself, not a
// copy that could drift.
var (
	_ agent.DCS = (*dcs.Client)(nil)
	_ agent.DCS = (*Fake)(nil)
)

// A play drives two agents' DCS through a scenario and records every
// outcome. expire ends a lease behind its holder's back, as etcd does when
// the holder stops renewing: a revoke through a third connection for etcd,
// ExpireLease for the Fake.
type play func(ctx context.Context, a, b agent.DCS, expire func(id int64)) []string

// TestFakeMatchesEtcd runs every scenario against two real clients on an
// embedded etcd and against two Fakes on one store, fails where the
// records differ, and fails unless the scenarios together call every
// method of agent.DCS on both.
func TestFakeMatchesEtcd(t *testing.T) {
	calls := map[string]*methodCalls{"etcd": {}, "fake": {}}
	for _, sc := range []struct {
		name string
		play play
	}{
		{"session", session},
		{"leader-writes", leaderWrites},
		{"watch", watching},
	} {
		t.Run(sc.name, func(t *testing.T) { contract(t, sc.name, sc.play, calls) })
	}
	if t.Failed() {
		return
	}
	dcsType := reflect.TypeFor[agent.DCS]()
	for impl, c := range calls {
		for i := range dcsType.NumMethod() {
			if m := dcsType.Method(i).Name; !c.called(m) {
				t.Errorf("no scenario calls %s on %s: add it to one so the Fake is held to etcd's behaviour", m, impl)
			}
		}
	}
}

// contract plays p on etcd and on the Fake and compares the records.
func contract(t *testing.T, scope string, p play, calls map[string]*methodCalls) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := etcdembed.Start(ctx, etcdembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	keys := dcs.NewKeys("service", scope)
	var clients [3]*dcs.Client
	var running sync.WaitGroup
	rctx, stop := context.WithCancel(ctx)
	defer running.Wait()
	defer stop()
	for i := range clients {
		c, err := dcs.Connect(ctx, dcs.Config{Endpoints: e.Endpoints()}, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
		running.Go(func() { _ = c.Run(rctx) })
	}
	want := p(ctx, calls["etcd"].wrap(clients[0]), calls["etcd"].wrap(clients[1]), func(id int64) {
		if _, err := clients[2].Raw().Revoke(ctx, clientv3.LeaseID(id)); err != nil {
			t.Errorf("revoke lease %x: %v", id, err)
		}
	})
	fa := New(keys)
	got := p(ctx, calls["fake"].wrap(fa), calls["fake"].wrap(fa.Peer()), fa.ExpireLease)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Fake differs from etcd (-etcd +fake):\n%s", d)
	}
	t.Logf("scenario:\n%s", strings.Join(want, "\n"))
}

// outcome names an error by the sentinel it wraps.
func outcome(err error) string {
	for _, s := range []error{dcs.ErrConflict, dcs.ErrNotLeader, dcs.ErrLeaseLost, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err != nil {
		return "unexpected: " + err.Error()
	}
	return "ok"
}

// recorder returns the record of a scenario and the function that adds
// one step to it: the step's name, a value and the error's outcome.
func recorder() (*[]string, func(step string, v any, err error)) {
	var log []string
	return &log, func(step string, v any, err error) {
		log = append(log, fmt.Sprintf("%s: %v %s", step, v, outcome(err)))
	}
}

// session: leases, the leader key, member keys, plain and CAS writes, the
// initialize key and a full load, up to an expired session.
func session(ctx context.Context, a, b agent.DCS, expire func(id int64)) []string {
	log, rec := recorder()
	err := a.KeepAlive(ctx)
	rec("keepalive without lease", "", err)
	_, err = a.GrantLease(ctx, 10*time.Second)
	rec("grant a", "", err)
	_, err = b.GrantLease(ctx, 10*time.Second)
	rec("grant b", "", err)
	won, err := a.AcquireLeader(ctx, "pg1")
	rec("acquire a", won, err)
	won, err = b.AcquireLeader(ctx, "pg2")
	rec("acquire b", won, err)
	won, err = a.AcquireLeader(ctx, "pg1")
	rec("re-acquire a", won, err)
	err = b.CheckLeader(ctx, "pg2")
	rec("check b", b.Classify(err).String(), err)
	rec("check a", "", a.CheckLeader(ctx, "pg1"))
	rec("release by b", "", b.ReleaseLeader(ctx, "pg1"))
	rec("member a", "", a.PutMember(ctx, "pg1", dcs.Member{Role: "master", State: "running"}))
	rec("member b", "", b.PutMember(ctx, "pg2", dcs.Member{Role: "replica", State: "running"}))
	leader, _, err := b.Get(ctx, b.Keys().Leader())
	rec("get leader", "", err)
	rec("suspect b", "", b.PutOnLease(ctx, b.Keys().Suspect("pg2"), []byte(`{"leader":"pg1","leader_revision":1}`)))
	rec("delete leader at another revision", "", b.Delete(ctx, b.Keys().Leader(), leader.ModRevision+1000))
	rev, err := a.CAS(ctx, a.Keys().Config(), []byte(`{"ttl":10}`), 0)
	rec("create config", "", err)
	_, err = b.CAS(ctx, b.Keys().Config(), []byte(`{"ttl":20}`), 0)
	rec("create config again", "", err)
	_, err = b.CAS(ctx, b.Keys().Config(), []byte(`{"ttl":20}`), rev)
	rec("cas config", "", err)
	rec("delete config stale", "", a.Delete(ctx, a.Keys().Config(), rev))
	rec("put config", "", b.Put(ctx, b.Keys().Config(), []byte(`{"ttl":30}`)))
	won, err = a.CreateInitialize(ctx)
	rec("initialize a", won, err)
	won, err = b.CreateInitialize(ctx)
	rec("initialize b", won, err)
	rec("set initialize a", "", a.SetInitialize(ctx, "7300000000000000001"))
	cl, err := b.Load(ctx)
	rec("load", describe(cl), err)
	rec("delete initialize b", "", b.DeleteInitialize(ctx))
	rec("delete absent initialize", "", b.DeleteInitialize(ctx))
	won, err = b.CreateInitialize(ctx)
	rec("initialize b after delete", won, err)
	expire(a.Lease())
	rec("check a after expiry", "", a.CheckLeader(ctx, "pg1"))
	err = a.KeepAlive(ctx)
	rec("keepalive after expiry", fmt.Sprint(a.Lease() == 0, " ", a.Classify(err)), err)
	rec("suspect a after expiry", "", a.PutOnLease(ctx, a.Keys().Suspect("pg1"), []byte(`{}`)))
	cl, err = b.Load(ctx)
	rec("load after expiry", describe(cl), err)
	rec("release a after expiry", "", a.ReleaseLeader(ctx, "pg1"))
	return *log
}

func describe(c *dcs.Cluster) string {
	if c == nil {
		return "nil"
	}
	var cfg, init string
	if c.Config != nil {
		cfg = string(c.Config.Data)
	}
	if c.Initialize != nil {
		init = fmt.Sprintf("%q", *c.Initialize)
	}
	roles := make([]string, 0, len(c.Members))
	for _, n := range c.MemberNames() {
		roles = append(roles, n+"="+c.Members[n].Role)
	}
	var suspects []string
	for n, s := range c.Suspects() {
		suspects = append(suspects, fmt.Sprintf("%s=%s@%d", n, s.Leader, s.LeaderRevision))
	}
	slices.Sort(suspects)
	return fmt.Sprintf("leader=%q members=[%s] config=%s init=%s failover=%s/%s suspects=%v",
		c.LeaderName(), strings.Join(roles, " "), cfg, init, c.Failover.Leader, c.Failover.Member, suspects)
}

// watching: the cached view the HA loop reads. b writes; a's view follows
// with the change bits of each write; Notify and Subscribe wake the
// waiter (each step waits on one of them alone, so one that never
// signals shows as a timeout); a cancelled subscription stays silent;
// LastContact moves with every update.
func watching(ctx context.Context, a, b agent.DCS, expire func(id int64)) []string {
	log, rec := recorder()
	keys := a.Keys()
	sub, unsubscribe := a.Subscribe()
	// await waits, woken by wake, until a's view satisfies seen and change
	// bits among want have arrived, and returns the bits. Every write is
	// one etcd revision, published once with all its bits, so once any
	// arrive the step's bits are complete and none leak into the next.
	await := func(wake <-chan struct{}, want dcs.Change, seen func(*dcs.Cluster) bool) (dcs.Change, error) {
		var bits dcs.Change
		for {
			if v := a.View(); v != nil && seen(v) {
				if bits |= a.TakeChanges(); bits.Has(want) {
					return bits, nil
				}
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return bits, ctx.Err()
			}
		}
	}
	anyChange := ^dcs.Change(0)
	step := func(name string, wake <-chan struct{}, write func() error, seen func(*dcs.Cluster) bool) {
		before := time.Now()
		if err := write(); err != nil {
			rec(name+" (write)", "", err)
		}
		bits, err := await(wake, anyChange, seen)
		rec(name, fmt.Sprintf("changes=%s contact=%v %s", bits, !a.LastContact().Before(before), describe(a.View())), err)
	}

	_, err := a.GrantLease(ctx, 30*time.Second)
	rec("grant a", "", err)
	_, err = b.GrantLease(ctx, 30*time.Second)
	rec("grant b", "", err)
	// Warm-up: a real client's first view comes from a full load (bits
	// "reload|…"); wait for a write of its own bit so none of it is left.
	rec("put failover", "", b.Put(ctx, keys.Failover(), []byte(`{"leader":"pg1","member":"pg2"}`)))
	_, err = await(a.Notify(), dcs.ChangeFailover, func(v *dcs.Cluster) bool { return v.Failover.Member == "pg2" })
	rec("a sees the failover key", "", err)

	step("a sees b's member (woken by Subscribe)", sub,
		func() error { return b.PutMember(ctx, "pg2", dcs.Member{Role: "replica", State: "running"}) },
		func(v *dcs.Cluster) bool { return v.Members["pg2"].State == "running" })
	step("a sees b lead (woken by Notify)", a.Notify(),
		func() error { _, err := b.AcquireLeader(ctx, "pg2"); return err },
		func(v *dcs.Cluster) bool { return v.LeaderName() == "pg2" })
	step("a sees the config", a.Notify(),
		func() error { _, err := b.CAS(ctx, keys.Config(), []byte(`{"ttl":30}`), 0); return err },
		func(v *dcs.Cluster) bool { return v.Config != nil })
	step("a sees the initialize key", sub,
		func() error { return b.SetInitialize(ctx, "7300000000000000001") },
		func(v *dcs.Cluster) bool { return v.Initialize != nil })

	// A cancelled subscription: whatever was signalled before is drained;
	// nothing after.
	unsubscribe()
	select {
	case <-sub:
	default:
	}
	step("a sees b stop (unsubscribed)", a.Notify(),
		func() error { return b.PutMember(ctx, "pg2", dcs.Member{Role: "replica", State: "stopped"}) },
		func(v *dcs.Cluster) bool { return v.Members["pg2"].State == "stopped" })
	select {
	case <-sub:
		rec("cancelled subscription signalled", true, nil)
	default:
		rec("cancelled subscription signalled", false, nil)
	}

	step("a sees b's lease expire", a.Notify(),
		func() error { expire(b.Lease()); return nil },
		func(v *dcs.Cluster) bool { return v.Leader == nil && len(v.Members) == 0 })
	rec("changes left", a.TakeChanges(), nil)
	return *log
}
