package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestFailoverHostDeath: the primary's host dies (SIGKILL of its agent and
// of its whole PostgreSQL process group). A replica takes over within the
// lease TTL plus a few seconds, exactly one node leads, and the winner's
// decision record explains the election and carries its RTO budget, which
// GET /metrics and regentctl history show too.
func TestFailoverHostDeath(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	waitStreamingSeen(t, c.Others(old.Name))
	winner, killed := failOver(t, c, old, "e2e_death", "host death", old.Kill)

	d := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	t.Logf("failover decision: %s", d)
	checkFailoverRecord(t, d, old.Name, c.Others(old.Name))
	checkRTOBudget(t, c, winner, d, c.TTL()/2)

	c.WaitHealthy(t, rejoinTimeout)
	waitRows(t, c.Others(old.Name), 11, "SELECT count(*) FROM e2e_death")
}

// TestFailoverTwice: right after a failover the surviving replica follows
// the new primary onto its timeline; when that primary dies too, the
// replica (fully caught up) must be promoted in turn: its timeline is the
// cluster's even though it has not had a restartpoint on it yet.
func TestFailoverTwice(t *testing.T) {
	c, first := startHealthy(t, testcluster.Options{})
	seedTable(t, c, first, "e2e_twice", "id int PRIMARY KEY", "VALUES (1)", 1)

	first.Kill(t)
	second := waitNewLeader(t, c, first.Name, failoverWait)
	var last *testcluster.Node
	for _, n := range c.Others(first.Name) {
		if n != second {
			last = n
		}
	}
	waitStreamingFrom(t, last, second, rejoinTimeout)
	mustExec(t, second, "INSERT INTO e2e_twice VALUES (2)")
	waitRows(t, []*testcluster.Node{last}, 2, "SELECT count(*) FROM e2e_twice")
	if st, err := last.Status(t.Context()); err == nil {
		t.Logf("%s before the second failover: timeline %v, xlog %v", last.Name, st["timeline"], st["xlog"])
	}

	killed := time.Now()
	second.Kill(t)
	third, wrote := waitFirstWrite(t, []*testcluster.Node{last}, failoverWait, "INSERT INTO e2e_twice VALUES (3)")
	rto := wrote.Sub(killed)
	t.Logf("RTO second failover: %.1fs (new primary %s)", rto.Seconds(), third.Name)
	if bound := c.TTL() + rtoSlack; rto >= bound {
		t.Errorf("second failover: first write accepted %s after the kill, want < %s", rto.Round(time.Millisecond), bound)
	}
}

// checkFailoverRecord checks a failover decision: the previous leader,
// every surviving node as a reachable candidate with an LSN, the timings
// present and ordered.
func checkFailoverRecord(t *testing.T, d decisionEntry, previous string, survivors []*testcluster.Node) {
	t.Helper()
	if d.PreviousLeader != previous {
		t.Errorf("failover record: previous_leader = %q, want %q", d.PreviousLeader, previous)
	}
	for _, n := range survivors {
		cand, ok := d.candidate(n.Name)
		switch {
		case !ok:
			t.Errorf("failover record: no candidate %s", n.Name)
		case !cand.Reachable || cand.LSN == "":
			t.Errorf("failover record: candidate %s reachable=%t lsn=%q, want reachable with an LSN", n.Name, cand.Reachable, cand.LSN)
		case cand.Self != (n.Name == d.Member):
			t.Errorf("failover record: candidate %s self=%t", n.Name, cand.Self)
		}
	}
	tm := d.Timings
	if tm == nil {
		t.Errorf("failover record: no timings")
		return
	}
	if tm.DetectedAt.IsZero() || tm.ElectedAt.IsZero() || tm.PromotedAt.IsZero() {
		t.Errorf("failover record: timings incomplete: detected_at %v elected_at %v promoted_at %v", tm.DetectedAt, tm.ElectedAt, tm.PromotedAt)
		return
	}
	if tm.ElectedAt.Before(tm.DetectedAt) || tm.PromotedAt.Before(tm.ElectedAt) {
		t.Errorf("failover record: timings out of order: detected_at %v elected_at %v promoted_at %v", tm.DetectedAt, tm.ElectedAt, tm.PromotedAt)
	}
}

// TestMostAdvancedWins: of two replicas, the one with more WAL is promoted
// even though the other would win the tie-break by name. Three rounds,
// each on a fresh cluster (its bootstrap is a few seconds; a rejoin would
// make this test depend on pg_rewind, which TestRejoinDiverged covers).
func TestMostAdvancedWins(t *testing.T) {
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("round%d", round), testMostAdvancedRound)
	}
}

func testMostAdvancedRound(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	replicas := c.Others(old.Name) // in name order: [0] wins an equal-WAL tie-break
	held, ahead := replicas[0], replicas[1]
	seedTable(t, c, old, "e2e_adv", "id int PRIMARY KEY", "VALUES (0)", 1)

	release := held.HoldWALReceiver(t)
	mustExec(t, old, "INSERT INTO e2e_adv SELECT generate_series(1, 100)")
	waitRows(t, []*testcluster.Node{ahead}, 101, "SELECT count(*) FROM e2e_adv")
	var heldPos, aheadPos int64
	testcluster.Poll(t, replicateTimeout, "GET /patroni: "+ahead.Name+" ahead of "+held.Name, func(ctx context.Context) error {
		var err1, err2 error
		heldPos, err1 = walPosition(ctx, held)
		aheadPos, err2 = walPosition(ctx, ahead)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if aheadPos <= heldPos {
			return fmt.Errorf("%s at %d, %s at %d", ahead.Name, aheadPos, held.Name, heldPos)
		}
		return nil
	})
	t.Logf("primary %s; %s held at %d, %s at %d", old.Name, held.Name, heldPos, ahead.Name, aheadPos)

	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	release()
	t.Logf("new leader %s after %.1fs", winner.Name, time.Since(killed).Seconds())
	if winner != ahead {
		t.Fatalf("%s was promoted, but %s had more WAL (%d > %d)", winner.Name, ahead.Name, aheadPos, heldPos)
	}
	d := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	checkFailoverRecord(t, d, old.Name, replicas)
	self, _ := d.candidate(winner.Name)
	other, _ := d.candidate(held.Name)
	if a, b := parseLSN(self.LSN), parseLSN(other.LSN); a <= b {
		t.Errorf("failover record: winner %s at %q is not ahead of %s at %q", winner.Name, self.LSN, held.Name, other.LSN)
	}
	waitStreamingFrom(t, held, winner, rejoinTimeout)
	if err := tryWrite(ctx, winner, "INSERT INTO e2e_adv VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, replicas, 102, "SELECT count(*) FROM e2e_adv")
}

// TestFrozenPrimary: the primary's host stalls (SIGSTOP of its agent and
// PostgreSQL). A replica takes over; when the old host resumes, its agent
// fences at once (its lease deadline is long past) and it rejoins as a
// replica of the new primary. A client hammering the old primary's port
// from the moment it resumes gets no write acknowledged. The cluster runs
// in synchronous mode: without a watchdog that is what makes this a
// guarantee rather than a race the agent usually wins — agent and
// PostgreSQL resume together, and an asynchronous primary could commit a
// statement in the milliseconds before the fence (docs/watchdog.md); here
// its commits wait for a standby that now follows the new primary.
func TestFrozenPrimary(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	waitSyncStandby(t, c, old, replicateTimeout) // only a synchronous standby may take over
	ctx := t.Context()
	winner, _ := failOver(t, c, old, "e2e_frozen", "frozen host", old.Freeze)

	hctx, stopHammer := context.WithCancel(ctx)
	defer stopHammer()
	results := make(chan hammerResult, 1)
	old.Thaw(t)
	thawed := time.Now()
	go func() { results <- hammer(hctx, old, thawed) }()
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	rejoined := time.Since(thawed)
	stopHammer()
	h := <-results
	t.Logf("old primary %s refused writes from +%s after the thaw and rejoined as a replica of %s after %.1fs; writes it acknowledged after the promotion of %s: %d (of %d attempts; last error: %v)",
		old.Name, h.refusedAt, winner.Name, rejoined.Seconds(), winner.Name, len(h.acked), h.attempts, h.lastErr)
	if len(h.acked) != 0 {
		t.Errorf("split brain: the old primary %s acknowledged %d writes after %s was promoted (ids %v, at +%v after the thaw)", old.Name, len(h.acked), winner.Name, h.acked, h.ackedAt)
	}
	if h.refusedAt < 0 || h.refusedAt > fenceAfterThaw {
		t.Errorf("the old primary %s did not refuse writes within %s of the thaw (refusing from +%s)", old.Name, fenceAfterThaw, h.refusedAt)
	}
	d := awaitDecision(t, winner, replicateTimeout, "fence|demote", old.Name, thawed, nil)
	t.Logf("old primary's decision after the thaw: %s", d)
	if err := tryWrite(ctx, winner, "INSERT INTO e2e_frozen VALUES (1001, 'new primary')"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, []*testcluster.Node{old}, 1, "SELECT count(*) FROM e2e_frozen WHERE id = 1001")
	waitRows(t, []*testcluster.Node{old}, 0, "SELECT count(*) FROM e2e_frozen WHERE phase = 'old primary'")
}

// failOver seeds table with 10 rows (phase 'before') replicated from old,
// injects the fault on old, and waits for another node's first write
// (within the RTO bound, see waitFailoverRTO) and for that node to be
// the one leader among the running nodes but old; it checks that the new
// primary holds the 10 rows and returns it and when the fault struck.
func failOver(t *testing.T, c *testcluster.Cluster, old *testcluster.Node, table, fault string, inject func(testing.TB)) (*testcluster.Node, time.Time) {
	t.Helper()
	seedTable(t, c, old, table, "id bigint PRIMARY KEY, phase text NOT NULL", "SELECT g, 'before' FROM generate_series(1, 10) g", 10)
	at := time.Now()
	inject(t)
	winner := waitFailoverRTO(t, c, old, at, fault, "INSERT INTO "+table+" VALUES (1000, 'after')")
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner, old)
	})
	if n, err := winner.QueryInt(t.Context(), "SELECT count(*) FROM "+table+" WHERE phase = 'before'"); err != nil {
		t.Errorf("new primary %s: %v", winner.Name, err)
	} else if n != 10 {
		t.Errorf("new primary %s has %d of the 10 rows replicated before the %s", winner.Name, n, fault)
	}
	return winner, at
}

// fenceAfterThaw bounds how long a thawed old primary may keep its
// PostgreSQL writable: its agent's first act is the lease-deadline check.
const fenceAfterThaw = 5 * time.Second

// hammerResult is what a client writing to the old primary saw.
type hammerResult struct {
	attempts int
	acked    []int64
	ackedAt  []time.Duration // since the thaw
	// refusedAt is when writes began to fail for good (the first failure
	// after the last acknowledged write), since the thaw; -1 if none.
	refusedAt time.Duration
	lastErr   error
}

// hammerPace spaces the hammer's attempts: a fenced node answers in well
// under a millisecond, and two cores are shared with the cluster.
const hammerPace = 2 * time.Millisecond

// hammer inserts rows on n as fast as hammerPace allows, each on a fresh
// connection with short connect and statement timeouts, until ctx ends.
func hammer(ctx context.Context, n *testcluster.Node, since time.Time) hammerResult {
	r := hammerResult{refusedAt: -1}
	tick := time.NewTicker(hammerPace)
	defer tick.Stop()
	for id := int64(1_000_000); ; id++ {
		r.attempts++
		err := hammerOnce(ctx, n, id)
		switch {
		case ctx.Err() != nil:
			return r
		case err == nil:
			r.acked = append(r.acked, id)
			r.ackedAt = append(r.ackedAt, time.Since(since))
			r.refusedAt = -1
		default:
			r.lastErr = err
			if r.refusedAt < 0 {
				r.refusedAt = time.Since(since)
			}
		}
		select {
		case <-ctx.Done():
			return r
		case <-tick.C:
		}
	}
}

func hammerOnce(ctx context.Context, n *testcluster.Node, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, writeAttempt)
	defer cancel()
	cfg := n.ConnConfig()
	cfg.ConnectTimeout = 500 * time.Millisecond
	// No statement_timeout: a server-side cancel of a commit waiting for
	// its synchronous standby reports the commit as done (with a
	// warning). The context's end cancels from the client: an error.
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeAttempt)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	_, err = conn.Exec(ctx, "INSERT INTO e2e_frozen VALUES ($1, 'old primary')", id)
	return err
}

// TestPostgresCrashRestartsInPlace: PostgreSQL dies on the primary while
// its agent lives. The agent restarts it in place within
// primary_start_timeout, keeping the leader key on the same lease: no
// failover, writes work again on the same node.
func TestPostgresCrashRestartsInPlace(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	seedTable(t, c, leader, "e2e_crash", "id int PRIMARY KEY", "VALUES (1)", 1)
	before := readLeaderKey(t, c)

	killed := time.Now()
	leader.KillPostgres(t)
	var moved []string
	testcluster.Poll(t, primaryStartTimeout+replicateTimeout, "writes accepted by "+leader.Name+" again", func(ctx context.Context) error {
		if k, err := leaderKey(ctx, c); err == nil && k != before {
			moved = append(moved, fmt.Sprintf("%+v", k))
		}
		return tryWrite(ctx, leader, "INSERT INTO e2e_crash VALUES (2) ON CONFLICT DO NOTHING")
	})
	down := time.Since(killed)
	t.Logf("RTO postgres-crash (restart in place): %.1fs", down.Seconds())
	if down >= primaryStartTimeout {
		t.Errorf("%s took %s to accept writes again, want < primary_start_timeout %s", leader.Name, down.Round(time.Millisecond), primaryStartTimeout)
	}
	if after := readLeaderKey(t, c); after != before || len(moved) > 0 {
		t.Errorf("the leader key changed while PostgreSQL restarted: before %+v, meanwhile %v, after %+v", before, moved, after)
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+leader.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, leader)
	})
	d := awaitDecision(t, leader, replicateTimeout, "restart_primary", leader.Name, killed, nil)
	t.Logf("decision: %s", d)
	if l := c.WaitHealthy(t, rejoinTimeout); l != leader {
		t.Errorf("leader changed from %s to %s", leader.Name, l.Name)
	}
	waitRows(t, c.Others(leader.Name), 2, "SELECT count(*) FROM e2e_crash")
}

// TestPostgresCrashCannotRestart: PostgreSQL dies on the primary and
// cannot start again (its data directory became unreadable). After
// primary_start_timeout the agent releases the leader key and a replica
// takes over; once the directory is readable again the old primary
// rejoins as a replica.
func TestPostgresCrashCannotRestart(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	seedTable(t, c, old, "e2e_nostart", "id int PRIMARY KEY", "VALUES (1)", 1)

	fi, err := os.Stat(old.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.Chmod(old.DataDir, fi.Mode().Perm()); err != nil {
			t.Errorf("restore the mode of %s: %v", old.DataDir, err)
		}
	}
	t.Cleanup(restore) // before the cluster's cleanup, which stops the agents
	if err := os.Chmod(old.DataDir, 0); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	old.KillPostgres(t)

	winner := waitNewLeader(t, c, old.Name, primaryStartTimeout+failoverWait)
	took := time.Since(killed)
	t.Logf("RTO postgres-cannot-restart: %.1fs (new primary %s)", took.Seconds(), winner.Name)
	if bound := primaryStartTimeout + rtoSlack; took >= bound {
		t.Errorf("a replica took over %s after PostgreSQL died on %s, want < primary_start_timeout + %s = %s", took.Round(time.Millisecond), old.Name, rtoSlack, bound)
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
	rel := awaitDecision(t, winner, replicateTimeout, "release", old.Name, killed, nil)
	t.Logf("release decision: %s", rel)
	fo := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	t.Logf("failover decision: %s", fo)
	if fo.PreviousLeader != old.Name {
		t.Errorf("failover record: previous_leader = %q, want %q", fo.PreviousLeader, old.Name)
	}
	if err := tryWrite(t.Context(), winner, "INSERT INTO e2e_nostart VALUES (2)"); err != nil {
		t.Fatal(err)
	}

	restore()
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	waitRows(t, []*testcluster.Node{old}, 2, "SELECT count(*) FROM e2e_nostart")
}

// TestRejoinDiverged: the old primary holds WAL the new primary never
// received (its walsenders were stopped while it acknowledged a few rows,
// then its host died). Restarted, it must not stream on its own diverged
// history: it is rewound (or re-cloned) onto the new primary's timeline,
// its extra rows are gone, and it replicates the new primary's writes.
func TestRejoinDiverged(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	replicas := c.Others(old.Name)
	seedTable(t, c, old, "e2e_div", "id int PRIMARY KEY, origin text NOT NULL", "SELECT g, 'common' FROM generate_series(1, 10) g", 10)

	// A few rows only: the replicas must stay within maximum_lag_on_failover
	// of the status key's optime to be electable.
	release := old.HoldWALSenders(t)
	mustExec(t, old, "INSERT INTO e2e_div SELECT g, 'diverged' FROM generate_series(11, 15) g")
	oldLSN := queryLSN(t, old, "pg_current_wal_lsn()")
	for _, r := range replicas {
		if n, err := r.QueryInt(ctx, "SELECT count(*) FROM e2e_div"); err != nil || n != 10 {
			t.Fatalf("%s has %d rows (err %v): the held walsenders let the diverging rows through", r.Name, n, err)
		}
	}
	old.Kill(t)
	release() // the walsenders died with the postmaster; nothing left to resume

	winner := waitNewLeader(t, c, old.Name, failoverWait)
	t.Logf("old primary %s stopped at %X; new primary %s", old.Name, oldLSN, winner.Name)
	if err := tryWrite(ctx, winner, "INSERT INTO e2e_div VALUES (100, 'new primary')"); err != nil {
		t.Fatal(err)
	}
	if n, err := winner.QueryInt(ctx, "SELECT count(*) FROM e2e_div WHERE origin = 'diverged'"); err != nil || n != 0 {
		t.Fatalf("new primary %s has %d diverged rows (err %v); the scenario did not diverge", winner.Name, n, err)
	}

	restarted := time.Now()
	old.Start(t)
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	t.Logf("%s streams from %s %.1fs after its restart", old.Name, winner.Name, time.Since(restarted).Seconds())
	waitRows(t, []*testcluster.Node{old}, 1, "SELECT count(*) FROM e2e_div WHERE id = 100 AND origin = 'new primary'")
	if n, err := old.QueryInt(ctx, "SELECT count(*) FROM e2e_div WHERE origin = 'diverged'"); err != nil || n != 0 {
		t.Errorf("%s still has %d of the 5 diverged rows after rejoining (err %v)", old.Name, n, err)
	}
	if n, err := old.QueryInt(ctx, "SELECT count(*) FROM e2e_div"); err != nil || n != 11 {
		t.Errorf("%s has %d rows, want the new primary's 11 (err %v)", old.Name, n, err)
	}
	testcluster.Poll(t, replicateTimeout, old.Name+" on the new primary's timeline", func(ctx context.Context) error {
		a, err1 := old.Status(ctx)
		b, err2 := winner.Status(ctx)
		if err1 != nil || err2 != nil {
			return errors.Join(err1, err2)
		}
		if str(a["timeline"]) != str(b["timeline"]) {
			return fmt.Errorf("%s timeline %v, %s timeline %v", old.Name, a["timeline"], winner.Name, b["timeline"])
		}
		return nil
	})
	mustExec(t, winner, "INSERT INTO e2e_div VALUES (101, 'new primary')")
	waitRows(t, c.Others(winner.Name), 12, "SELECT count(*) FROM e2e_div")
}

// leaderlessHold is how long a cluster with no eligible member is watched
// for a leader appearing: several loop_waits, each a chance to race.
const leaderlessHold = 5 * time.Second

// TestNoFailoverTag: a replica tagged nofailover never promotes. pg1 is
// tagged (it cannot bootstrap, so it is a replica, and it would win an
// equal-WAL tie-break by name): the other replica wins. With only pg1
// left alive the cluster stays leaderless and says why.
func TestNoFailoverTag(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{Tags: map[string]map[string]any{"pg1": {"nofailover": true}}})
	tagged := c.Node("pg1")
	if old == tagged {
		t.Fatalf("%s is tagged nofailover but bootstrapped the cluster", tagged.Name)
	}
	var other *testcluster.Node
	for _, n := range c.Others(old.Name) {
		if n != tagged {
			other = n
		}
	}
	seedTable(t, c, old, "e2e_nofail", "id int PRIMARY KEY", "VALUES (1)", 1)

	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	if winner != other {
		t.Fatalf("%s was promoted; want %s (%s is tagged nofailover)", winner.Name, other.Name, tagged.Name)
	}
	t.Logf("%s promoted %.1fs after %s died", winner.Name, time.Since(killed).Seconds(), old.Name)
	waitStreamingFrom(t, tagged, winner, rejoinTimeout)
	fd := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	if cand, ok := fd.candidate(tagged.Name); ok && cand.Eligible {
		t.Errorf("failover record lists %s (nofailover) as eligible: %s", tagged.Name, fd)
	}

	killed = time.Now()
	winner.Kill(t)
	why := waitClusterDecision(t, tagged, c.TTL()+rtoSlack+replicateTimeout, tagged.Name, "nofailover")
	t.Logf("GET /cluster on %s, its decision: %q", tagged.Name, why)
	holdsFor(t, leaderlessHold, "no leader with only the nofailover member alive", noLeader(c, tagged))
	d := awaitDecision(t, tagged, replicateTimeout, "stood_down", tagged.Name, killed, func(d decisionEntry) error {
		if !strings.Contains(d.Reason, "tag nofailover") {
			return fmt.Errorf("reason %q does not name the tag", d.Reason)
		}
		return nil
	})
	t.Logf("stood_down record: %s", d)
}

// TestNoEligibleLagging: a replica further behind the last known leader
// position than maximum_lag_on_failover never promotes, even when it
// would win every other rule (the name tie-break), and alone it leaves the
// cluster leaderless, saying why.
func TestNoEligibleLagging(t *testing.T) {
	const maxLag = 64 << 10 // 64 kB: the held replica falls ~1 MB behind
	c, old := startHealthy(t, testcluster.Options{DCS: map[string]any{"maximum_lag_on_failover": maxLag}})
	ctx := t.Context()
	replicas := c.Others(old.Name)
	held, ahead := replicas[0], replicas[1] // held would win an equal-WAL tie-break
	mustExec(t, old, "CREATE TABLE e2e_lag (id int PRIMARY KEY, pad text NOT NULL)")
	waitRows(t, replicas, 0, "SELECT count(*) FROM e2e_lag")

	release := held.HoldWALReceiver(t)
	mustExec(t, old, "INSERT INTO e2e_lag SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g")
	target := queryLSN(t, old, "pg_current_wal_lsn()")
	testcluster.Poll(t, replicateTimeout, ahead.Name+" replayed the writes", func(ctx context.Context) error {
		pos, err := ahead.QueryInt(ctx, lsnInt("pg_last_wal_replay_lsn()"))
		if err == nil && pos < target {
			err = fmt.Errorf("replayed %X < %X", pos, target)
		}
		return err
	})
	// The leader publishes its position in the status key at most every
	// 10 s: wait for it, so that the lag rule has a position to compare to.
	optime := waitOptime(t, c, target, 15*time.Second)
	heldPos, err := walPosition(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status optime %X; %s held at %X (%d kB behind, maximum_lag_on_failover %d kB)", optime, held.Name, heldPos, (optime-heldPos)>>10, maxLag>>10)
	if optime-heldPos <= maxLag {
		t.Fatalf("%s is only %d bytes behind the status optime; the scenario needs > %d", held.Name, optime-heldPos, maxLag)
	}

	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	if winner != ahead {
		t.Fatalf("%s was promoted; want %s (%s lags by more than maximum_lag_on_failover)", winner.Name, ahead.Name, held.Name)
	}
	d := awaitDecision(t, winner, replicateTimeout, "stood_down", held.Name, killed, lagReason)
	t.Logf("%s promoted; %s stood down: %s", winner.Name, held.Name, d.Reason)

	// Now only the lagging replica survives: no eligible member.
	killed = time.Now()
	winner.Kill(t)
	why := waitClusterDecision(t, held, c.TTL()+rtoSlack+replicateTimeout, held.Name, "maximum_lag_on_failover")
	t.Logf("GET /cluster on %s, its decision: %q", held.Name, why)
	holdsFor(t, leaderlessHold, "no leader with only the lagging member alive", noLeader(c, held))
	d = awaitDecision(t, held, replicateTimeout, "stood_down", held.Name, killed, lagReason)
	t.Logf("stood_down record: %s", d)
	release()
}

func lagReason(d decisionEntry) error {
	if !strings.Contains(d.Reason, "maximum_lag_on_failover") {
		return fmt.Errorf("reason %q does not name maximum_lag_on_failover", d.Reason)
	}
	return nil
}
