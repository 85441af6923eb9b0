package dcs

import (
	"context"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/etcdembed"
)

// runCache runs c.Run until the end of the test and checks it returns nil.
func runCache(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	eventually(t, 10*time.Second, "the first Load", func() bool { return c.View() != nil })
}

// waitNotify waits for a signal on c.Notify and returns the changes since
// the last TakeChanges, polling until want is among them.
func waitChange(t *testing.T, c *Client, want Change) Change {
	t.Helper()
	var got Change
	deadline := time.After(10 * time.Second)
	for !got.Has(want) {
		select {
		case <-c.Notify():
			got |= c.TakeChanges()
		case <-deadline:
			t.Fatalf("no %v change; got %v", want, got)
		}
	}
	return got
}

func TestWatchCacheFollowsLeaderKey(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e)
	if c.View() != nil {
		t.Fatal("View() before Run is not nil")
	}
	runCache(t, c)
	waitChange(t, c, ChangeReload)
	if v := c.View(); v.Leader != nil || len(v.Members) != 0 {
		t.Fatalf("initial view not empty: %+v", v)
	}

	mustGrant(t, c, 10*time.Second)
	before := c.View()
	contact := c.LastContact()
	if ok, err := c.AcquireLeader(ctxT(t), "pg1"); !ok || err != nil {
		t.Fatalf("AcquireLeader = %v, %v", ok, err)
	}
	got := waitChange(t, c, ChangeLeader)
	v := c.View()
	if v.LeaderName() != "pg1" || v.Leader.Lease != c.Lease() {
		t.Fatalf("view leader = %+v, want pg1 on lease %s", v.Leader, hex(c.Lease()))
	}
	if got.Has(ChangeMembers | ChangeReload) {
		t.Errorf("changes = %v, want only leader", got)
	}
	if before.Leader != nil {
		t.Error("an earlier view was modified in place")
	}
	if !v.LoadedAt.After(before.LoadedAt) || v.Revision <= before.Revision {
		t.Errorf("view not refreshed: LoadedAt %v→%v, rev %d→%d", before.LoadedAt, v.LoadedAt, before.Revision, v.Revision)
	}
	if !c.LastContact().After(contact) {
		t.Error("LastContact did not advance")
	}

	if err := c.PutMember(ctxT(t), "pg1", Member{Role: "master"}); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeMembers)
	if r := c.View().Members["pg1"].Role; r != "primary" {
		t.Errorf("member role = %q, want primary", r)
	}

	if err := c.ReleaseLeader(ctxT(t), "pg1"); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeLeader)
	if v := c.View(); v.Leader != nil {
		t.Errorf("leader still in view after delete: %+v", v.Leader)
	}
}

func TestWatchCacheSeesOtherKeys(t *testing.T) {
	c := connect(t, startEtcd(t))
	runCache(t, c)
	k := c.Keys()
	for _, tc := range []struct {
		key  string
		val  string
		want Change
	}{
		{k.Config(), `{"ttl":30}`, ChangeConfig},
		{k.Status(), `{"optime":100}`, ChangeStatus},
		{k.Failover(), `{"member":"pg2"}`, ChangeFailover},
		{k.Sync(), `{"leader":"pg1","sync_standby":"pg2"}`, ChangeSync},
		{k.History(), `[[1,100,"r"]]`, ChangeHistory},
		{k.Initialize(), `123`, ChangeInitialize},
		{k.Switchover("1"), `{}`, ChangeSwitchover},
		{k.Decision("1"), `{}`, ChangeOther},
	} {
		if err := c.Put(ctxT(t), tc.key, []byte(tc.val)); err != nil {
			t.Fatal(err)
		}
		waitChange(t, c, tc.want)
	}
	v := c.View()
	if v.Config == nil || v.Status.Optime != 100 || v.Failover.Member != "pg2" || v.SyncRev == 0 ||
		v.Timeline() != 2 || *v.Initialize != "123" || len(v.Extra) != 2 {
		t.Errorf("view = %+v", v)
	}
	fresh, err := c.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(k, fresh, v); d != 0 {
		t.Errorf("watch-fed view differs from a fresh Load: %v", d)
	}
}

func TestWatchCacheRecoversAfterEtcdRestart(t *testing.T) {
	t.Parallel() // mostly waits for etcd to stop
	e := startEtcd(t)
	c := connect(t, e)
	restarted := new(*etcdembed.Server) // closed after Run stops, so Close is quick
	t.Cleanup(func() {
		if *restarted != nil {
			(*restarted).Close()
		}
	})
	runCache(t, c)
	if err := c.Put(ctxT(t), c.Keys().Config(), []byte(`{"ttl":30}`)); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeConfig)

	cfg := e.Config()
	e.Close() // waits for etcd's request timeout (7s) as the watch is open
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e2, err := etcdembed.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	*restarted = e2

	// The data survived, and the same client's cache follows new writes.
	if v, found, err := c.Get(ctxT(t), c.Keys().Config()); err != nil || !found || string(v.Data) != `{"ttl":30}` {
		t.Fatalf("config after restart = %q, %v, %v", v.Data, found, err)
	}
	if err := c.Put(ctxT(t), c.Keys().Leader(), []byte("pg9")); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeLeader)
	if name := c.View().LeaderName(); name != "pg9" {
		t.Errorf("leader after restart = %q, want pg9", name)
	}
}
