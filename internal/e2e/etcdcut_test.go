package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the switchover etcd-cut tests.
const (
	// newPrimaryCutHold is how long the new primary stays cut off: longer
	// than a takeover may take (ttl + takeoverSlack with ttl 10 s).
	newPrimaryCutHold = 25 * time.Second
	// takeoverSlack is what a takeover may take beyond the ttl: generous
	// (rtoSlack is 5 s), as the cut lands in the middle of a switchover.
	takeoverSlack = 10 * time.Second
	// allCutBeyondTTL is how long every node stays cut off beyond the
	// ttl: every lease has expired at etcd by then.
	allCutBeyondTTL = 10 * time.Second
)

// TestSwitchoverNewPrimaryCutFromEtcd: a switchover runs under load; the
// moment the candidate answers GET /primary with 200, the candidate alone
// is cut off from etcd for 25 s (the others still reach it), then healed.
// The cut node must stop taking writes before its lease can expire (cut +
// ttl); another node takes over within ttl + 10 s; no two nodes take
// writes at the same time; after the heal the whole cluster agrees on
// exactly one primary.
func TestSwitchoverNewPrimaryCutFromEtcd(t *testing.T) {
	s := startCutSwitchover(t, "e2e_swcut", "e2e: new primary cut from etcd")
	c, to := s.c, s.to
	ttl := c.TTL()
	cut := to.CutEtcd(t)
	t.Logf("%s answered GET /primary 200 at %s and was cut off from etcd at %s", to.Name, rel(s.promoted, cut), rel(cut, cut))

	next, tookOver, takeoverErr := waitTakeover(t, c, to.Name, ttl+takeoverSlack)
	if takeoverErr == nil {
		t.Logf("%s took over at %s", next.Name, rel(tookOver, cut))
	}
	holdUntil(t, cut.Add(newPrimaryCutHold))
	acks, ts, healed := s.heal(t, cut, to.HealEtcd)

	t.Logf("%s: last acknowledged write at %s (cut + ttl = %s; healed at %s)", to.Name, rel(lastAck(acksBetween(acks, to.Name, time.Time{}, healed), to.Name).At, cut), rel(cut.Add(ttl), cut), rel(healed, cut))
	checkLeaseBound(t, acks, to.Name, cut.Add(ttl), healed, cut, "cut + ttl")
	if takeoverErr != nil {
		t.Errorf("takeover after the new primary %s was cut off: %v", to.Name, takeoverErr)
	}
	for _, o := range overlaps(ts, cut) {
		t.Errorf("split brain: %s", o)
	}
}

// TestSwitchoverAllCutFromEtcd: as TestSwitchoverNewPrimaryCutFromEtcd,
// but every node is cut off from etcd the moment the candidate answers
// GET /primary with 200, for ttl + 10 s. No node may take a write after
// its lease may have expired (cut + ttl) until the heal, no two nodes
// take writes at the same time, and after the heal the whole cluster
// agrees on exactly one primary.
func TestSwitchoverAllCutFromEtcd(t *testing.T) {
	s := startCutSwitchover(t, "e2e_swallcut", "e2e: every node cut from etcd")
	c := s.c
	ttl := c.TTL()
	cut := c.CutEtcdAll(t)
	t.Logf("%s answered GET /primary 200 at %s; every node cut off from etcd at %s", s.to.Name, rel(s.promoted, cut), rel(cut, cut))

	holdUntil(t, cut.Add(ttl+allCutBeyondTTL))
	acks, ts, healed := s.heal(t, cut, c.HealEtcdAll)

	for _, n := range c.Nodes() {
		checkLeaseBound(t, acks, n.Name, cut.Add(ttl), healed, cut, "cut + ttl")
	}
	for _, o := range overlaps(ts, cut) {
		t.Errorf("split brain: %s", o)
	}
}

// cutSwitchover is a switchover under load (old → to) whose candidate
// has just answered GET /primary with 200: the moment the tests cut
// etcd off.
type cutSwitchover struct {
	c        *testcluster.Cluster
	old, to  *testcluster.Node
	load     *cutLoad
	id       string
	promoted time.Time // when to answered GET /primary with 200
}

// startCutSwitchover starts a cluster and a load on table, then a
// switchover to the first other node, and returns once the candidate
// serves as primary.
func startCutSwitchover(t *testing.T, table, reason string) *cutSwitchover {
	t.Helper()
	s := &cutSwitchover{c: testcluster.New(t, testcluster.Options{})}
	s.old = waitHealthyForSwitchover(t, s.c)
	s.to = s.c.Others(s.old.Name)[0]
	s.load = startCutLoad(t, s.c, s.old, table)
	s.load.waitAcks(t, s.old.Name, time.Time{}, 50, replicateTimeout)
	s.id = startSwitchover(t, s.old, switchoverReq{To: s.to.Name, Reason: reason})
	s.promoted = waitPrimaryFast(t, s.to, switchoverWait)
	return s
}

// heal ends the etcd cut made at cut with healFn, waits for one primary
// the whole cluster agrees on to take the load's writes, stops the load
// and logs the tenures, the switchover record and any lost write. It
// returns the acknowledged writes, their tenures and when the heal began.
func (s *cutSwitchover) heal(t *testing.T, cut time.Time, healFn func(testing.TB)) ([]testcluster.Ack, []tenure, time.Time) {
	t.Helper()
	logPrimaryAnswers(t, s.c, "at the heal")
	healed := time.Now()
	healFn(t)
	final := finishCutLoad(t, s.c, s.load, healed)
	acks := s.load.stop()
	ts := tenures(acks)
	t.Logf("tenures (relative to the cut): %s", describeTenures(ts, cut))
	logRecord(t, final, s.id)
	s.load.logLost(t, final, cut)
	return acks, ts, healed
}

// finishCutLoad waits, after a heal, for one primary the whole cluster
// agrees on, then for the writers to have written there, and returns it
// (nil when there is none: the test has failed).
func finishCutLoad(t *testing.T, c *testcluster.Cluster, load *cutLoad, healed time.Time) *testcluster.Node {
	t.Helper()
	p := waitOnePrimary(t, c, rejoinTimeout)
	if p == nil {
		return nil
	}
	t.Logf("after the heal: one primary, %s, agreed %s after the heal", p.Name, time.Since(healed).Round(time.Millisecond))
	load.waitAcks(t, p.Name, time.Now(), 20, replicateTimeout)
	return p
}

// logPrimaryAnswers logs every node's GET /primary status and whether its
// PostgreSQL is in recovery.
func logPrimaryAnswers(t *testing.T, c *testcluster.Cluster, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var parts []string
	for _, n := range c.Nodes() {
		code, _, err := n.Get(ctx, "/primary")
		ro := checkReadOnly(ctx, n)
		parts = append(parts, fmt.Sprintf("%s: GET /primary %d (err %v), read-only: %s", n.Name, code, err, errOrOK(ro)))
	}
	t.Logf("%s: %s", when, strings.Join(parts, "; "))
}

// logRecord logs the switchover record as n serves it.
func logRecord(t *testing.T, n *testcluster.Node, id string) {
	t.Helper()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r, err := getRecord(ctx, n, id)
	if err != nil {
		code, body, _ := n.Get(ctx, "/switchover/"+id)
		t.Logf("switchover %s: %v (%d %s)", id, err, code, compactBody(body))
		return
	}
	if r.State == "running" {
		t.Logf("switchover %s still running at stage %s: %s", id, r.Stage, r)
		return
	}
	reason := ""
	if r.Failure != nil {
		reason = r.Failure.Reason
	}
	t.Logf("switchover %s: %s at %s %s", id, r.State, r.Stage, reason)
}

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
