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
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	to := c.Others(old.Name)[0]
	ttl := c.TTL()
	load := startCutLoad(t, c, old, "e2e_swcut")
	load.waitAcks(t, old.Name, time.Time{}, 50, replicateTimeout)

	id := startSwitchover(t, old, switchoverReq{To: to.Name, Reason: "e2e: new primary cut from etcd"})
	promoted := waitPrimaryFast(t, to, switchoverWait)
	cut := to.CutEtcd(t)
	t.Logf("%s answered GET /primary 200 at %s and was cut off from etcd at %s", to.Name, rel(promoted, cut), rel(cut, cut))

	next, tookOver, takeoverErr := waitTakeover(t, c, to.Name, ttl+takeoverSlack)
	if takeoverErr == nil {
		t.Logf("%s took over at %s", next.Name, rel(tookOver, cut))
	}
	holdUntil(t, cut.Add(newPrimaryCutHold))
	logPrimaryAnswers(t, c, "at the heal")
	healed := time.Now()
	to.HealEtcd(t)
	final := finishCutLoad(t, c, load, healed)
	acks := load.stop()

	ts := tenures(acks)
	t.Logf("tenures (relative to the cut): %s", describeTenures(ts, cut))
	t.Logf("%s: last acknowledged write at %s (cut + ttl = %s; healed at %s)", to.Name, rel(lastAck(acksBetween(acks, to.Name, time.Time{}, healed), to.Name).At, cut), rel(cut.Add(ttl), cut), rel(healed, cut))
	logRecord(t, final, id)
	load.logLost(t, final, cut)
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
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	to := c.Others(old.Name)[0]
	ttl := c.TTL()
	load := startCutLoad(t, c, old, "e2e_swallcut")
	load.waitAcks(t, old.Name, time.Time{}, 50, replicateTimeout)

	id := startSwitchover(t, old, switchoverReq{To: to.Name, Reason: "e2e: every node cut from etcd"})
	promoted := waitPrimaryFast(t, to, switchoverWait)
	cut := c.CutEtcdAll(t)
	t.Logf("%s answered GET /primary 200 at %s; every node cut off from etcd at %s", to.Name, rel(promoted, cut), rel(cut, cut))

	holdUntil(t, cut.Add(ttl+allCutBeyondTTL))
	logPrimaryAnswers(t, c, "at the heal")
	healed := time.Now()
	c.HealEtcdAll(t)
	final := finishCutLoad(t, c, load, healed)
	acks := load.stop()

	ts := tenures(acks)
	t.Logf("tenures (relative to the cut): %s", describeTenures(ts, cut))
	logRecord(t, final, id)
	load.logLost(t, final, cut)
	for _, n := range c.Nodes() {
		checkLeaseBound(t, acks, n.Name, cut.Add(ttl), healed, cut, "cut + ttl")
	}
	for _, o := range overlaps(ts, cut) {
		t.Errorf("split brain: %s", o)
	}
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
