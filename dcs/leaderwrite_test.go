package dcs

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A leader whose lease etcd expired, and whose key another member then
// took, cannot overwrite the leader-only keys, though it still believes its
// lease is current; what it wrote while it led survives its lease.
func TestDeposedLeaderCannotWrite(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e), connect(t, e)
	id := mustGrant(t, a, time.Second)
	mustGrant(t, b, 30*time.Second)
	if won, err := a.AcquireLeader(ctxT(t), "pg1"); !won || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", won, err)
	}
	status, history := a.Keys().Status(), a.Keys().History()
	if err := a.PutAsLeader(ctxT(t), "pg1", status, []byte(`{"optime":1}`)); err != nil {
		t.Fatalf("leader PutAsLeader: %v", err)
	}
	hrev, err := a.CASAsLeader(ctxT(t), "pg1", history, []byte(`[]`), 0)
	if err != nil {
		t.Fatalf("leader CASAsLeader: %v", err)
	}

	eventually(t, 15*time.Second, "etcd to expire the leader's lease", func() bool {
		resp, err := a.Raw().TimeToLive(ctxT(t), clientv3.LeaseID(id))
		return err == nil && resp.TTL == -1
	})
	if won, err := b.AcquireLeader(ctxT(t), "pg2"); !won || err != nil {
		t.Fatalf("new leader AcquireLeader = %v, %v", won, err)
	}
	if a.Lease() != id {
		t.Fatal("the deposed client learnt of the expiry without asking")
	}

	if err := a.PutAsLeader(ctxT(t), "pg1", status, []byte(`{"optime":9}`)); !errors.Is(err, ErrNotLeader) {
		t.Errorf("deposed PutAsLeader = %v, want ErrNotLeader", err)
	}
	if _, err := a.CASAsLeader(ctxT(t), "pg1", history, []byte(`[[9]]`), hrev); !errors.Is(err, ErrNotLeader) {
		t.Errorf("deposed CASAsLeader at the current revision = %v, want ErrNotLeader", err)
	}
	if err := a.DeleteAsLeader(ctxT(t), "pg1", history, 0); !errors.Is(err, ErrNotLeader) {
		t.Errorf("deposed DeleteAsLeader = %v, want ErrNotLeader", err)
	}
	if v, found, _ := b.Get(ctxT(t), status); !found || string(v.Data) != `{"optime":1}` {
		t.Errorf("status = %q (found %v), want the deposed leader's last write", v.Data, found)
	}
	if v, found, _ := b.Get(ctxT(t), history); !found || v.ModRevision != hrev {
		t.Errorf("history at revision %d (found %v), want %d", v.ModRevision, found, hrev)
	}
	resp, err := b.Raw().Get(ctxT(t), status)
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != 0 {
		t.Errorf("status key: %v, %v; want it on no lease", resp, err)
	}
	if err := b.PutAsLeader(ctxT(t), "pg2", status, []byte(`{"optime":2}`)); err != nil {
		t.Errorf("new leader PutAsLeader: %v", err)
	}
}

func TestLeaderWriteRefusesTheLeaderKey(t *testing.T) {
	c := connect(t, startEtcd(t))
	mustGrant(t, c, 30*time.Second)
	if won, err := c.AcquireLeader(ctxT(t), "pg1"); !won || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", won, err)
	}
	leader := c.Keys().Leader()
	if err := c.PutAsLeader(ctxT(t), "pg1", leader, []byte("pg1")); err == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrConflict) {
		t.Errorf("PutAsLeader on the leader key = %v, want a plain error", err)
	}
	if _, err := c.CASAsLeader(ctxT(t), "pg1", leader, []byte("pg1"), 0); err == nil {
		t.Error("CASAsLeader on the leader key succeeded")
	}
	if err := c.DeleteAsLeader(ctxT(t), "pg1", leader, 0); err == nil {
		t.Error("DeleteAsLeader on the leader key succeeded")
	}
	if err := c.CheckLeader(ctxT(t), "pg1"); err != nil {
		t.Errorf("leader key changed: %v", err)
	}
}
