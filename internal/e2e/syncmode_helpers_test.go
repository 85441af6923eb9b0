package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Timings of the synchronous-mode writer. A commit is bounded on the
// client only: the connection's deadline closes it, so the server never
// cancels a commit that waits for a synchronous standby (a cancelled wait
// commits locally and reports success, which is not an acknowledgement
// the cluster can keep). No statement_timeout for the same reason.
const (
	syncWriteTimeout   = 3 * time.Second
	syncConnectTimeout = 500 * time.Millisecond
)

// syncKey is the sync key (patroni-compat.md §1.3.5), read as the agents
// and the chaos suite read it (dcs.Sync), with a String for messages.
type syncKey struct{ dcs.Sync }

func (k syncKey) String() string {
	return fmt.Sprintf("{leader: %s, sync_standby: %v}", k.Leader, k.Standbys())
}

// readSyncKey returns the sync key and whether it exists.
func readSyncKey(ctx context.Context, c *testcluster.Cluster) (syncKey, bool, error) {
	v, err := c.Get(ctx, "sync")
	if err != nil || v == nil {
		return syncKey{}, false, err
	}
	var k syncKey
	if err := json.Unmarshal(v, &k); err != nil {
		return syncKey{}, true, fmt.Errorf("sync key %q: %w", v, err)
	}
	return k, true, nil
}

// waitSyncStandby waits until the sync key names leader and exactly one
// standby that leader's pg_stat_replication shows streaming with
// sync_state 'sync', and returns that standby.
func waitSyncStandby(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, timeout time.Duration) *testcluster.Node {
	t.Helper()
	var sb *testcluster.Node
	testcluster.Poll(t, timeout, "the sync key to name "+leader.Name+" and a synchronous standby", func(ctx context.Context) error {
		k, ok, err := readSyncKey(ctx, c)
		switch {
		case err != nil:
			return err
		case !ok:
			return errors.New("no sync key")
		case k.Leader != leader.Name || len(k.Standbys()) != 1:
			return fmt.Errorf("sync key %s", k)
		}
		n := c.Node(k.Standbys()[0])
		if n == nil {
			return fmt.Errorf("sync key %s names no node of this cluster", k)
		}
		state, err := queryString(ctx, leader, "SELECT coalesce(max(sync_state), 'absent') FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", n.Name)
		if err != nil {
			return err
		}
		if state != "sync" {
			return fmt.Errorf("sync key %s but %s's pg_stat_replication sync_state of %s = %s", k, leader.Name, n.Name, state)
		}
		sb = n
		return nil
	})
	return sb
}

// queryString runs a query returning one text value on a fresh connection.
func queryString(ctx context.Context, n *testcluster.Node, sql string, args ...any) (string, error) {
	conn, err := n.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer closeQuietly(ctx, conn)
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		return "", fmt.Errorf("query on %s: %w", n.Name, err)
	}
	return s, nil
}

// showSSN returns n's synchronous_standby_names as PostgreSQL runs it.
func showSSN(ctx context.Context, n *testcluster.Node) (string, error) {
	return queryString(ctx, n, "SHOW synchronous_standby_names")
}

// waitSSN waits until n's SHOW synchronous_standby_names is want.
func waitSSN(t *testing.T, n *testcluster.Node, timeout time.Duration, want string) {
	t.Helper()
	waitReading(t, timeout, fmt.Sprintf("SHOW synchronous_standby_names = %q on %s", want, n.Name), "%q",
		func(ctx context.Context) (string, error) { return showSSN(ctx, n) },
		func(got string) bool { return got == want })
}

// syncStatus returns the regent.synchronous block of n's GET /patroni
// (nil when absent).
func syncStatus(ctx context.Context, n *testcluster.Node) (map[string]any, error) {
	st, err := n.Status(ctx)
	if err != nil {
		return nil, err
	}
	r, _ := st["regent"].(map[string]any)
	s, _ := r["synchronous"].(map[string]any)
	return s, nil
}

// patchConfig sends PATCH /config to n and fails the test unless it
// answers 200.
func patchConfig(t *testing.T, n *testcluster.Node, patch map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	code, body, err := n.Do(ctx, http.MethodPatch, "/config", patch)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Fatalf("PATCH /config %v on %s = %d: %s", patch, n.Name, code, compactBody(body))
	}
}

// startSyncWriter starts a writer on table (id bigint PRIMARY KEY, node
// text): a row every 10 ms on whichever node answers GET /primary with
// 200. An acknowledged id is one whose INSERT (an implicit COMMIT)
// returned success; a commit that came back with PostgreSQL's "canceling
// wait for synchronous replication" warning is recorded apart
// (SyncCancelled), as not acknowledged by the synchronous standby.
func startSyncWriter(t *testing.T, c *testcluster.Cluster, table string) *testcluster.Writer {
	return runWriter(t, c, testcluster.WriterOptions{Table: table, AppName: "e2e-sync-writer",
		Timeout: syncWriteTimeout, ConnectTimeout: syncConnectTimeout})
}

// syncFailover is what a failover round of a synchronous cluster
// (syncFailoverRounds) checks that depends on the synchronous mode.
type syncFailover struct {
	// table is the writer's table.
	table string
	// arm waits until old leads with its synchronous standbys in place and
	// has acknowledged syncAcksPerRound writes since since; it returns the
	// sync key the new leader must be chosen by.
	arm func(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, old *testcluster.Node, since time.Time, round int) syncKey
	// checkWinner judges winner, the new leader after old was killed at
	// killed, against k (what arm returned) and the RTO.
	checkWinner func(t *testing.T, c *testcluster.Cluster, round int, old, winner *testcluster.Node, k syncKey, killed time.Time, rto time.Duration)
}

// syncFailoverRounds kills the primary rounds times on one cluster while
// w writes (syncFailoverRound: the killed node restarts and rejoins
// between rounds), then stops w and checks that the last primary holds
// every acknowledged write. It returns w's final stats.
func syncFailoverRounds(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, leader *testcluster.Node, rounds int, m syncFailover) testcluster.WriterStats {
	t.Helper()
	var rtos []string
	for round := 1; round <= rounds; round++ {
		var rto time.Duration
		leader, rto = syncFailoverRound(t, c, w, leader, round, m)
		rtos = append(rtos, fmt.Sprintf("%.1fs", rto.Seconds()))
	}
	w.Stop()
	st := w.Snapshot()
	t.Logf("summary: %d rounds, last primary %s, RTOs %v", rounds, leader.Name, rtos)
	checkAcked(t, leader, m.table, st.Acked)
	return st
}

// syncFailoverRound kills the primary old once m.arm returns, lets
// m.checkWinner judge the new leader and the RTO (kill to the first write
// the new leader acknowledged), checks the new leader holds every
// acknowledged write, restarts old and waits for it to stream from the
// new leader. It returns the new leader and the RTO.
func syncFailoverRound(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, old *testcluster.Node, round int, m syncFailover) (*testcluster.Node, time.Duration) {
	t.Helper()
	since := time.Now()
	k := m.arm(t, c, w, old, since, round)
	ackedBefore := w.Snapshot().Acked
	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	first := waitAcked(t, w, winner.Name, killed, 1, failoverWait)
	rto := first.Sub(killed)
	m.checkWinner(t, c, round, old, winner, k, killed, rto)

	acked := w.Snapshot().Acked
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	lost, rows, err := testcluster.MissingAcks(ctx, winner, m.table, acked)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	thisRound := 0
	for _, a := range ackedBefore {
		if a.Node == old.Name && a.At.After(since) {
			thisRound++
		}
	}
	t.Logf("round %d: killed %s, promoted %s (sync key %s, quorum %d); acked %d in total (%d by %s this round), present %d, lost %d, %d rows on %s; RTO %.1fs",
		round, old.Name, winner.Name, k, k.QuorumValue(), len(acked), thisRound, old.Name, len(acked)-len(lost), len(lost), rows, winner.Name, rto.Seconds())
	if len(lost) > 0 {
		t.Errorf("round %d: %d acknowledged writes missing on the new primary %s: %s", round, len(lost), winner.Name, testcluster.DescribeAcks(lost, 20))
	}

	restarted := time.Now()
	old.Start(t)
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	t.Logf("round %d: %s streams from %s %.1fs after its restart", round, old.Name, winner.Name, time.Since(restarted).Seconds())
	return winner, rto
}

// blockedWrite is one statement run in its own goroutine on its own
// connection, bounded by rejoinTimeout + strictHold on the client side.
type blockedWrite struct {
	start time.Time
	fin   chan struct{}
	err   error // valid after fin is closed
	at    time.Time
}

func startBlockedWrite(t *testing.T, n *testcluster.Node, sql string) *blockedWrite {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cfg := n.ConnConfig()
	cfg.RuntimeParams["application_name"] = "e2e-blocked-write"
	cctx, ccancel := context.WithTimeout(ctx, replicateTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	ccancel()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &blockedWrite{start: time.Now(), fin: make(chan struct{})}
	go func() {
		defer close(w.fin)
		defer closeQuietly(ctx, conn)
		wctx, wcancel := context.WithTimeout(ctx, rejoinTimeout+strictHold+replicateTimeout)
		defer wcancel()
		_, w.err = conn.Exec(wctx, sql)
		w.at = time.Now()
	}()
	t.Cleanup(func() { cancel(); <-w.fin })
	return w
}

// returned is nil while the statement runs, an error naming its outcome
// once it has returned.
func (w *blockedWrite) returned() error {
	select {
	case <-w.fin:
		ran := w.at.Sub(w.start).Round(time.Millisecond)
		if w.err != nil {
			return fmt.Errorf("the statement returned after %s: %w", ran, w.err)
		}
		return fmt.Errorf("the statement succeeded after %s", ran)
	default:
		return nil
	}
}

// wait waits for the statement to return and gives its error and how long
// it ran.
func (w *blockedWrite) wait(t *testing.T, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	select {
	case <-w.fin:
		return w.at.Sub(w.start), w.err
	case <-time.After(timeout):
		t.Fatalf("the statement had not returned %s after it started", time.Since(w.start).Round(time.Millisecond))
		return 0, nil
	}
}

// postmasters returns, per node, its postmaster pid and
// pg_postmaster_start_time().
func postmasters(t *testing.T, c *testcluster.Cluster) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range c.Nodes() {
		pid, alive := n.PostmasterPID()
		if !alive {
			t.Fatalf("%s: postmaster not running", n.Name)
		}
		ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
		start, err := queryString(ctx, n, "SELECT pg_postmaster_start_time()::text")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name] = fmt.Sprintf("pid %d started %s", pid, start)
	}
	return out
}

// ssnMembers splits a synchronous_standby_names value into its words
// ("2 (pg2,\"pg3\")" → 2, pg2, pg3).
func ssnMembers(ssn string) []string {
	return strings.FieldsFunc(ssn, func(r rune) bool { return strings.ContainsRune(` ,()"`, r) })
}
