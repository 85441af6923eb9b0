package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Helpers of the etcd-cut tests (one agent, or all, cut off from etcd by
// Node.CutEtcd while PostgreSQL and the REST API stay reachable).

const (
	// tenureGap splits one node's acknowledged writes into tenures: a
	// writer acknowledged by a primary every 10-20 ms never pauses this
	// long, and a node that leads again after another did has been out of
	// leadership for at least a failover, far longer.
	tenureGap = 2 * time.Second
	// pinnedEvery paces the writers pinned to one node: the replicas' ones
	// only ask their node's GET /primary each tick.
	pinnedEvery = 20 * time.Millisecond
	// primaryPollEvery is how often waitPrimaryFast asks GET /primary: the
	// tests cut etcd at that moment, and Poll's 100 ms would blur it.
	primaryPollEvery = 10 * time.Millisecond
)

// cutLoad is the load of the etcd-cut tests: one writer pinned to each
// node (it writes there whenever that node's GET /primary answers 200 and
// keeps its connection while writes succeed, as an application connected
// to one host would: a node that wrongly stays writable is exposed), and
// one writer following the primary over every node (GET /primary routing,
// as behind a health-checking router). Each writes its own table.
type cutLoad struct {
	routed  *testcluster.Writer
	writers []*testcluster.Writer // pinned ones, then routed
	tables  []string              // writers[i] writes tables[i]
}

// startCutLoad creates the tables on leader (prefix, prefix_<node>…) and
// starts the writers; they stop at the test's end at the latest.
func startCutLoad(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, prefix string) *cutLoad {
	t.Helper()
	l := &cutLoad{}
	for _, n := range c.Nodes() {
		table := prefix + "_" + n.Name
		mustExec(t, leader, fmt.Sprintf(createLoadTable, table))
		l.tables = append(l.tables, table)
		l.writers = append(l.writers, runWriter(t, c, testcluster.WriterOptions{
			Table: table, Nodes: []*testcluster.Node{n}, Every: pinnedEvery,
			ServerTimeout: true, AppName: "e2e-pinned-" + n.Name,
		}))
	}
	mustExec(t, leader, fmt.Sprintf(createLoadTable, prefix))
	l.routed = startWriter(t, c, prefix)
	l.writers = append(l.writers, l.routed)
	l.tables = append(l.tables, prefix)
	return l
}

// logLost logs how many acknowledged writes are missing on n (the final
// primary), by the node that acknowledged them, relative to ref. It does
// not fail the test: with asynchronous replication a failover may lose
// what the new primary had not received (up to maximum_lag_on_failover);
// the count tells how much a fault cost.
func (l *cutLoad) logLost(t *testing.T, n *testcluster.Node, ref time.Time) {
	t.Helper()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	var lost []testcluster.Ack
	total := 0
	for i, w := range l.writers {
		acks := w.Snapshot().Acked
		total += len(acks)
		missing, _, err := testcluster.MissingAcks(ctx, n, l.tables[i], acks)
		if err != nil {
			t.Logf("acknowledged writes on %s: %v", n.Name, err)
			return
		}
		lost = append(lost, missing...)
	}
	if len(lost) == 0 {
		t.Logf("every one of the %d acknowledged writes is on the final primary %s", total, n.Name)
		return
	}
	slices.SortFunc(lost, func(a, b testcluster.Ack) int { return a.At.Compare(b.At) })
	t.Logf("%d of the %d acknowledged writes are missing on the final primary %s: %s", len(lost), total, n.Name, describeTenures(tenures(lost), ref))
}

// stop stops every writer (bounded) and returns all their acknowledged
// writes, sorted by acknowledgement time.
func (l *cutLoad) stop() []testcluster.Ack {
	for _, w := range l.writers {
		w.Stop()
	}
	return l.acks()
}

// acks returns every writer's acknowledged writes so far, sorted by time.
func (l *cutLoad) acks() []testcluster.Ack {
	var all []testcluster.Ack
	for _, w := range l.writers {
		all = append(all, w.Snapshot().Acked...)
	}
	slices.SortStableFunc(all, func(a, b testcluster.Ack) int { return a.At.Compare(b.At) })
	return all
}

// waitAcks waits until node acknowledged n writes (all writers together)
// at or after since.
func (l *cutLoad) waitAcks(t *testing.T, node string, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	testcluster.Poll(t, timeout, fmt.Sprintf("%d writes acknowledged by %s", n, node), func(context.Context) error {
		if got := len(acksBetween(l.acks(), node, since, time.Time{})); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// acksBetween returns node's acks at or after from and strictly before to
// (to zero: no end).
func acksBetween(acks []testcluster.Ack, node string, from, to time.Time) []testcluster.Ack {
	var out []testcluster.Ack
	for _, a := range acks {
		if a.Node == node && !a.At.Before(from) && (to.IsZero() || a.At.Before(to)) {
			out = append(out, a)
		}
	}
	return out
}

// lastAck and firstAck return node's last and first acknowledged write
// (zero Ack when it has none).
func lastAck(acks []testcluster.Ack, node string) testcluster.Ack {
	for i := len(acks) - 1; i >= 0; i-- {
		if acks[i].Node == node {
			return acks[i]
		}
	}
	return testcluster.Ack{}
}

func firstAck(acks []testcluster.Ack, node string, since time.Time) testcluster.Ack {
	if a := acksBetween(acks, node, since, time.Time{}); len(a) > 0 {
		return a[0]
	}
	return testcluster.Ack{}
}

// tenure is one stretch of a node's acknowledged writes (all writers
// together): consecutive acks no more than tenureGap apart.
type tenure struct {
	Node        string
	First, Last time.Time
	Acks        int
}

// tenures splits acks (sorted by time) into tenures, sorted by start.
func tenures(acks []testcluster.Ack) []tenure {
	open := map[string]int{} // node → index of its latest tenure
	var out []tenure
	for _, a := range acks {
		if i, ok := open[a.Node]; ok && a.At.Sub(out[i].Last) <= tenureGap {
			out[i].Last = a.At
			out[i].Acks++
			continue
		}
		open[a.Node] = len(out)
		out = append(out, tenure{Node: a.Node, First: a.At, Last: a.At, Acks: 1})
	}
	return out
}

// overlaps returns, for every two tenures of different nodes that are not
// strictly ordered (one's last ack before the other's first), a
// description relative to ref: two nodes taking writes at once.
func overlaps(ts []tenure, ref time.Time) []string {
	var out []string
	for i, a := range ts {
		for _, b := range ts[i+1:] {
			if b.First.After(a.Last) {
				break // sorted by First: no later tenure overlaps a
			}
			if a.Node != b.Node {
				out = append(out, fmt.Sprintf("%s and %s both acknowledged writes from %s to %s",
					a.Node, b.Node, rel(b.First, ref), rel(minTime(a.Last, b.Last), ref)))
			}
		}
	}
	return out
}

// describeTenures renders tenures relative to ref.
func describeTenures(ts []tenure, ref time.Time) string {
	parts := make([]string, 0, len(ts))
	for _, tn := range ts {
		parts = append(parts, fmt.Sprintf("%s [%s … %s] %d acks", tn.Node, rel(tn.First, ref), rel(tn.Last, ref), tn.Acks))
	}
	return strings.Join(parts, "; ")
}

// rel renders at relative to ref ("+12.345s", "-0.100s"); "never" for zero.
func rel(at, ref time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%+.3fs", at.Sub(ref).Seconds())
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// waitPrimaryFast polls n's GET /primary every primaryPollEvery until it
// answers 200 and returns when it did.
func waitPrimaryFast(t *testing.T, n *testcluster.Node, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(primaryPollEvery)
	defer tick.Stop()
	last := "no answer yet"
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		err := n.API().CheckPrimary(ctx)
		cancel()
		if err == nil {
			return time.Now()
		}
		last = err.Error()
		select {
		case <-t.Context().Done():
			t.Fatal("test ended")
		case <-tick.C:
		}
	}
	t.Fatalf("%s's GET /primary did not answer 200 within %s; last: %s", n.Name, timeout, last)
	return time.Time{}
}

// checkOnePrimary: exactly one node runs PostgreSQL out of recovery; the
// leader key names it; it alone answers GET /primary with 200; and every
// node's GET /cluster shows it as the one leader, every member running.
func checkOnePrimary(ctx context.Context, c *testcluster.Cluster) (*testcluster.Node, error) {
	leader, err := c.LeaderNode(ctx)
	if err != nil {
		return nil, err
	}
	name := leader.Name
	var errs []error
	for _, n := range c.Nodes() {
		rec, err := n.QueryInt(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END")
		switch {
		case err != nil:
			errs = append(errs, err)
		case n == leader && rec != 0:
			errs = append(errs, fmt.Errorf("leader %s: PostgreSQL in recovery", n.Name))
		case n != leader && rec == 0:
			errs = append(errs, fmt.Errorf("%s: PostgreSQL out of recovery (writable) while %s leads", n.Name, name))
		}
		code, _, err := n.Get(ctx, "/primary")
		switch {
		case err != nil:
			errs = append(errs, err)
		case (code == http.StatusOK) != (n == leader):
			errs = append(errs, fmt.Errorf("%s: GET /primary = %d (leader key: %s)", n.Name, code, name))
		}
		ms, err := clusterMembers(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var leaders []string
		for _, m := range ms {
			if m.Role == "leader" {
				leaders = append(leaders, m.Name)
			}
			if m.State != "running" {
				errs = append(errs, fmt.Errorf("GET /cluster on %s: %s is %q", n.Name, m.Name, m.State))
			}
		}
		if len(ms) != len(c.Nodes()) || !slices.Equal(leaders, []string{name}) {
			errs = append(errs, fmt.Errorf("GET /cluster on %s: %d members, leaders %v, want %d and [%s]", n.Name, len(ms), leaders, len(c.Nodes()), name))
		}
	}
	return leader, errors.Join(errs...)
}

// waitOnePrimary waits until checkOnePrimary holds and returns the
// primary; it fails the test (not at once) and returns nil otherwise.
func waitOnePrimary(t *testing.T, c *testcluster.Cluster, timeout time.Duration) *testcluster.Node {
	t.Helper()
	var leader *testcluster.Node
	err := testcluster.Eventually(t.Context(), timeout, func(ctx context.Context) error {
		failOnCrash(t, c.Nodes()...)
		n, err := checkOnePrimary(ctx, c)
		leader = n
		return err
	})
	if err != nil {
		t.Errorf("no single primary the whole cluster agrees on within %s: %v", timeout, err)
		return nil
	}
	return leader
}

// waitTakeover waits until the leader key names a node other than old
// whose GET /primary answers 200, and returns it and when it was seen;
// nil (the test is not stopped) if that does not happen within timeout.
func waitTakeover(t *testing.T, c *testcluster.Cluster, old string, timeout time.Duration) (*testcluster.Node, time.Time, error) {
	t.Helper()
	var leader *testcluster.Node
	err := testcluster.Eventually(t.Context(), timeout, func(ctx context.Context) error {
		failOnCrash(t, c.Nodes()...)
		n, err := leaderOtherThan(ctx, c, (*testcluster.Node).API, old)
		leader = n
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("no node but %s took over within %s: %w", old, timeout, err)
	}
	return leader, time.Now(), nil
}

// holdUntil waits until at (the length of a fault, not a wait for an
// event), or the test's end.
func holdUntil(t *testing.T, at time.Time) {
	t.Helper()
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.Context().Done():
	}
}

// checkLeaseBound reports, as test errors, every write node acknowledged
// after bound (when its lease may have expired at etcd) and before end.
func checkLeaseBound(t *testing.T, acks []testcluster.Ack, node string, bound, end, ref time.Time, why string) {
	t.Helper()
	late := acksBetween(acks, node, bound.Add(time.Nanosecond), end)
	if len(late) == 0 {
		return
	}
	t.Errorf("%s acknowledged %d writes after its lease may have expired (%s: %s), the last at %s: %s",
		node, len(late), why, rel(bound, ref), rel(late[len(late)-1].At, ref), testcluster.DescribeAcks(late, 5))
}
