package dcs

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/freeport"
)

func TestConnectToDeadEndpointFailsWithinDialTimeout(t *testing.T) {
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", port)}, DialTimeout: 500 * time.Millisecond}
	withAuth := cfg
	withAuth.Username, withAuth.Password = "root", "pw" // authenticates while dialling
	for name, cfg := range map[string]Config{"plain": cfg, "auth": withAuth} {
		start := time.Now()
		c, err := Connect(t.Context(), cfg, NewKeys("service", "dead"), testLogger(t))
		elapsed := time.Since(start)
		if err == nil {
			_ = c.Close()
			t.Fatalf("%s: Connect to a dead endpoint succeeded", name)
		}
		if elapsed > cfg.DialTimeout+time.Second {
			t.Errorf("%s: Connect took %s, want about DialTimeout %s", name, elapsed, cfg.DialTimeout)
		}
		t.Logf("%s: Connect failed after %s: %v", name, elapsed, err)
	}
}

func TestConnectRejectsInvalidConfig(t *testing.T) {
	if _, err := Connect(t.Context(), Config{}, NewKeys("service", "x"), nil); err == nil {
		t.Fatal("Connect with no endpoints succeeded")
	}
}

func TestConnectWithUsernameAndPassword(t *testing.T) {
	e := startEtcd(t)
	admin := connect(t, e).Raw()
	ctx := ctxT(t)
	for _, step := range []func() error{
		func() error { _, err := admin.RoleAdd(ctx, "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "root", "s3cret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enabling auth: %v", err)
		}
	}
	keys := NewKeys("service", "auth")
	cfg := Config{Endpoints: e.Endpoints(), DialTimeout: 20 * time.Second} // bcrypt is slow under -race
	if c, err := Connect(t.Context(), cfg, keys, testLogger(t)); err == nil {
		_ = c.Close()
		t.Error("Connect without credentials succeeded on an auth-enabled etcd")
	}
	cfg.Username, cfg.Password = "root", "wrong"
	if c, err := Connect(t.Context(), cfg, keys, testLogger(t)); err == nil {
		_ = c.Close()
		t.Error("Connect with a wrong password succeeded")
	}
	cfg.Password = "s3cret"
	c, err := Connect(t.Context(), cfg, keys, testLogger(t))
	if err != nil {
		t.Fatalf("Connect with credentials: %v", err)
	}
	defer c.Close()
	if err := c.Put(ctxT(t), keys.Config(), []byte("{}")); err != nil {
		t.Errorf("Put with credentials: %v", err)
	}
}

func TestAcquireLeaderExactlyOneWins(t *testing.T) {
	e := startEtcd(t)
	keys := NewKeys("/service/", "race")
	clients := []*Client{connectKeys(t, e, keys), connectKeys(t, e, keys)}
	names := []string{"pg1", "pg2"}
	won := make([]bool, 2)
	var wg sync.WaitGroup
	for i, c := range clients {
		mustGrant(t, c, 10*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if won[i], err = c.AcquireLeader(ctxT(t), names[i]); err != nil {
				t.Errorf("AcquireLeader(%s): %v", names[i], err)
			}
		}()
	}
	wg.Wait()
	if won[0] == won[1] {
		t.Fatalf("won = %v, want exactly one winner", won)
	}
	w, l := 0, 1
	if won[1] {
		w, l = 1, 0
	}
	if err := clients[w].CheckLeader(ctxT(t), names[w]); err != nil {
		t.Errorf("winner CheckLeader: %v", err)
	}
	if err := clients[l].CheckLeader(ctxT(t), names[l]); !errors.Is(err, ErrNotLeader) {
		t.Errorf("loser CheckLeader = %v, want ErrNotLeader", err)
	}
	// A retried acquire by the holder reports the win; the loser still loses.
	if ok, err := clients[w].AcquireLeader(ctxT(t), names[w]); !ok || err != nil {
		t.Errorf("winner re-acquire = %v, %v; want true", ok, err)
	}
	if ok, err := clients[l].AcquireLeader(ctxT(t), names[l]); ok || err != nil {
		t.Errorf("loser re-acquire = %v, %v; want false, nil", ok, err)
	}
	v, found, err := clients[l].Get(ctxT(t), keys.Leader())
	if err != nil || !found || string(v.Data) != names[w] {
		t.Errorf("leader key = %q, %v, %v; want %q", v.Data, found, err, names[w])
	}
}

func TestAcquireLeaderNeedsALease(t *testing.T) {
	c := connect(t, startEtcd(t))
	if _, err := c.AcquireLeader(ctxT(t), "pg1"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("AcquireLeader without lease = %v, want ErrLeaseLost", err)
	}
	if _, found, _ := c.Get(ctxT(t), c.Keys().Leader()); found {
		t.Error("leader key written without a lease")
	}
}

func TestCheckLeaderAfterKeyDeletedOrLeaseRevoked(t *testing.T) {
	c := connect(t, startEtcd(t))
	mustGrant(t, c, 10*time.Second)
	if ok, err := c.AcquireLeader(ctxT(t), "pg1"); !ok || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}
	if err := c.CheckLeader(ctxT(t), "pg1"); err != nil {
		t.Fatalf("CheckLeader while holding: %v", err)
	}
	if err := c.CheckLeader(ctxT(t), "pg2"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("CheckLeader for another name = %v, want ErrNotLeader", err)
	}

	// Someone deletes the key: not leader, and the check does not re-create it.
	if err := c.Delete(ctxT(t), c.Keys().Leader(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckLeader(ctxT(t), "pg1"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("CheckLeader after delete = %v, want ErrNotLeader", err)
	}
	if _, found, _ := c.Get(ctxT(t), c.Keys().Leader()); found {
		t.Error("CheckLeader re-created the leader key")
	}

	// The key under our name but on another lease is not ours either.
	if err := c.Put(ctxT(t), c.Keys().Leader(), []byte("pg1")); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckLeader(ctxT(t), "pg1"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("CheckLeader with key on no lease = %v, want ErrNotLeader", err)
	}
	if err := c.Delete(ctxT(t), c.Keys().Leader(), 0); err != nil {
		t.Fatal(err)
	}

	// Revoking the lease (as its expiry would) deletes the key.
	if ok, err := c.AcquireLeader(ctxT(t), "pg1"); !ok || err != nil {
		t.Fatalf("AcquireLeader again = %v, %v", ok, err)
	}
	if _, err := c.Raw().Revoke(ctxT(t), clientv3.LeaseID(c.Lease())); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckLeader(ctxT(t), "pg1"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("CheckLeader after revoke = %v, want ErrNotLeader", err)
	}
	if _, found, _ := c.Get(ctxT(t), c.Keys().Leader()); found {
		t.Error("leader key survived its lease")
	}
}

func TestReleaseLeaderByNonOwner(t *testing.T) {
	e := startEtcd(t)
	keys := NewKeys("/service/", "release")
	a, b := connectKeys(t, e, keys), connectKeys(t, e, keys)
	mustGrant(t, a, 10*time.Second)
	mustGrant(t, b, 10*time.Second)
	if ok, err := a.AcquireLeader(ctxT(t), "pg1"); !ok || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}
	for _, name := range []string{"pg1", "pg2"} { // right name on the wrong lease; wrong name
		if err := b.ReleaseLeader(ctxT(t), name); !errors.Is(err, ErrNotLeader) {
			t.Errorf("non-owner ReleaseLeader(%s) = %v, want ErrNotLeader", name, err)
		}
	}
	if err := a.ReleaseLeader(ctxT(t), "pg2"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("owner ReleaseLeader(wrong name) = %v, want ErrNotLeader", err)
	}
	if err := a.CheckLeader(ctxT(t), "pg1"); err != nil {
		t.Fatalf("failed releases removed the key: %v", err)
	}
	if err := a.ReleaseLeader(ctxT(t), "pg1"); err != nil {
		t.Fatalf("owner ReleaseLeader: %v", err)
	}
	if _, found, _ := a.Get(ctxT(t), keys.Leader()); found {
		t.Error("leader key still there after release")
	}
	if a.Lease() == 0 {
		t.Error("release cleared the lease")
	}
	if err := a.ReleaseLeader(ctxT(t), "pg1"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("second ReleaseLeader = %v, want ErrNotLeader", err)
	}
}
