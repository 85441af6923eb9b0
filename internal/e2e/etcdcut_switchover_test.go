package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
