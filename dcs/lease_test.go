package dcs

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestKeepAliveAfterExpiryIsLeaseLost(t *testing.T) {
	c := connect(t, startEtcd(t))
	id := mustGrant(t, c, time.Second)
	if err := c.PutMember(ctxT(t), "pg1", Member{State: "running", Role: "replica"}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := c.KeepAlive(ctxT(t)); err != nil {
		t.Fatalf("KeepAlive on a live lease: %v", err)
	}
	if lc := c.LastContact(); lc.Before(sent) {
		t.Errorf("LastContact %v before the renewal was sent %v", lc, sent)
	}

	// Let etcd expire the lease: poll its remaining TTL, no fixed sleep.
	eventually(t, 15*time.Second, "etcd to expire the lease", func() bool {
		resp, err := c.Raw().TimeToLive(ctxT(t), clientv3.LeaseID(id))
		return err == nil && resp.TTL == -1
	})
	if err := c.KeepAlive(ctxT(t)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("KeepAlive after expiry = %v, want ErrLeaseLost", err)
	}
	if c.Lease() != 0 {
		t.Errorf("Lease() = %s after ErrLeaseLost, want 0", hex(c.Lease()))
	}
	if _, found, _ := c.Get(ctxT(t), c.Keys().Member("pg1")); found {
		t.Error("member key survived its lease")
	}
	if err := c.KeepAlive(ctxT(t)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("KeepAlive without lease = %v, want ErrLeaseLost", err)
	}
	if err := c.PutMember(ctxT(t), "pg1", Member{}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("PutMember without lease = %v, want ErrLeaseLost", err)
	}
	// A new lease works again.
	mustGrant(t, c, 10*time.Second)
	if err := c.KeepAlive(ctxT(t)); err != nil {
		t.Errorf("KeepAlive on the new lease: %v", err)
	}
}

func TestWriteOnExpiredLeaseIsLeaseLost(t *testing.T) {
	c := connect(t, startEtcd(t))
	id := mustGrant(t, c, 10*time.Second)
	// Revoke behind the client's back: its current lease is now unknown to etcd.
	if _, err := c.Raw().Revoke(ctxT(t), clientv3.LeaseID(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLeader(ctxT(t), "pg1"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("AcquireLeader on a revoked lease = %v, want ErrLeaseLost", err)
	}
	if c.Lease() != 0 {
		t.Errorf("Lease() = %s, want 0", hex(c.Lease()))
	}
}

func TestGrantLeaseRoundsUpAndReplaces(t *testing.T) {
	c := connect(t, startEtcd(t))
	first := mustGrant(t, c, 10*time.Second)
	second := mustGrant(t, c, 10500*time.Millisecond)
	if first == second || c.Lease() != second {
		t.Fatalf("Lease() = %s, first %s, second %s", hex(c.Lease()), hex(first), hex(second))
	}
	resp, err := c.Raw().TimeToLive(ctxT(t), clientv3.LeaseID(second))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GrantedTTL != 11 {
		t.Errorf("granted TTL = %d, want 11 (10.5s rounded up)", resp.GrantedTTL)
	}
	if _, err := c.GrantLease(ctxT(t), 0); err == nil {
		t.Error("GrantLease(0) succeeded")
	}
}
