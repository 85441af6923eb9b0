package dcs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/etcdembed"
	"github.com/regent-ha/regent/internal/freeport"
)

// startCluster starts a three-member embedded etcd cluster. The members
// must start together: each waits for a quorum to be ready.
func startCluster(t *testing.T) []etcdembed.Config {
	t.Helper()
	cfgs := make([]etcdembed.Config, 3)
	var initial string
	for i := range cfgs {
		cp, err1 := freeport.Pick()
		pp, err2 := freeport.Pick()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		cfgs[i] = etcdembed.Config{Name: fmt.Sprintf("m%d", i), Dir: t.TempDir(),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", pp)}
		initial += fmt.Sprintf(",%s=%s", cfgs[i].Name, cfgs[i].PeerURL)
	}
	for i := range cfgs {
		cfgs[i].InitialCluster = initial[1:]
	}
	return cfgs
}

// startMembers starts the given members concurrently; each is closed at the
// end of the test unless closed before.
func startMembers(t *testing.T, cfgs ...etcdembed.Config) []*etcdembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := make([]*etcdembed.Server, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() { out[i], errs[i] = etcdembed.Start(ctx, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", cfgs[i].Name, err)
		}
		t.Cleanup(out[i].Close)
	}
	return out
}

func closeMembers(ms ...*etcdembed.Server) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(m.Close)
	}
	wg.Wait()
}

// An agent whose etcd member loses its quorum must not keep a silently
// stale watch: WithRequireLeader closes it, Run logs, reloads once the
// quorum is back, and follows new writes.
func TestWatchCacheReloadsAfterQuorumLoss(t *testing.T) {
	t.Parallel() // mostly waits for leader loss detection
	if testing.Short() {
		t.Skip("three-member etcd cluster")
	}
	cfgs := startCluster(t)
	members := startMembers(t, cfgs...)
	log, spy := newLogSpy(t)
	c, err := Connect(t.Context(), Config{Endpoints: members[0].Endpoints()}, NewKeys("service", "quorum"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	runCache(t, c)
	if err := c.Put(ctxT(t), c.Keys().Config(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeConfig)

	closeMembers(members[1], members[2])
	eventually(t, 30*time.Second, "the watch to be closed for lack of a leader", func() bool {
		return spy.count("etcd watch lost, reloading") > 0
	})
	c.TakeChanges()

	startMembers(t, cfgs[1], cfgs[2])
	waitChange(t, c, ChangeReload)
	if err := c.Put(ctxT(t), c.Keys().Leader(), []byte("pg1")); err != nil {
		t.Fatal(err)
	}
	waitChange(t, c, ChangeLeader)
	if v := c.View(); v.LeaderName() != "pg1" || v.Config == nil {
		t.Errorf("view after quorum came back: leader %q config %v", v.LeaderName(), v.Config)
	}
}
