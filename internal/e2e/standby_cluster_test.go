package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/linkproxy"
	"github.com/regent-ha/regent/internal/testcluster"
)

// primaryProxy is the moving address a standby cluster follows: a TCP
// proxy that sends every new connection to the cluster's current primary
// (the leader key's node, checked with GET /primary as HAProxy checks it).
// It returns the proxy's port.
func primaryProxy(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	p := linkproxy.New(t.Context(), ln, func(ctx context.Context) (net.Conn, error) {
		n, err := c.LeaderNode(ctx)
		if err != nil {
			return nil, err
		}
		if err := n.API().CheckPrimary(ctx); err != nil {
			return nil, err
		}
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.PGPort)))
	}, 0)
	t.Cleanup(p.Close)
	return port
}

// waitStandbyLeader waits until n is the standby leader: GET /patroni role
// standby_leader, its member key says so, /standby-leader 200, /primary 503.
func waitStandbyLeader(t *testing.T, c *testcluster.Cluster, n *testcluster.Node) {
	t.Helper()
	n.WaitRole(t, rejoinTimeout, "standby_leader")
	testcluster.Poll(t, replicateTimeout, n.Name+" published as standby leader", func(ctx context.Context) error {
		if role, err := memberField(ctx, c, n.Name, "role"); err != nil || role != "standby_leader" {
			return fmt.Errorf("member key role %q (%w)", role, err)
		}
		for path, want := range map[string]int{"/standby-leader": http.StatusOK, "/leader": http.StatusOK, "/primary": http.StatusServiceUnavailable} {
			if code, _, err := n.Get(ctx, path); err != nil || code != want {
				return fmt.Errorf("GET %s = %d (%w), want %d", path, code, err, want)
			}
		}
		if inRecovery, err := n.QueryInt(ctx, "SELECT pg_is_in_recovery()::int"); err != nil || inRecovery != 1 {
			return fmt.Errorf("pg_is_in_recovery = %d (%w), want 1", inRecovery, err)
		}
		return nil
	})
}

// TestStandbyCluster is issue #21's disaster-recovery test: a standby
// cluster B (its own etcd and scope) follows primary cluster A through a
// moving address, keeps following through a switchover and a failover
// (host death) in A and through four switchovers inside B (regentctl,
// Patroni's POST /switchover and /failover, PATCH /switchover) with no
// member of B ever writable, promote-cluster
// makes B writable within loop_wait + 2 s with every row A had, and
// demote-cluster turns A into B's standby cluster.
func TestStandbyCluster(t *testing.T) {
	a, leaderA := startHealthy(t, testcluster.Options{Nodes: 2, Scope: "dr-a"})
	seedTable(t, a, leaderA, "dr", "id int primary key", "SELECT g FROM generate_series(1, 100) g", 100)
	proxyA := primaryProxy(t, a)

	b := testcluster.New(t, testcluster.Options{Nodes: 2, Scope: "dr-b",
		DCS: map[string]any{"standby_cluster": map[string]any{"host": "127.0.0.1", "port": proxyA}}})
	leaderB := pollLeaderKey(t, b)
	waitStandbyLeader(t, b, leaderB)
	replicaB := b.Others(leaderB.Name)[0]
	replicaB.WaitRole(t, rejoinTimeout, "replica")
	waitRows(t, b.Nodes(), 100, "SELECT count(*) FROM dr")
	if code, _, err := replicaB.Get(t.Context(), "/replica"); err != nil || code != http.StatusOK {
		t.Errorf("GET /replica on %s = %d (%v), want 200", replicaB.Name, code, err)
	}

	// A switchover in A: the proxy moves to A's new primary, B follows.
	target := a.Others(leaderA.Name)[0]
	// The pre-flight reads the published positions (refreshed each
	// loop_wait): B's clone just moved A's WAL on.
	testcluster.Poll(t, replicateTimeout, target.Name+" qualifying as switchover candidate", func(ctx context.Context) error {
		code, body, err := leaderA.Do(ctx, http.MethodPatch, "/switchover", switchoverReq{To: target.Name, DryRun: true})
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("dry run: %d %s", code, body)
		}
		return err
	})
	id := startSwitchover(t, leaderA, switchoverReq{To: target.Name})
	waitRecord(t, leaderA, id, 2*time.Minute, "completed", closed)
	newA := a.WaitLeader(t, rejoinTimeout)
	if newA.Name != target.Name {
		t.Fatalf("leader of A after the switchover = %s, want %s", newA.Name, target.Name)
	}
	mustExec(t, newA, "INSERT INTO dr SELECT g FROM generate_series(101, 200) g")
	waitRows(t, append(a.Nodes(), b.Nodes()...), 200, "SELECT count(*) FROM dr")
	waitStandbyLeader(t, b, leaderB)

	// A failover in A (its primary's host dies): the proxy moves to the
	// survivor once it answers /primary, B follows again.
	newA.Kill(t)
	survivor := a.WaitLeader(t, rejoinTimeout)
	if survivor.Name == newA.Name {
		t.Fatalf("leader of A after %s died = %s", newA.Name, survivor.Name)
	}
	mustExec(t, survivor, "INSERT INTO dr SELECT g FROM generate_series(201, 300) g")
	waitRows(t, b.Nodes(), 300, "SELECT count(*) FROM dr")
	waitStandbyLeader(t, b, leaderB)
	newA.Start(t)
	newA = a.WaitHealthy(t, rejoinTimeout)

	// Four switchovers inside B, one through each way in — regentctl,
	// Patroni's POST /switchover and POST /failover naming a candidate,
	// Regent's PATCH /switchover — ending where they began: each time
	// the standby leader's key moves, the new standby leader stays in
	// recovery following A (A's next rows reach it and B's other
	// member), and no member of B is ever writable meanwhile.
	patroni := func(path, want string) func(from, to *testcluster.Node) {
		return func(from, to *testcluster.Node) {
			ctx, cancel := context.WithTimeout(t.Context(), switchoverBound)
			defer cancel()
			code, body, err := from.Do(ctx, http.MethodPost, path, map[string]any{"leader": from.Name, "candidate": to.Name})
			if err != nil || code != http.StatusOK || !strings.Contains(string(body), want) {
				t.Fatalf("POST %s %s → %s in the standby cluster: %d %s (%v), want 200 %s", path, from.Name, to.Name, code, body, err, want)
			}
		}
	}
	watch := watchInRecovery(t, b)
	for i, hop := range []struct {
		from, to *testcluster.Node
		run      func(from, to *testcluster.Node)
	}{
		{leaderB, replicaB, func(_, to *testcluster.Node) {
			mustSucceed(t, regentctl(t, b, switchoverBound, "switchover", "--to", to.Name, "-y"))
		}},
		{replicaB, leaderB, patroni("/switchover", "Successfully switched over to")},
		{leaderB, replicaB, patroni("/failover", "Successfully failed over to")},
		{replicaB, leaderB, func(from, to *testcluster.Node) {
			waitRecord(t, from, startSwitchover(t, from, switchoverReq{To: to.Name}), switchoverBound, "completed as a standby cluster's switchover", func(r switchoverRecord) error {
				if r.State != "completed" || !r.StandbyCluster {
					return fmt.Errorf("state %q, standby_cluster %t", r.State, r.StandbyCluster)
				}
				return nil
			})
		}},
	} {
		standbySwitchover(t, b, hop.from, hop.to, proxyA, func() { hop.run(hop.from, hop.to) })
		mustExec(t, survivor, "INSERT INTO dr SELECT g FROM generate_series($1::int, $2::int) g", 301+25*i, 325+25*i)
		waitRows(t, b.Nodes(), int64(325+25*i), "SELECT count(*) FROM dr")
	}
	watch.stop()

	// promote-cluster on B: writable within loop_wait + 2 s, every row.
	regentctlBinary(t) // built before the clock starts
	const bound = time.Second + 2*time.Second
	var writable atomic.Int64 // ns since start of the first write that succeeded
	start := time.Now()
	probeCtx, stopProbe := context.WithCancel(t.Context())
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for probeCtx.Err() == nil {
			ctx, cancel := context.WithTimeout(probeCtx, 500*time.Millisecond)
			err := leaderB.Exec(ctx, "INSERT INTO dr VALUES (1000)")
			cancel()
			if err == nil {
				writable.Store(int64(time.Since(start)))
				return
			}
			select {
			case <-probeCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	r := regentctl(t, b, 2*time.Minute, "promote-cluster", "--force")
	mustSucceed(t, r)
	testcluster.Poll(t, replicateTimeout, "a write on B's leader", func(context.Context) error {
		if writable.Load() == 0 {
			return fmt.Errorf("not writable yet")
		}
		return nil
	})
	stopProbe()
	<-probed
	took := time.Duration(writable.Load())
	t.Logf("promote-cluster: B's leader %s writable %s after the command started (bound loop_wait + 2 s = %s)", leaderB.Name, took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("promote-cluster: writable after %s, want ≤ %s", took, bound)
	}
	leaderB.WaitRole(t, replicateTimeout, "primary")
	waitRows(t, b.Nodes(), 400, "SELECT count(*) FROM dr WHERE id <= 400")
	waitRows(t, b.Nodes(), 401, "SELECT count(*) FROM dr")

	// demote-cluster on A: A becomes B's standby (its primary rewound or
	// re-cloned) and receives B's new rows.
	proxyB := primaryProxy(t, b)
	mustSucceed(t, regentctl(t, a, 3*time.Minute, "demote-cluster", "--host", "127.0.0.1", "--port", strconv.Itoa(proxyB), "--force"))
	waitStandbyLeader(t, a, newA)
	mustExec(t, leaderB, "INSERT INTO dr SELECT g FROM generate_series(2001, 2100) g")
	waitReading(t, rejoinTimeout, "B's rows on A", "got %d", func(ctx context.Context) (int64, error) {
		return newA.QueryInt(ctx, "SELECT count(*) FROM dr")
	}, func(got int64) bool { return got == 501 })
	waitRows(t, a.Nodes(), 501, "SELECT count(*) FROM dr")
}

// pollLeaderKey waits for a leader key naming a node (a standby cluster's
// leader answers /standby-leader, not /primary: not WaitLeader).
func pollLeaderKey(t *testing.T, c *testcluster.Cluster) *testcluster.Node {
	t.Helper()
	var n *testcluster.Node
	testcluster.Poll(t, bootstrapTimeout, "a leader key in "+c.Scope(), func(ctx context.Context) (err error) {
		n, err = c.LeaderNode(ctx)
		return err
	})
	return n
}

// standbySwitchover moves standby cluster c's leader key from from to to
// with run (a switchover request), once to qualifies, and checks the
// outcome: to is the standby leader, in recovery and streaming from the
// remote at port remote (the proxy in front of A), and from is a replica
// streaming from it.
func standbySwitchover(t *testing.T, c *testcluster.Cluster, from, to *testcluster.Node, remote int, run func()) {
	t.Helper()
	// The pre-flight reads the published positions (refreshed each
	// loop_wait) and needs to streaming from from.
	testcluster.Poll(t, rejoinTimeout, to.Name+" qualifying as switchover candidate in "+c.Scope(), func(ctx context.Context) error {
		code, body, err := from.Do(ctx, http.MethodPatch, "/switchover", switchoverReq{To: to.Name, DryRun: true})
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("dry run: %d %s", code, body)
		}
		return err
	})
	run()
	waitStandbyLeader(t, c, to)
	waitStreamingFrom(t, from, to, rejoinTimeout)
	testcluster.Poll(t, rejoinTimeout, to.Name+" streaming from the remote cluster", func(ctx context.Context) error {
		n, err := to.QueryInt(ctx, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_port = $1", remote)
		if err == nil && n != 1 {
			err = fmt.Errorf("no WAL receiver streaming from port %d", remote)
		}
		return err
	})
}

// recoveryWatch polls pg_is_in_recovery() on every node of a standby
// cluster until stop, which fails the test if any node ever answered
// false, or if some node never answered (the watch saw nothing).
type recoveryWatch struct {
	t        *testing.T
	nodes    []*testcluster.Node
	cancel   context.CancelFunc
	done     chan struct{}
	answered map[string]int
	writable []string
}

func watchInRecovery(t *testing.T, c *testcluster.Cluster) *recoveryWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &recoveryWatch{t: t, nodes: c.Nodes(), cancel: cancel, done: make(chan struct{}), answered: map[string]int{}}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			for _, n := range w.nodes {
				qctx, qcancel := context.WithTimeout(ctx, time.Second)
				v, err := n.QueryInt(qctx, "SELECT pg_is_in_recovery()::int")
				qcancel()
				if err != nil {
					continue // stopping, starting: nothing to see
				}
				w.answered[n.Name]++
				if v != 1 {
					w.writable = append(w.writable, fmt.Sprintf("%s at %s", n.Name, time.Now().Format(time.TimeOnly+".000")))
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *recoveryWatch) stop() {
	w.t.Helper()
	w.cancel()
	<-w.done
	if len(w.writable) > 0 {
		w.t.Errorf("standby cluster members out of recovery (writable): %v", w.writable)
	}
	for _, n := range w.nodes {
		if w.answered[n.Name] == 0 {
			w.t.Errorf("the recovery watch got no answer from %s: it proved nothing there", n.Name)
		}
		w.t.Logf("recovery watch: %s answered pg_is_in_recovery() %d times", n.Name, w.answered[n.Name])
	}
}
