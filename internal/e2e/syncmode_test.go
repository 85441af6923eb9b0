package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Synchronous mode (patroni-compat.md §3.7): an acknowledged commit
// survives the primary's death, only the standby named in the sync key is
// promoted, strict mode blocks commits without a standby, non-strict mode
// degrades visibly, and the mode toggles at runtime without a restart.

const (
	// syncRounds is how many primaries TestSyncFailoverKeepsAckedWrites kills.
	syncRounds = 5
	// syncAcksPerRound: acknowledged writes on a primary before it is killed.
	syncAcksPerRound = 50
	// strictHold is how long a commit must stay blocked in strict mode.
	strictHold = 5 * time.Second
)

// syncOn is the bootstrap dynamic config of a synchronous cluster.
func syncOn(strict bool) map[string]any {
	return map[string]any{"synchronous_mode": true, "synchronous_mode_strict": strict}
}

// TestSyncFailoverKeepsAckedWrites: a writer records every acknowledged
// id while the primary's host is killed, syncRounds times on one cluster
// (the killed node restarts and rejoins between rounds). Each time, the
// node the sync key named right before the kill becomes the leader and
// holds every id ever acknowledged. A short lease keeps the rounds fast.
func TestSyncFailoverKeepsAckedWrites(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{TTL: 6, RetryTimeout: 2, DCS: syncOn(false)})
	mustExec(t, leader, "CREATE TABLE e2e_sync (id bigint PRIMARY KEY, node text NOT NULL)")
	w := startSyncWriter(t, c, "e2e_sync")
	st := syncFailoverRounds(t, c, w, leader, syncRounds, syncModeFailover)
	if cancelled := st.SyncCancelled; len(cancelled) > 0 {
		t.Errorf("%d commits returned after PostgreSQL cancelled their synchronous wait: %s", len(cancelled), testcluster.DescribeAcks(cancelled, 20))
	}
}

// syncModeFailover: right before the kill the sync key names old and one
// standby, and old acknowledged syncAcksPerRound writes; that standby
// must win, its first write acknowledged within ttl + rtoSlack.
var syncModeFailover = syncFailover{
	table: "e2e_sync",
	arm: func(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, old *testcluster.Node, since time.Time, round int) syncKey {
		t.Helper()
		waitSyncStandby(t, c, old, rejoinTimeout)
		waitAcked(t, w, old.Name, since, syncAcksPerRound, replicateTimeout)
		k, ok, err := readSyncKey(t.Context(), c)
		if err != nil || !ok || k.Leader != old.Name || len(k.Standbys()) != 1 {
			t.Fatalf("round %d: right before the kill the sync key is %s (exists %t, err %v), want %s and one standby", round, k, ok, err, old.Name)
		}
		return k
	},
	checkWinner: func(t *testing.T, c *testcluster.Cluster, round int, old, winner *testcluster.Node, k syncKey, _ time.Time, rto time.Duration) {
		t.Helper()
		if winner.Name != k.Standbys()[0] {
			t.Errorf("round %d: %s was promoted, but the sync key named %s right before %s was killed", round, winner.Name, k.Standbys()[0], old.Name)
		}
		if bound := c.TTL() + rtoSlack; rto >= bound {
			t.Errorf("round %d: first write acknowledged by %s %s after the kill, want < ttl + %s = %s", round, winner.Name, rto.Round(time.Millisecond), rtoSlack, bound)
		}
	},
}

// TestSyncPromotesSyncStandby: both replicas hold exactly the primary's
// WAL, the asynchronous one would win the tie-break by name, yet the
// primary's death promotes the standby the sync key names.
func TestSyncPromotesSyncStandby(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	sb := waitSyncStandby(t, c, leader, replicateTimeout)
	async := otherReplica(c, leader, sb)
	if async.Name > sb.Name {
		// Make the higher name synchronous: restarting the current
		// synchronous standby moves the sync key to the other replica,
		// which keeps it once the restarted one streams again.
		sb.StopAgent(t)
		if got := waitSyncStandby(t, c, leader, replicateTimeout); got != async {
			t.Fatalf("with %s stopped the sync key names %s, want %s", sb.Name, got.Name, async.Name)
		}
		sb.Start(t)
		waitStreamingFrom(t, sb, leader, rejoinTimeout)
		sb, async = async, sb
	}
	mustExec(t, leader, "CREATE TABLE e2e_syncwin (id int PRIMARY KEY)")
	mustExec(t, leader, "INSERT INTO e2e_syncwin SELECT generate_series(1, 100)")
	// Both replicas flushed and replayed all of the leader's WAL.
	waitRows(t, []*testcluster.Node{leader}, 2, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND flush_lsn = pg_current_wal_lsn() AND replay_lsn = pg_current_wal_lsn()")

	k, ok, err := readSyncKey(t.Context(), c)
	if err != nil || !ok || k.Leader != leader.Name || !slices.Equal(k.Standbys(), []string{sb.Name}) {
		t.Fatalf("right before the kill the sync key is %s (exists %t, err %v), want {%s, [%s]}", k, ok, err, leader.Name, sb.Name)
	}
	killed := time.Now()
	leader.Kill(t)
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	posSync, err1 := walPosition(ctx, sb)
	posAsync, err2 := walPosition(ctx, async)
	cancel()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kill: synchronous %s at %d, asynchronous %s at %d (wins the name tie-break: %t)", sb.Name, posSync, async.Name, posAsync, async.Name < sb.Name)
	if posSync != posAsync {
		t.Fatalf("the replicas are not equally advanced (%s %d, %s %d): the scenario did not hold", sb.Name, posSync, async.Name, posAsync)
	}

	winner := waitNewLeader(t, c, leader.Name, failoverWait)
	t.Logf("%s promoted %.1fs after the kill", winner.Name, time.Since(killed).Seconds())
	if winner != sb {
		st, _ := async.Status(t.Context())
		t.Fatalf("%s was promoted, want the synchronous standby %s (sync key %s); %s's GET /patroni: %v", winner.Name, sb.Name, k, async.Name, st)
	}
	d := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	t.Logf("failover decision: %s", d)
	waitStreamingFrom(t, async, winner, rejoinTimeout)
	if got := waitSyncStandby(t, c, winner, replicateTimeout); got != async {
		t.Errorf("after the failover the sync key names %s, want %s", got.Name, async.Name)
	}
	waitRows(t, []*testcluster.Node{winner, async}, 100, "SELECT count(*) FROM e2e_syncwin")
}

// otherReplica returns the node that is neither leader nor sb.
func otherReplica(c *testcluster.Cluster, leader, sb *testcluster.Node) *testcluster.Node {
	for _, n := range c.Others(leader.Name) {
		if n != sb {
			return n
		}
	}
	return nil
}

// TestSyncStrictBlocksWithoutStandby: in strict mode, with every replica
// stopped, synchronous_standby_names is '*' and a commit waits; it returns
// once a replica is back, and the row is there.
func TestSyncStrictBlocksWithoutStandby(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(true)})
	waitSyncStandby(t, c, leader, replicateTimeout)
	mustExec(t, leader, "CREATE TABLE e2e_strict (id int PRIMARY KEY)")
	replicas := c.Others(leader.Name)
	for _, r := range replicas {
		r.StopAgent(t)
	}
	waitSSN(t, leader, replicateTimeout, "*")
	st, err := syncStatus(t.Context(), leader)
	if err != nil {
		t.Fatal(err)
	}
	if st["strict"] != true || st["degraded"] == true {
		t.Errorf("GET /patroni on %s: regent.synchronous = %v, want strict and not degraded", leader.Name, st)
	}

	write := startBlockedWrite(t, leader, "INSERT INTO e2e_strict VALUES (1)")
	testcluster.Poll(t, replicateTimeout, "the INSERT waiting for a synchronous standby (wait_event SyncRep)", func(ctx context.Context) error {
		if err := write.returned(); err != nil {
			t.Fatalf("no replica runs, yet %v", err)
		}
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'e2e-blocked-write' AND wait_event = 'SyncRep'")
		if err != nil {
			return err
		}
		if n != 1 {
			return errors.New("no backend waiting on SyncRep")
		}
		return nil
	})
	holdsFor(t, strictHold, "the INSERT stays blocked while synchronous_standby_names is '*'", func(ctx context.Context) error {
		if err := write.returned(); err != nil {
			return err
		}
		ssn, err := showSSN(ctx, leader)
		if err != nil {
			return err
		}
		if ssn != "*" {
			return fmt.Errorf("synchronous_standby_names = %q, want '*'", ssn)
		}
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM e2e_strict")
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("the waiting row is visible on %s: count %d", leader.Name, n)
		}
		return nil
	})

	back := replicas[0]
	started := time.Now()
	back.Start(t)
	took, err := write.wait(t, rejoinTimeout)
	if err != nil {
		t.Fatalf("the INSERT failed once %s was back: %v", back.Name, err)
	}
	t.Logf("the INSERT returned %.1fs after it started, %.1fs after %s's agent was started", took.Seconds(), write.at.Sub(started).Seconds(), back.Name)
	waitRows(t, []*testcluster.Node{leader, back}, 1, "SELECT count(*) FROM e2e_strict WHERE id = 1")
	if got := waitSyncStandby(t, c, leader, rejoinTimeout); got != back {
		t.Errorf("the sync key names %s, want %s", got.Name, back.Name)
	}
	waitSSN(t, leader, replicateTimeout, back.Name)
}

// TestSyncNonStrictDegrades: without strict mode, stopping every replica
// lets writes go on asynchronously; the primary reports the degradation
// in GET /patroni and as a WARN log line, and recovers when a replica is
// back.
func TestSyncNonStrictDegrades(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	waitSyncStandby(t, c, leader, replicateTimeout)
	mustExec(t, leader, "CREATE TABLE e2e_degraded (id bigint PRIMARY KEY, node text NOT NULL)")
	w := startSyncWriter(t, c, "e2e_degraded")
	waitAcked(t, w, leader.Name, time.Now(), 20, replicateTimeout)

	logs := leader.CaptureLog(t) // from here on: the bootstrap's own degradation is not counted
	stopped := time.Now()
	replicas := c.Others(leader.Name)
	for _, r := range replicas {
		r.StopAgent(t)
	}
	testcluster.Poll(t, replicateTimeout, "GET /patroni on "+leader.Name+": regent.synchronous.degraded = true", func(ctx context.Context) error {
		st, err := syncStatus(ctx, leader)
		if err != nil {
			return err
		}
		if st["degraded"] != true {
			return fmt.Errorf("regent.synchronous = %v", st)
		}
		return nil
	})
	waitSSN(t, leader, replicateTimeout, "")
	waitAcked(t, w, leader.Name, time.Now(), 50, replicateTimeout)
	warn := logs.Wait(t, replicateTimeout, "WARN about degraded synchronous mode", func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(strings.ToLower(l), "degraded")
	})
	t.Logf("log line: %s", warn)
	if k, ok, err := readSyncKey(t.Context(), c); err != nil || !ok || k.Leader != leader.Name || len(k.Standbys()) != 0 {
		t.Errorf("degraded: sync key %s (exists %t, err %v), want %s with no standby", k, ok, err, leader.Name)
	}
	st := w.Snapshot()
	acked := st.Acked
	var during []testcluster.Ack
	for _, a := range acked {
		if a.At.After(stopped) {
			during = append(during, a)
		}
	}
	t.Logf("writer: %d writes acknowledged since the replicas began stopping, longest gap %s; %d failed attempts, last error %v",
		len(during), testcluster.LongestGap(acked).Duration.Round(time.Millisecond), st.Errors, st.LastErr)

	back := replicas[0]
	back.Start(t)
	if got := waitSyncStandby(t, c, leader, rejoinTimeout); got != back {
		t.Errorf("the sync key names %s, want %s", got.Name, back.Name)
	}
	testcluster.Poll(t, replicateTimeout, "GET /patroni on "+leader.Name+": not degraded", func(ctx context.Context) error {
		st, err := syncStatus(ctx, leader)
		if err != nil {
			return err
		}
		if st["degraded"] == true {
			return fmt.Errorf("regent.synchronous = %v", st)
		}
		return nil
	})
}

// TestSyncModeToggleAtRuntime: PATCH /config turns synchronous mode on
// (the sync key and synchronous_standby_names name a standby) and off
// (both cleared) with no PostgreSQL restart anywhere.
func TestSyncModeToggleAtRuntime(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	before := postmasters(t, c)
	if ssn, err := showSSN(t.Context(), leader); err != nil || ssn != "" {
		t.Fatalf("before: synchronous_standby_names = %q (err %v), want ''", ssn, err)
	}

	patchConfig(t, leader, map[string]any{"synchronous_mode": true})
	sb := waitSyncStandby(t, c, leader, replicateTimeout)
	waitSSN(t, leader, replicateTimeout, sb.Name)
	testcluster.Poll(t, replicateTimeout, sb.Name+"'s GET /patroni: sync_standby = true", func(ctx context.Context) error {
		st, err := sb.Status(ctx)
		if err != nil {
			return err
		}
		if st["sync_standby"] != true {
			return fmt.Errorf("sync_standby = %v", st["sync_standby"])
		}
		return nil
	})
	mustExec(t, leader, "CREATE TABLE e2e_toggle (id int PRIMARY KEY)")
	mustExec(t, leader, "INSERT INTO e2e_toggle VALUES (1)")

	patchConfig(t, leader, map[string]any{"synchronous_mode": false})
	testcluster.Poll(t, replicateTimeout, "the sync key deleted", func(ctx context.Context) error {
		k, ok, err := readSyncKey(ctx, c)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("sync key %s", k)
		}
		return nil
	})
	waitSSN(t, leader, replicateTimeout, "")
	// No synchronous walsender left.
	waitRows(t, []*testcluster.Node{leader}, 0, "SELECT count(*) FROM pg_stat_replication WHERE sync_state <> 'async'")
	mustExec(t, leader, "INSERT INTO e2e_toggle VALUES (2)")
	waitRows(t, c.Nodes(), 2, "SELECT count(*) FROM e2e_toggle")

	if after := postmasters(t, c); !maps.Equal(before, after) {
		t.Errorf("PostgreSQL restarted while synchronous mode was toggled: before %v, after %v", before, after)
	}
}

// TestSyncStandbyStopReleasesFirst: a synchronous standby that stops
// cleanly first tags itself nosync and waits (up to 2·loop_wait) for the
// leader to take it out of synchronous_standby_names (patroni-compat.md
// §3.7, "Effects elsewhere"), so commits never wait for a standby whose
// PostgreSQL is already gone. An observer samples, while the standby's
// agent stops, whether its postmaster runs and what the leader's
// synchronous_standby_names is.
func TestSyncStandbyStopReleasesFirst(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	sb := waitSyncStandby(t, c, leader, replicateTimeout)
	mustExec(t, leader, "CREATE TABLE e2e_release (id bigint PRIMARY KEY, node text NOT NULL)")
	w := startSyncWriter(t, c, "e2e_release")
	waitAcked(t, w, leader.Name, time.Now(), 20, replicateTimeout)

	obs := observeRelease(t, leader, sb)
	stopping := time.Now()
	sb.StopAgent(t)
	stopped := time.Now()
	testcluster.Poll(t, replicateTimeout, leader.Name+"'s synchronous_standby_names no longer naming "+sb.Name, func(ctx context.Context) error {
		ssn, err := showSSN(ctx, leader)
		if err != nil {
			return err
		}
		if slices.Contains(ssnMembers(ssn), sb.Name) {
			return fmt.Errorf("%q", ssn)
		}
		return nil
	})
	samples, bad := obs.stop()
	waitAcked(t, w, leader.Name, time.Now(), 20, replicateTimeout)
	st := w.Snapshot()
	t.Logf("%s's agent stopped in %.1fs; %d samples, %d of them with its PostgreSQL gone while %s's synchronous_standby_names named it; writer: longest gap %s, %d failed attempts, last error %v",
		sb.Name, stopped.Sub(stopping).Seconds(), samples, len(bad), leader.Name, testcluster.LongestGap(st.Acked).Duration.Round(time.Millisecond), st.Errors, st.LastErr)
	if len(bad) > 0 {
		t.Errorf("commits waited for a stopped standby: %s's PostgreSQL was down while %s's synchronous_standby_names named it (first at %s, last at %s, %d samples); the stopping standby was not released first",
			sb.Name, leader.Name, bad[0].Format("15:04:05.000"), bad[len(bad)-1].Format("15:04:05.000"), len(bad))
	}
}

// releaseObserver samples, every 20 ms and until stop, whether sb's
// postmaster runs and leader's synchronous_standby_names; it records the
// times sb's PostgreSQL was down while the setting named it.
type releaseObserver struct {
	cancel  context.CancelFunc
	done    chan struct{}
	samples int
	bad     []time.Time
}

func observeRelease(t *testing.T, leader, sb *testcluster.Node) *releaseObserver {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cctx, ccancel := context.WithTimeout(ctx, replicateTimeout)
	conn, err := leader.Connect(cctx)
	ccancel()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	o := &releaseObserver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer closeQuietly(ctx, conn)
		testcluster.Every(ctx, 20*time.Millisecond, func() {
			down := !sb.PostgresRunning()
			var ssn string
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			err := conn.QueryRow(qctx, "SHOW synchronous_standby_names").Scan(&ssn)
			qcancel()
			if err != nil {
				return
			}
			o.samples++
			if down && slices.Contains(ssnMembers(ssn), sb.Name) {
				o.bad = append(o.bad, time.Now())
			}
		})
	}()
	t.Cleanup(func() { o.stop() })
	return o
}

// stop ends the sampling and returns the number of samples and the bad
// ones.
func (o *releaseObserver) stop() (int, []time.Time) {
	o.cancel()
	<-o.done
	return o.samples, o.bad
}
