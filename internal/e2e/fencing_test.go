package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// writeProbe records, while etcd is down, when writes on the old primary
// were acknowledged and when they failed.
type writeProbe struct {
	stop          time.Time
	acked         []int64       // ids acknowledged after the stop
	lastOK        time.Duration // since stop, of the last acknowledged write; -1 if none
	fenced        time.Duration // since stop, of the first failure after lastOK; -1 if none
	primaryNon200 time.Duration // since stop, of the first non-200 GET /primary; -1 if none
	lastErr       error
}

// TestEtcdLossFencesPrimary: with etcd gone the primary cannot renew its
// lease, so it must stop taking writes before the lease TTL has elapsed
// (after which another node could be elected); once etcd is back the
// cluster elects a leader again and keeps every write acknowledged before.
func TestEtcdLossFencesPrimary(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	ttl := c.TTL()

	if err := leader.Exec(ctx, "CREATE TABLE e2e_fence (id bigint PRIMARY KEY, phase text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Exec(ctx, "INSERT INTO e2e_fence SELECT g, 'before' FROM generate_series(1, 50) g"); err != nil {
		t.Fatal(err)
	}
	// Acknowledged and replicated: whoever leads next must have them.
	waitRows(t, c.Nodes(), 50, "SELECT count(*) FROM e2e_fence WHERE phase = 'before'")

	stopping := time.Now() // measure from before the stop: the lease may be renewed no later
	c.StopEtcd(t)
	t.Logf("etcd stopped answering %s after the stop began", time.Since(stopping).Round(time.Millisecond))
	p := probeWrites(ctx, leader, stopping, ttl+3*time.Second)
	t.Logf("etcd stopped; on %s: last acknowledged write at +%s, writes failing from +%s (last error: %v), GET /primary non-200 from +%s; %d writes acknowledged during the outage",
		leader.Name, p.lastOK, p.fenced, p.lastErr, p.primaryNon200, len(p.acked))
	if p.fenced < 0 {
		t.Fatalf("%s kept accepting writes %s after etcd stopped (ttl %s): not fenced", leader.Name, ttl+3*time.Second, ttl)
	}
	if p.lastOK >= ttl {
		t.Errorf("%s acknowledged a write %s after etcd stopped, at or past the ttl (%s)", leader.Name, p.lastOK, ttl)
	}
	if p.primaryNon200 < 0 || p.primaryNon200 >= ttl {
		t.Errorf("%s GET /primary still 200 at +%s (ttl %s)", leader.Name, p.primaryNon200, ttl)
	}
	for _, n := range c.Nodes() {
		testcluster.Poll(t, 5*time.Second, n.Name+" GET /primary = 503 without etcd", func(ctx context.Context) error {
			code, _, err := n.Get(ctx, "/primary")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable {
				return fmt.Errorf("GET /primary = %d", code)
			}
			return nil
		})
	}

	c.StartEtcd(t)
	restarted := time.Now()
	bound := ttl + 30*time.Second
	newLeader := c.WaitLeader(t, bound)
	testcluster.Poll(t, bound-time.Since(restarted), "a write on the new leader "+newLeader.Name, func(ctx context.Context) error {
		return newLeader.Exec(ctx, "INSERT INTO e2e_fence VALUES (1000000, 'after') ON CONFLICT DO NOTHING")
	})
	t.Logf("etcd back: leader %s accepting writes %s after the restart", newLeader.Name, time.Since(restarted).Round(time.Millisecond))

	if n, err := newLeader.QueryInt(ctx, "SELECT count(*) FROM e2e_fence WHERE phase = 'before'"); err != nil || n != 50 {
		t.Errorf("new leader %s has %d of the 50 rows acknowledged before etcd stopped (err %v)", newLeader.Name, n, err)
	}
	if n, err := newLeader.QueryInt(ctx, "SELECT count(*) FROM e2e_fence WHERE phase = 'during'"); err == nil {
		t.Logf("%d of %d writes acknowledged during the outage survive on %s", n, len(p.acked), newLeader.Name)
	}
	c.WaitHealthy(t, rejoinTimeout)
}

// probeWrites inserts a row on n every 100 ms (each on a fresh connection,
// bounded by 1 s) and polls its GET /primary, until d after stop.
func probeWrites(ctx context.Context, n *testcluster.Node, stop time.Time, d time.Duration) writeProbe {
	p := writeProbe{stop: stop, lastOK: -1, fenced: -1, primaryNon200: -1}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for id := int64(1000); time.Since(p.stop) < d; id++ {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := n.Exec(actx, "INSERT INTO e2e_fence VALUES ($1, 'during')", id)
		cancel()
		at := time.Since(p.stop)
		if err == nil {
			p.acked = append(p.acked, id)
			p.lastOK, p.fenced = at, -1
		} else {
			p.lastErr = err
			if p.fenced < 0 {
				p.fenced = at
			}
		}
		if p.primaryNon200 < 0 {
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			code, _, err := n.Get(gctx, "/primary")
			cancel()
			if err != nil || code != http.StatusOK {
				p.primaryNon200 = time.Since(p.stop)
			}
		}
		select {
		case <-ctx.Done():
			return p
		case <-tick.C:
		}
	}
	return p
}
