package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the ecosystem test.
const (
	// routeWait bounds how long HAProxy takes to send new connections to a
	// new primary once its GET /primary answers 200: the example checks
	// every second and needs one success (rise 1) to add a server and two
	// failures (fall 2) to drop one; 5 s leaves room for a busy host.
	routeWait = 5 * time.Second
	// consecutiveHits is how many connections in a row must reach the
	// expected node before routing counts as settled: more than there are
	// servers in a pool, so round robin cannot hide a stale server.
	consecutiveHits = 6
	// readSamples is how many connections the read port's check opens.
	readSamples = 30
)

// TestHAProxyRoutesAndMetrics runs Debian's haproxy with the example
// configuration (examples/haproxy/haproxy.cfg, verbatim; the addresses
// come from its environment) in front of a 3-node cluster:
//   - the write port reaches the primary, the read port only replicas;
//   - after a failover (the primary's host dies) and after a planned
//     switchover (PATCH /switchover on the target, record completed), new
//     connections through the write port reach the new primary within
//     routeWait, and the read port again only reaches replicas;
//   - every member's /metrics parses with Prometheus' text parser, and
//     after the switchover the role, timeline, switchover and failover
//     series say what happened.
func TestHAProxyRoutesAndMetrics(t *testing.T) {
	bin := haproxyBinary(t)
	c := testcluster.New(t, testcluster.Options{})
	first := waitHealthyForSwitchover(t, c)
	px := startHAProxy(t, bin, c)
	px.waitWrites(t, first, "after bootstrap", bootstrapTimeout)
	px.checkReads(t, first, c.Others(first.Name))
	before := scrapeAll(t, c.Nodes())
	t0 := gaugeValue(t, before[first.Name], "regent_timeline", nil)

	// Failover: the primary's host dies.
	first.Kill(t)
	winner := waitNewLeader(t, c, first.Name, failoverWait)
	px.waitWrites(t, winner, "after the failover", routeWait)
	target := c.Others(winner.Name)
	target = removeNode(target, first)
	if len(target) != 1 {
		t.Fatalf("after the failover %d replicas run, want 1", len(target))
	}
	to := target[0]
	waitStreamingFrom(t, to, winner, rejoinTimeout)
	px.checkReads(t, winner, []*testcluster.Node{to})

	// Switchover to the remaining replica, asked on that replica.
	waitListedStreaming(t, winner, to)
	mid := scrapeAll(t, []*testcluster.Node{winner})
	t1 := gaugeValue(t, mid[winner.Name], "regent_timeline", nil)
	if t1 != t0+1 {
		t.Errorf("%s: regent_timeline %v after the failover, want %v (one promotion)", winner.Name, t1, t0+1)
	}
	id := startSwitchover(t, to, switchoverReq{To: to.Name, Reason: "ecosystem test"})
	rec := waitRecord(t, to, id, switchoverWait, "closed", closed)
	if rec.State != "completed" {
		t.Fatalf("switchover %s ended %s: %s", id, rec.State, rec)
	}
	px.waitWrites(t, to, "after the switchover", routeWait)
	waitStreamingFrom(t, winner, to, rejoinTimeout)
	px.checkReads(t, to, []*testcluster.Node{winner})

	checkSwitchoverMetrics(t, switchoverMetrics{
		newLeader: to, oldLeader: winner, timelineBefore: t1,
	})
	checkFailoverMetrics(t, winner)
}

// removeNode returns nodes without n.
func removeNode(nodes []*testcluster.Node, n *testcluster.Node) []*testcluster.Node {
	var out []*testcluster.Node
	for _, m := range nodes {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

// waitListedStreaming waits until leader's GET /patroni lists replica as a
// streaming WAL sender: the switchover's pre-flight checks read that
// document, which the leader refreshes once per loop_wait.
func waitListedStreaming(t *testing.T, leader, replica *testcluster.Node) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, leader.Name+"'s GET /patroni listing "+replica.Name+" as streaming", func(ctx context.Context) error {
		return listedStreaming(ctx, leader, replica.Name)
	})
}
