package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Timings of TestLoweredTTLLeaderCutFromEtcdStopsInTime.
const (
	highTTL = 30 * time.Second // bootstrap ttl
	lowTTL  = 10 * time.Second // the PATCHed one
	// rotateLatency is the leader's etcd link latency, each way, while
	// the ttl changes. Lowering the ttl moves the leader key to a lease
	// granted with the new ttl (grant, then move the key) and the next
	// acknowledged renewal follows one round trip later; a leader cut off
	// between the two still has only its renewal under the old ttl. On
	// 127.0.0.1 that window is a millisecond; the latency makes it two
	// latencies long, from when the moved key reaches etcd plus one
	// latency (the agent hears of the move) to plus three (it would hear
	// of its renewal).
	rotateLatency = 250 * time.Millisecond
	// cutAfterMove is when the test cuts the leader off, after it saw
	// the key move in etcd: inside that window, nearer its start.
	cutAfterMove = rotateLatency * 3 / 2
	// rotateWait bounds the wait for the leader to move its key to the
	// new lease: config write, watch, grant and move, each a round trip
	// of 2·rotateLatency.
	rotateWait = configApplyWait + 10*rotateLatency
)

// TestLoweredTTLLeaderCutFromEtcdStopsInTime: the ttl is lowered at run
// time (30 s → 10 s) and, right after the leader has moved its key onto a
// lease granted with the new ttl, the leader alone is cut off from etcd
// (the others still reach it; the watchdog is off). Its key can expire
// 10 s after its last renewal, so it must stop taking writes within the
// NEW ttl of the cut: no write it acknowledges after cut + 10 s, and every
// write it acknowledged strictly before the first one the next leader
// acknowledged. A leader that keeps the deadline its last renewal under
// the old ttl gave it stays writable up to ~27 s after the cut, next to
// the new leader.
func TestLoweredTTLLeaderCutFromEtcdStopsInTime(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{TTL: int(highTTL / time.Second)})
	ctx := t.Context()
	waitLeaseTTLs(t, c, leader.Name, int64(highTTL/time.Second), replicateTimeout)
	load := startCutLoad(t, c, leader, "e2e_ttlcut")
	load.waitAcks(t, leader.Name, time.Time{}, 50, replicateTimeout)
	log := leader.CaptureLog(t)

	leader.SetEtcdLatency(rotateLatency)
	moved := watchLeaderLeaseMove(t, c, leader, func() {
		code, body, err := leader.Do(ctx, http.MethodPatch, "/config", map[string]any{"ttl": int(lowTTL / time.Second)})
		if err != nil || code != http.StatusOK {
			t.Fatalf("PATCH /config {\"ttl\": %d} = %d %s (err %v)", lowTTL/time.Second, code, compactBody(body), err)
		}
	})
	holdUntil(t, moved.at.Add(cutAfterMove))
	cut := leader.CutEtcd(t)
	t.Logf("the leader key moved to lease %x at %s; %s cut off from etcd at %s", moved.lease, rel(moved.at, cut), leader.Name, rel(cut, cut))
	if granted := leaseGrantedTTL(t, c, moved.lease); granted != int64(lowTTL/time.Second) {
		t.Fatalf("the leader key's new lease %x was granted ttl %d, want %d: the ttl change did not go as planned", moved.lease, granted, lowTTL/time.Second)
	}

	next, tookOver, err := waitTakeover(t, c, leader.Name, highTTL+rtoSlack)
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("%s took over at %s", next.Name, rel(tookOver, cut))
		load.waitAcks(t, next.Name, tookOver, 20, replicateTimeout)
	}
	// Let the old leader run to whatever deadline it keeps: until its
	// PostgreSQL is read-only, bounded by the old ttl.
	readOnly := testcluster.Eventually(ctx, time.Until(cut.Add(highTTL+rtoSlack)), func(ctx context.Context) error {
		return checkReadOnly(ctx, leader)
	})
	acks := load.stop()

	ts := tenures(acks)
	t.Logf("tenures (relative to the cut): %s", describeTenures(ts, cut))
	for _, l := range log.Matching(func(l string) bool {
		return strings.Contains(l, "keepalive failed") || strings.Contains(l, "fenc") || strings.Contains(l, "rotated") || strings.Contains(l, "lost leadership")
	}) {
		t.Logf("%s: %s", leader.Name, l)
	}
	last := lastAck(acks, leader.Name)
	t.Logf("old leader %s: last acknowledged write at %s (cut + new ttl = %s); read-only: %v", leader.Name, rel(last.At, cut), rel(cut.Add(lowTTL), cut), errOrOK(readOnly))
	checkLeaseBound(t, acks, leader.Name, cut.Add(lowTTL), time.Time{}, cut, "cut + new ttl")
	if next != nil {
		first := firstAck(acks, next.Name, cut)
		t.Logf("new leader %s: first acknowledged write at %s", next.Name, rel(first.At, cut))
		if first.At.IsZero() || !last.At.Before(first.At) {
			t.Errorf("old leader %s acknowledged a write at %s, not strictly before the new leader %s's first at %s", leader.Name, rel(last.At, cut), next.Name, rel(first.At, cut))
		}
	}
	for _, o := range overlaps(ts, cut) {
		t.Errorf("split brain: %s", o)
	}

	leader.HealEtcd(t)
	if p := waitOnePrimary(t, c, rejoinTimeout); p != nil {
		t.Logf("after the heal: one primary, %s", p.Name)
		load.logLost(t, p, cut)
	}
}

// leaseMove is the leader key's move to another lease.
type leaseMove struct {
	lease int64
	at    time.Time // when the test saw it in etcd
}

// watchLeaderLeaseMove runs change, then waits (bounded by rotateWait)
// until etcd shows the leader key still naming leader but on another
// lease, and returns that lease and when it was seen. It watches from
// before change, so it cannot miss the move.
func watchLeaderLeaseMove(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, change func()) leaseMove {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), rotateWait)
	defer cancel()
	key := c.Keys().Leader()
	resp, err := c.Etcd().Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) != leader.Name {
		t.Fatalf("leader key before the change: %v (err %v), want %s", resp, err, leader.Name)
	}
	old := resp.Kvs[0].Lease
	watch := c.Etcd().Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1))
	change()
	for wr := range watch {
		if err := wr.Err(); err != nil {
			t.Fatalf("watch the leader key: %v", err)
		}
		for _, ev := range wr.Events {
			switch {
			case ev.Type != clientv3.EventTypePut || string(ev.Kv.Value) != leader.Name:
				t.Fatalf("the leader key changed to %s %q before it moved to a new lease", ev.Type, ev.Kv.Value)
			case ev.Kv.Lease != old:
				return leaseMove{lease: ev.Kv.Lease, at: time.Now()}
			}
		}
	}
	t.Fatalf("the leader key did not move from lease %x to another within %s (%v)", old, rotateWait, ctx.Err())
	return leaseMove{}
}

// leaseGrantedTTL returns the TTL (seconds) a lease was granted with.
func leaseGrantedTTL(t *testing.T, c *testcluster.Cluster, lease int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := c.Etcd().TimeToLive(ctx, clientv3.LeaseID(lease))
	if err != nil {
		t.Fatalf("lease %x: %v", lease, err)
	}
	return resp.GrantedTTL
}

// checkReadOnly: n's PostgreSQL answers and is in recovery.
func checkReadOnly(ctx context.Context, n *testcluster.Node) error {
	rec, err := n.QueryInt(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END")
	if err != nil {
		return err
	}
	if rec == 0 {
		return errWritable
	}
	return nil
}

var errWritable = errors.New("PostgreSQL is out of recovery (writable)")

// errOrOK renders a check's result for a log line.
func errOrOK(err error) string {
	if err == nil {
		return "yes"
	}
	return "not seen: " + err.Error()
}
