package dcstest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
)

func notified(f *Fake) bool {
	select {
	case <-f.Notify():
		return true
	default:
		return false
	}
}

func TestFakeLeaseExpiryDeletesKeysAndNotifies(t *testing.T) {
	f := New(dcs.NewKeys("service", "demo"))
	if f.View() == nil || f.Keys().Prefix() != "/service/demo/" {
		t.Fatal("new Fake has no view or wrong keys")
	}
	id, err := f.GrantLease(t.Context(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if won, err := f.AcquireLeader(t.Context(), "pg1"); !won || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", won, err)
	}
	if err := f.PutMember(t.Context(), "pg1", dcs.Member{Role: "master"}); err != nil {
		t.Fatal(err)
	}
	if !notified(f) || f.TakeChanges() != dcs.ChangeLeader|dcs.ChangeMembers {
		t.Fatal("writes did not notify leader|members")
	}
	if v := f.View(); v.LeaderName() != "pg1" || v.Leader.Lease != id || v.Members["pg1"].Role != "primary" {
		t.Fatalf("view = %+v", v)
	}

	f.ExpireLease(id)
	if !notified(f) || f.TakeChanges() != dcs.ChangeLeader|dcs.ChangeMembers {
		t.Error("expiry did not notify leader|members")
	}
	if v := f.View(); v.Leader != nil || len(v.Members) != 0 {
		t.Errorf("keys survived their lease: %+v", v)
	}
	if f.Lease() != id {
		t.Error("the Fake learnt of the expiry before asking")
	}
	if err := f.KeepAlive(t.Context()); !errors.Is(err, dcs.ErrLeaseLost) {
		t.Errorf("KeepAlive after expiry = %v, want ErrLeaseLost", err)
	}
	if f.Lease() != 0 || f.LeaseAlive(id) {
		t.Errorf("Lease() = %d, alive %v after ErrLeaseLost", f.Lease(), f.LeaseAlive(id))
	}
	if _, err := f.AcquireLeader(t.Context(), "pg1"); !errors.Is(err, dcs.ErrLeaseLost) {
		t.Errorf("AcquireLeader without lease = %v, want ErrLeaseLost", err)
	}
}

func TestFakeLeaderRaceBetweenPeers(t *testing.T) {
	a := New(dcs.NewKeys("service", "demo"))
	b := a.Peer()
	for _, f := range []*Fake{a, b} {
		if _, err := f.GrantLease(t.Context(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if won, _ := a.AcquireLeader(t.Context(), "pg1"); !won {
		t.Fatal("first acquire lost")
	}
	if won, err := b.AcquireLeader(t.Context(), "pg2"); won || err != nil {
		t.Fatalf("second acquire = %v, %v", won, err)
	}
	if b.View().LeaderName() != "pg1" || !notified(b) {
		t.Error("peer did not see the leader")
	}
	if err := b.CheckLeader(t.Context(), "pg2"); !errors.Is(err, dcs.ErrNotLeader) {
		t.Errorf("loser CheckLeader = %v", err)
	}
	if err := b.ReleaseLeader(t.Context(), "pg1"); !errors.Is(err, dcs.ErrNotLeader) {
		t.Errorf("non-owner ReleaseLeader = %v", err)
	}
	if err := a.ReleaseLeader(t.Context(), "pg1"); err != nil {
		t.Errorf("owner ReleaseLeader = %v", err)
	}
	if won, _ := b.AcquireLeader(t.Context(), "pg2"); !won {
		t.Error("acquire after release lost")
	}
}

func TestFakeDown(t *testing.T) {
	a := New(dcs.NewKeys("service", "demo"))
	b := a.Peer()
	before := b.LastContact()
	b.SetDown(true)
	if _, err := b.GrantLease(t.Context(), time.Second); !errors.Is(err, ErrDown) {
		t.Errorf("GrantLease while down = %v, want ErrDown", err)
	}
	if _, err := b.Load(t.Context()); !errors.Is(err, ErrDown) {
		t.Errorf("Load while down = %v, want ErrDown", err)
	}
	if err := a.Put(t.Context(), a.Keys().Config(), []byte(`{"ttl":30}`)); err != nil {
		t.Fatal(err)
	}
	if b.View().Config != nil || notified(b) {
		t.Error("a down Fake saw a write")
	}
	if !b.LastContact().Equal(before) {
		t.Error("LastContact advanced while down")
	}
	b.SetDown(false)
	if !notified(b) || b.TakeChanges() != dcs.ChangeReload|dcs.ChangeConfig || b.View().Config == nil {
		t.Error("reconnect did not reload the view")
	}
}

func TestFakeCASAndInitialize(t *testing.T) {
	f := New(dcs.NewKeys("service", "demo"))
	ctx := t.Context()
	key := f.Keys().Config()
	rev, err := f.CAS(ctx, key, []byte("{}"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.CAS(ctx, key, []byte("{}"), 0); !errors.Is(err, dcs.ErrConflict) {
		t.Errorf("create-only on existing = %v", err)
	}
	rev2, err := f.CAS(ctx, key, []byte(`{"ttl":5}`), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("CAS = %d, %v", rev2, err)
	}
	if _, err := f.CAS(ctx, key, []byte("{}"), rev); !errors.Is(err, dcs.ErrConflict) {
		t.Errorf("stale CAS = %v", err)
	}
	if v, ok, _ := f.Get(ctx, key); !ok || v.ModRevision != rev2 || v.CreateRevision != rev || string(v.Data) != `{"ttl":5}` {
		t.Errorf("Get = %+v, %v", v, ok)
	}
	if err := f.Delete(ctx, key, rev); !errors.Is(err, dcs.ErrConflict) {
		t.Errorf("stale Delete = %v", err)
	}
	if won, _ := f.CreateInitialize(ctx); !won {
		t.Error("first CreateInitialize lost")
	}
	if won, err := f.CreateInitialize(ctx); won || err != nil {
		t.Errorf("second CreateInitialize = %v, %v", won, err)
	}
	if err := f.SetInitialize(ctx, "42"); err != nil || *f.View().Initialize != "42" {
		t.Errorf("SetInitialize: %v", err)
	}
	if err := f.DeleteInitialize(ctx); err != nil || f.View().Initialize != nil {
		t.Errorf("DeleteInitialize: %v", err)
	}
}

func TestFakeIntercept(t *testing.T) {
	f := New(dcs.NewKeys("service", "demo"))
	boom := errors.New("boom")
	f.Intercept(func(op, key string) error {
		if op == "CAS" && key == f.s.keys.Config() {
			return boom
		}
		return nil
	})
	if _, err := f.CAS(t.Context(), f.Keys().Config(), nil, 0); !errors.Is(err, boom) {
		t.Errorf("intercepted CAS = %v", err)
	}
	if _, err := f.CAS(t.Context(), f.Keys().Status(), nil, 0); err != nil {
		t.Errorf("other CAS = %v", err)
	}
	f.Intercept(nil)
	if _, err := f.CAS(t.Context(), f.Keys().Config(), nil, 0); err != nil {
		t.Errorf("CAS after removing the hook = %v", err)
	}
}

func TestFakeLeaderWritesInterceptAndDown(t *testing.T) {
	f := New(dcs.NewKeys("service", "demo"))
	ctx := t.Context()
	if _, err := f.GrantLease(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if won, _ := f.AcquireLeader(ctx, "pg1"); !won {
		t.Fatal("acquire lost")
	}
	var ops []string
	f.Intercept(func(op, key string) error {
		ops = append(ops, op+" "+f.s.keys.Name(key))
		return nil
	})
	status := f.Keys().Status()
	if err := f.PutAsLeader(ctx, "pg1", status, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	v, _, _ := f.Get(ctx, status)
	rev, err := f.CASAsLeader(ctx, "pg1", status, []byte(`{"optime":1}`), v.ModRevision)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteAsLeader(ctx, "pg1", status, rev); err != nil {
		t.Fatal(err)
	}
	f.Intercept(nil)
	want := "[PutAsLeader status Get status CASAsLeader status DeleteAsLeader status]"
	if got := fmt.Sprint(ops); got != want {
		t.Errorf("intercepted %s, want %s", got, want)
	}
	f.SetDown(true)
	if err := f.PutAsLeader(ctx, "pg1", status, nil); !errors.Is(err, ErrDown) {
		t.Errorf("PutAsLeader while down = %v, want ErrDown", err)
	}
}
