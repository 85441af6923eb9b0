package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"

	"github.com/regent-ha/regent/internal/testcluster"
)

// wdSafetyMargin is the watchdog.safety_margin of these tests; with the
// default ttl (10 s) the device timeout is fencing.DeviceTimeout = ttl − safety_margin/2 = 8 s:
// after the agent's own fence point (7 s), before the lease can expire (10 s).
const wdSafetyMargin = 3 * time.Second

// Bounds on the ping cadence of a healthy leader (loop_wait 1 s). A tick
// pings right after its acknowledged renewal; extra ticks woken by etcd
// events only add pings. The largest gap must stay far below the device
// timeout: loop_wait + 2 s of renewal round trip and scheduling delay on
// two busy cores.
const (
	maxPingGap    = 3 * time.Second
	medianPingMin = 500 * time.Millisecond
	medianPingMax = 1500 * time.Millisecond
)

// TestWatchdogResetsFrozenPrimaryBeforeFailover: a primary whose agent
// alone hangs (SIGSTOP; PostgreSQL keeps serving) stops pinging its
// watchdog. The test plays the hardware: at the device deadline (last ping
// + timeout, from the journal) it "resets the host" (SIGKILL of PostgreSQL
// and the agent). No other node may take the leader key before that
// deadline: the old primary would have been gone before anyone promoted.
func TestWatchdogResetsFrozenPrimaryBeforeFailover(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{
		ExtraConfig: func(_ string, cfg map[string]any) { journalWatchdog(cfg, wdSafetyMargin) },
	})
	old := c.WaitHealthy(t, bootstrapTimeout)
	wantTimeout := fencing.DeviceTimeout(c.TTL(), wdSafetyMargin)

	healthy := waitArmed(t, old, 8, 30*time.Second)
	checkPingCadence(t, old.Name, healthy, wantTimeout)

	old.FreezeAgent(t)
	frozenAt := time.Now()
	s, err := lastSession(old)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Close.IsZero() || s.Timeout != wantTimeout {
		t.Fatalf("%s's watchdog at the freeze: closed %t, timeout %s; want armed with %s", old.Name, !s.Close.IsZero(), s.Timeout, wantTimeout)
	}
	deadline := s.Deadline()
	t.Logf("%s's agent frozen; last ping %s before, device deadline %s after the freeze",
		old.Name, frozenAt.Sub(s.LastPing()).Round(time.Millisecond), deadline.Sub(frozenAt).Round(time.Millisecond))

	f := awaitFailover(t, c, old, frozenAt, func() {
		resetHost(t, old, s)
	})
	t.Logf("after the freeze: device deadline +%s, host reset +%s, leader key gone after +%s, new leader %s after +%s",
		deadline.Sub(frozenAt).Round(time.Millisecond), f.resetAt.Sub(frozenAt).Round(time.Millisecond),
		f.keyGoneAfter.Sub(frozenAt).Round(time.Millisecond), f.newLeader, f.newLeaderAfter.Sub(frozenAt).Round(time.Millisecond))
	if !f.keyGoneAfter.After(deadline) {
		t.Errorf("%s's leader key may have gone %s before its device deadline", old.Name, deadline.Sub(f.keyGoneAfter))
	}
	if !f.newLeaderAfter.After(deadline) {
		t.Errorf("new leader %s may have taken the key %s before %s's device deadline: two primaries could have run",
			f.newLeader, deadline.Sub(f.newLeaderAfter), old.Name)
	}

	newLeader := c.WaitLeader(t, rejoinTimeout)
	d := waitFenceDecision(t, newLeader, replicateTimeout, newLeader.Name+" failover over "+old.Name, func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == newLeader.Name && d.PreviousLeader == old.Name
	})
	if d.Timings == nil || !d.Timings.ElectedAt.After(deadline) {
		t.Errorf("failover record of %s: timings %+v, want elected after %s's device deadline", newLeader.Name, d.Timings, old.Name)
	} else {
		checkArmedBeforePromote(t, newLeader, d, wantTimeout)
	}
}

// checkPingCadence: a healthy leader pings about every loop_wait, never
// near the device timeout, and asked for ttl − safety_margin.
func checkPingCadence(t *testing.T, name string, s fencing.JournalSession, wantTimeout time.Duration) {
	t.Helper()
	if s.Timeout != wantTimeout {
		t.Errorf("%s's watchdog timeout line says %s, want %s (fencing.DeviceTimeout)", name, s.Timeout, wantTimeout)
	}
	gaps := pingGaps(s.Pings)
	sorted := slices.Sorted(slices.Values(gaps))
	median, largest := sorted[len(sorted)/2], sorted[len(sorted)-1]
	t.Logf("%s healthy: %d pings, gaps median %s, max %s", name, len(s.Pings), median.Round(time.Millisecond), largest.Round(time.Millisecond))
	if largest > maxPingGap || median < medianPingMin || median > medianPingMax {
		t.Errorf("%s's pings are not regular: median gap %s (want %s…%s), max %s (want ≤ %s); gaps %v",
			name, median, medianPingMin, medianPingMax, largest, maxPingGap, gaps)
	}
}

// failoverTimes are lower bounds, from polls of the leader key: each event
// happened after a read that started at that time still saw the old state.
type failoverTimes struct {
	keyGoneAfter   time.Time
	newLeaderAfter time.Time
	newLeader      string
	resetAt        time.Time
}

// awaitFailover polls the leader key until a member other than old holds
// it. The first poll after old's device deadline calls reset instead of
// reading (the hardware's job).
func awaitFailover(t *testing.T, c *testcluster.Cluster, old *testcluster.Node, since time.Time, reset func()) failoverTimes {
	t.Helper()
	s, err := lastSession(old)
	if err != nil {
		t.Fatal(err)
	}
	deadline := s.Deadline()
	f := failoverTimes{keyGoneAfter: since, newLeaderAfter: since}
	testcluster.Poll(t, c.TTL()+30*time.Second, "a new leader after "+old.Name+" hung", func(ctx context.Context) error {
		if f.resetAt.IsZero() && time.Now().After(deadline) {
			reset()
			f.resetAt = time.Now()
		}
		start := time.Now()
		holder, err := c.Leader(ctx)
		switch {
		case errors.Is(err, testcluster.ErrNoLeader):
			f.newLeaderAfter = start
			return err
		case err != nil:
			return err
		case holder == old.Name:
			f.keyGoneAfter, f.newLeaderAfter = start, start
			return fmt.Errorf("leader key still %s", holder)
		}
		f.newLeader = holder
		return nil
	})
	if f.resetAt.IsZero() {
		t.Fatalf("%s was never reset: a new leader (%s) appeared before its device deadline", old.Name, f.newLeader)
	}
	return f
}

// resetHost is what the watchdog does at its deadline: it checks the frozen
// agent sent no ping since s, then kills PostgreSQL and the agent.
func resetHost(t *testing.T, n *testcluster.Node, s fencing.JournalSession) {
	t.Helper()
	now, err := lastSession(n)
	if err != nil {
		t.Fatal(err)
	}
	if !now.LastPing().Equal(s.LastPing()) || !now.Close.IsZero() {
		t.Errorf("%s's frozen agent touched its watchdog: last ping %s → %s, closed %t",
			n.Name, s.LastPing().Format(time.StampMilli), now.LastPing().Format(time.StampMilli), !now.Close.IsZero())
	}
	t.Logf("device deadline of %s passed: resetting its host (SIGKILL PostgreSQL and agent); PostgreSQL was running: %t", n.Name, n.PostgresRunning())
	n.Kill(t)
}

// checkArmedBeforePromote: the new leader opened its device with the same
// timeout after winning the key and before PostgreSQL was promoted.
func checkArmedBeforePromote(t *testing.T, n *testcluster.Node, d decisionEntry, wantTimeout time.Duration) {
	t.Helper()
	s := waitArmed(t, n, 1, replicateTimeout)
	t.Logf("%s: elected %s, watchdog opened %s, promoted %s", n.Name, d.Timings.ElectedAt.Format(time.StampMilli),
		s.Open.Format(time.StampMilli), d.Timings.PromotedAt.Format(time.StampMilli))
	if s.Timeout != wantTimeout || s.Open.Before(d.Timings.ElectedAt) || s.Open.After(d.Timings.PromotedAt) {
		t.Errorf("%s's watchdog: opened %s with timeout %s; want %s, between election (%s) and promotion (%s)",
			n.Name, s.Open.Format(time.StampMilli), s.Timeout, wantTimeout,
			d.Timings.ElectedAt.Format(time.StampMilli), d.Timings.PromotedAt.Format(time.StampMilli))
	}
}

// TestWatchdogLeaseLossDemotesAndDisarms: a primary whose renewals fail
// (etcd stopped) stops accepting writes by ttl − safety_margin after its
// last acknowledged renewal, and disarms its watchdog on the way down,
// before the device would fire.
func TestWatchdogLeaseLossDemotesAndDisarms(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{
		ExtraConfig: func(_ string, cfg map[string]any) { journalWatchdog(cfg, wdSafetyMargin) },
	})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	ctx := t.Context()
	waitArmed(t, leader, 3, 30*time.Second)
	if err := leader.Exec(ctx, "CREATE TABLE e2e_fence (id bigint PRIMARY KEY, phase text NOT NULL)"); err != nil {
		t.Fatal(err)
	}

	// The last acknowledged renewal was sent before the stop began, so its
	// deadline is at most stop + ttl − safety_margin. The agent wakes at the
	// deadline and stops PostgreSQL immediately (SIGQUIT: sessions end at
	// once); 1 s covers that stop and a wake-up late on two busy cores.
	limit := c.TTL() - wdSafetyMargin + time.Second
	stopping := time.Now()
	c.StopEtcd(t)
	p := probeWrites(ctx, leader, stopping, c.TTL())
	t.Logf("etcd stopped; on %s: last acknowledged write at +%s, writes failing from +%s (last error: %v), GET /primary non-200 from +%s",
		leader.Name, p.lastOK, p.fenced, p.lastErr, p.primaryNon200)
	if p.fenced < 0 {
		t.Fatalf("%s kept accepting writes %s after etcd stopped: not fenced", leader.Name, c.TTL())
	}
	if p.lastOK >= limit {
		t.Errorf("%s acknowledged a write %s after etcd stopped, past ttl − safety_margin + 1 s (%s)", leader.Name, p.lastOK, limit)
	}

	var s fencing.JournalSession
	testcluster.Poll(t, 2*c.TTL(), leader.Name+"'s watchdog disarmed (close)", func(context.Context) error {
		var err error
		if s, err = lastSession(leader); err != nil {
			return err
		}
		if s.Close.IsZero() {
			return fmt.Errorf("still armed: last ping %s, timeout %s", s.LastPing().Format(time.StampMilli), s.Timeout)
		}
		return nil
	})
	t.Logf("%s's watchdog after the stop: last ping +%s, device deadline +%s, closed +%s",
		leader.Name, s.LastPing().Sub(stopping).Round(time.Millisecond), s.Deadline().Sub(stopping).Round(time.Millisecond),
		s.Close.Sub(stopping).Round(time.Millisecond))
	if !s.Close.Before(s.Deadline()) {
		t.Errorf("%s disarmed its watchdog %s after the device deadline: a real device would have reset the host while it demoted",
			leader.Name, s.Close.Sub(s.Deadline()).Round(time.Millisecond))
	}
}

// TestWatchdogRequiredUnusableNeverLeads: a member whose required watchdog
// cannot be opened says so in GET /patroni and never takes the leader key,
// even when it would win the election's name tie-break.
func TestWatchdogRequiredUnusableNeverLeads(t *testing.T) {
	const broken = "pg1" // the smallest name: it wins ties on WAL position
	c := testcluster.New(t, testcluster.Options{
		ExtraConfig: func(node string, cfg map[string]any) {
			if node == broken {
				cfg["watchdog"] = map[string]any{"mode": "required", "device": "/nonexistent/watchdog"}
			}
		},
	})
	old := c.WaitHealthy(t, bootstrapTimeout)
	if old.Name == broken {
		t.Fatalf("%s bootstrapped the cluster with an unusable required watchdog", broken)
	}
	b := c.Node(broken)
	checkWatchdogFailed(t, b)

	ctx := t.Context()
	if err := old.Exec(ctx, "CREATE TABLE e2e_wd (id int PRIMARY KEY); INSERT INTO e2e_wd VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// Same WAL everywhere: the tie-break by name would pick pg1.
	waitRows(t, c.Nodes(), 1, "SELECT count(*) FROM e2e_wd")
	from := leaderKeyRevision(t, c)
	old.Kill(t)
	newLeader := c.WaitHealthy(t, c.TTL()+rejoinTimeout)
	t.Logf("%s killed; new leader %s", old.Name, newLeader.Name)

	history := leaderKeyHistory(t, c, from)
	t.Logf("leader key since the kill: %+v", history)
	for _, h := range history {
		if h.Holder == broken {
			t.Errorf("%s (required watchdog unusable) held the leader key at revision %d", broken, h.Revision)
		}
	}
	d := waitFenceDecision(t, newLeader, replicateTimeout, newLeader.Name+" failover", func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == newLeader.Name && d.PreviousLeader == old.Name
	})
	for _, cand := range d.Candidates {
		if cand.Name == broken && (cand.Eligible || !strings.Contains(strings.Join(cand.Reasons, ";"), "watchdog")) {
			t.Errorf("%s's failover record lists %s as eligible=%t, reasons %v; want ineligible for its watchdog",
				newLeader.Name, broken, cand.Eligible, cand.Reasons)
		}
	}
	checkWatchdogFailed(t, b)
}

// checkWatchdogFailed: GET /patroni on n reports the unusable watchdog.
func checkWatchdogFailed(t *testing.T, n *testcluster.Node) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, n.Name+" GET /patroni watchdog_failed: true", func(ctx context.Context) error {
		st, err := n.Status(ctx)
		if err != nil {
			return err
		}
		regent, _ := st["regent"].(map[string]any)
		wd, _ := regent["watchdog"].(map[string]any)
		if st["watchdog_failed"] != true || st["role"] != "replica" {
			return fmt.Errorf("role %v, watchdog_failed %v, regent.watchdog %v", st["role"], st["watchdog_failed"], wd)
		}
		return nil
	})
}
