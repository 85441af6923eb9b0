package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// writeProbe records, while etcd is down, when writes on the old primary
// were acknowledged and when they failed.
type writeProbe struct {
	stop          time.Time
	acked         []int64       // ids acknowledged after the stop
	lastOK        time.Duration // since stop, of the last acknowledged write; -1 if none
	fenced        time.Duration // since stop, of the first failure after lastOK; -1 if none
	primaryNon200 time.Duration // since stop, of the first non-200 GET /primary; -1 if none
	lastErr       error
}

// TestEtcdLossFencesPrimary: with etcd gone the primary cannot renew its
// lease, so it must stop taking writes before the lease TTL has elapsed
// (after which another node could be elected); once etcd is back the
// cluster elects a leader again and keeps every write acknowledged before.
func TestEtcdLossFencesPrimary(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	ttl := c.TTL()

	if err := leader.Exec(ctx, "CREATE TABLE e2e_fence (id bigint PRIMARY KEY, phase text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Exec(ctx, "INSERT INTO e2e_fence SELECT g, 'before' FROM generate_series(1, 50) g"); err != nil {
		t.Fatal(err)
	}
	// Acknowledged and replicated: whoever leads next must have them.
	waitRows(t, c.Nodes(), 50, "SELECT count(*) FROM e2e_fence WHERE phase = 'before'")

	stopping := time.Now() // measure from before the stop: the lease may be renewed no later
	c.StopEtcd(t)
	t.Logf("etcd stopped answering %s after the stop began", time.Since(stopping).Round(time.Millisecond))
	p := probeWrites(ctx, leader, stopping, ttl+3*time.Second)
	t.Logf("etcd stopped; on %s: last acknowledged write at +%s, writes failing from +%s (last error: %v), GET /primary non-200 from +%s; %d writes acknowledged during the outage",
		leader.Name, p.lastOK, p.fenced, p.lastErr, p.primaryNon200, len(p.acked))
	if p.fenced < 0 {
		t.Fatalf("%s kept accepting writes %s after etcd stopped (ttl %s): not fenced", leader.Name, ttl+3*time.Second, ttl)
	}
	if p.lastOK >= ttl {
		t.Errorf("%s acknowledged a write %s after etcd stopped, at or past the ttl (%s)", leader.Name, p.lastOK, ttl)
	}
	if p.primaryNon200 < 0 || p.primaryNon200 >= ttl {
		t.Errorf("%s GET /primary still 200 at +%s (ttl %s)", leader.Name, p.primaryNon200, ttl)
	}
	for _, n := range c.Nodes() {
		testcluster.Poll(t, 5*time.Second, n.Name+" GET /primary = 503 without etcd", func(ctx context.Context) error {
			code, _, err := n.Get(ctx, "/primary")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable {
				return fmt.Errorf("GET /primary = %d", code)
			}
			return nil
		})
	}

	c.StartEtcd(t)
	restarted := time.Now()
	bound := ttl + 30*time.Second
	newLeader := c.WaitLeader(t, bound)
	testcluster.Poll(t, bound-time.Since(restarted), "a write on the new leader "+newLeader.Name, func(ctx context.Context) error {
		return newLeader.Exec(ctx, "INSERT INTO e2e_fence VALUES (1000000, 'after') ON CONFLICT DO NOTHING")
	})
	t.Logf("etcd back: leader %s accepting writes %s after the restart", newLeader.Name, time.Since(restarted).Round(time.Millisecond))

	if n, err := newLeader.QueryInt(ctx, "SELECT count(*) FROM e2e_fence WHERE phase = 'before'"); err != nil || n != 50 {
		t.Errorf("new leader %s has %d of the 50 rows acknowledged before etcd stopped (err %v)", newLeader.Name, n, err)
	}
	if n, err := newLeader.QueryInt(ctx, "SELECT count(*) FROM e2e_fence WHERE phase = 'during'"); err == nil {
		t.Logf("%d of %d writes acknowledged during the outage survive on %s", n, len(p.acked), newLeader.Name)
	}
	c.WaitHealthy(t, rejoinTimeout)
}

// probeWrites inserts a row on n every 100 ms (each on a fresh connection,
// bounded by 1 s) and polls its GET /primary, until d after stop.
func probeWrites(ctx context.Context, n *testcluster.Node, stop time.Time, d time.Duration) writeProbe {
	p := writeProbe{stop: stop, lastOK: -1, fenced: -1, primaryNon200: -1}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for id := int64(1000); time.Since(p.stop) < d; id++ {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := n.Exec(actx, "INSERT INTO e2e_fence VALUES ($1, 'during')", id)
		cancel()
		at := time.Since(p.stop)
		if err == nil {
			p.acked = append(p.acked, id)
			p.lastOK, p.fenced = at, -1
		} else {
			p.lastErr = err
			if p.fenced < 0 {
				p.fenced = at
			}
		}
		if p.primaryNon200 < 0 {
			gctx, cancel := context.WithTimeout(ctx, time.Second)
			code, _, err := n.Get(gctx, "/primary")
			cancel()
			if err != nil || code != http.StatusOK {
				p.primaryNon200 = time.Since(p.stop)
			}
		}
		select {
		case <-ctx.Done():
			return p
		case <-tick.C:
		}
	}
	return p
}

// TestFrozenPostgresUnderLiveAgentFailsOver (#15, "must show" 6): the
// primary's PostgreSQL freezes (SIGSTOP of every server process) while its
// agent keeps running, in synchronous mode. The agent cannot restart a
// frozen server in place; past primary_start_timeout it stops it — SIGKILL
// at once for a stopped postmaster, within the fence budget — and only then
// gives up the leader key. A replica takes over within
// primary_start_timeout + ttl + 2 s (it used to take 16–22 s: a 5 s
// immediate-stop wait a stopped postmaster cannot answer, then 5 s more).
func TestFrozenPostgresUnderLiveAgentFailsOver(t *testing.T) {
	const primaryStartTimeout = 10 * time.Second
	c := testcluster.New(t, testcluster.Options{DCS: map[string]any{
		"synchronous_mode": true, "primary_start_timeout": int(primaryStartTimeout / time.Second),
	}})
	old := c.WaitHealthy(t, bootstrapTimeout)
	waitSyncStandby(t, c, old, replicateTimeout)
	mustExec(t, old, "CREATE TABLE e2e_frozen_pg (id bigint PRIMARY KEY)")
	waitRows(t, c.Others(old.Name), 0, "SELECT count(*) FROM e2e_frozen_pg")

	frozen := time.Now()
	procs, err := proc.SignalServer(old.DataDir, syscall.SIGSTOP)
	if err != nil || len(procs) == 0 {
		t.Fatalf("freezing %s's PostgreSQL: %d processes, %v", old.Name, len(procs), err)
	}
	t.Cleanup(func() { _, _ = proc.SignalServer(old.DataDir, syscall.SIGCONT) })
	// The issue's bound, and the one the design gives: the agent sees the
	// server down from the first unanswered status query (≤ loop_wait after
	// the freeze), releases primary_start_timeout later at its next tick
	// (≤ loop_wait + retry_timeout, a status query timing out), after a
	// stop within the fence budget (1 s); the replicas race on the key's
	// deletion at once. 3 s of slack for promotion and a loaded machine.
	issueBound := primaryStartTimeout + c.TTL() + 2*time.Second
	bound := primaryStartTimeout + 2*time.Second + 3*time.Second + time.Second + 3*time.Second
	winner, wrote := waitFirstWrite(t, c.Others(old.Name), issueBound+20*time.Second, "INSERT INTO e2e_frozen_pg VALUES (1)")
	rto := wrote.Sub(frozen)
	t.Logf("frozen PostgreSQL under a live agent: first write on %s %.1fs after the freeze (bound %s)", winner.Name, rto.Seconds(), bound)
	if rto > bound {
		t.Errorf("failover took %s, want within primary_start_timeout + 2·loop_wait + retry_timeout + fence budget + 3s = %s (and primary_start_timeout + ttl + 2s = %s)",
			rto.Round(time.Millisecond), bound, issueBound)
	}
	// The frozen server was killed, not left to wake up as a primary.
	testcluster.Poll(t, replicateTimeout, old.Name+"'s frozen server gone or a replica", func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
}

// TestFenceCommandGatesFailover: a leader that vanished without releasing
// its key (host death) is fenced by fence.command before anyone promotes.
// While the command fails nobody promotes and the failure is recorded;
// once it succeeds a replica promotes and records the fence result.
func TestFenceCommandGatesFailover(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: fenceHookConfig})
	for _, n := range c.Nodes() {
		writeFenceScript(t, n, 1)
	}
	replicas := c.Others(old.Name)

	from := leaderKeyRevision(t, c)
	killedAt := time.Now()
	old.Kill(t)
	holdLeaderless(t, c, old.Name, killedAt.Add(c.TTL()+10*time.Second))
	failed := waitFenceDecision(t, replicas[0], replicateTimeout, "fence_failed against "+old.Name, func(d decisionEntry) bool {
		return d.Kind == "fence_failed" && d.Stonith != nil && d.Stonith.Target == old.Name
	})
	t.Logf("while the hook fails: %s recorded %q, fence %+v", failed.Member, failed.Reason, *failed.Stonith)
	if !failed.Stonith.Ran || failed.Stonith.ExitCode != 1 || !strings.Contains(failed.Stonith.Output, "target "+old.Name+", exit 1") {
		t.Errorf("fence_failed record: %+v; want ran, exit code 1 and the script's output", *failed.Stonith)
	}
	checkFenceCalls(t, c, c.Node(failed.Member), old)

	allowed := time.Now()
	for _, n := range replicas {
		writeFenceScript(t, n, 0)
	}
	newLeader := c.WaitLeader(t, 30*time.Second)
	t.Logf("hook exits 0 from +%s after the kill: %s leads %s later",
		allowed.Sub(killedAt).Round(time.Millisecond), newLeader.Name, time.Since(allowed).Round(time.Millisecond))
	if h := leaderKeyHistory(t, c, from); len(h) != 2 || h[0].Holder != "" || h[1].Holder != newLeader.Name {
		t.Errorf("leader key since the kill: %+v; want deleted (lease expiry), then %s only", h, newLeader.Name)
	}
	d := waitFenceDecision(t, newLeader, replicateTimeout, newLeader.Name+" failover over "+old.Name, func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == newLeader.Name && d.PreviousLeader == old.Name
	})
	switch {
	case d.Stonith == nil:
		t.Errorf("failover record of %s has no fence result", newLeader.Name)
	case d.Stonith.Target != old.Name || !d.Stonith.Ran || d.Stonith.ExitCode != 0:
		t.Errorf("failover record of %s: fence %+v; want target %s, ran, exit code 0", newLeader.Name, *d.Stonith, old.Name)
	case d.Timings == nil || !d.Timings.ElectedAt.After(allowed):
		t.Errorf("failover record of %s: timings %+v; want elected after the hook was allowed to succeed", newLeader.Name, d.Timings)
	}
}

// TestFenceCommandSkippedAfterCleanStepDown: a leader whose agent shuts
// down cleanly (PostgreSQL stopped, leader key released, member key says
// stopped) is not fenced: a replica promotes without running the hook.
// Its own cluster keeps it to one failover from the bootstrap timeline.
func TestFenceCommandSkippedAfterCleanStepDown(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{ExtraConfig: fenceHookConfig})
	for _, n := range c.Nodes() {
		writeFenceScript(t, n, 0) // a wrong run would not even block the failover
	}
	from := leaderKeyRevision(t, c)
	stopped := time.Now()
	leader.StopAgent(t)
	next := c.WaitLeader(t, c.TTL()+rejoinTimeout)
	t.Logf("%s stopped cleanly; %s leads %s later", leader.Name, next.Name, time.Since(stopped).Round(time.Millisecond))
	if h := leaderKeyHistory(t, c, from); len(h) != 2 || h[0].Holder != "" || h[1].Holder != next.Name {
		t.Errorf("leader key since the stop: %+v; want released, then %s", h, next.Name)
	}
	d := waitFenceDecision(t, next, replicateTimeout, next.Name+" failover after "+leader.Name+" stepped down", func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == next.Name && d.PreviousLeader == leader.Name
	})
	if d.Stonith != nil {
		t.Errorf("%s fenced %s, which had stepped down cleanly: %+v", next.Name, leader.Name, *d.Stonith)
	}
	for _, n := range c.Others(leader.Name) {
		if calls := fenceCalls(t, n); len(calls) > 0 {
			t.Errorf("%s ran its fence script after a clean step-down: %+v", n.Name, calls)
		}
	}
}

// holdLeaderless fails the test if a member other than old holds the
// leader key before until (it is read every 100 ms).
func holdLeaderless(t *testing.T, c *testcluster.Cluster, old string, until time.Time) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	reads := 0
	defer func() {
		if reads == 0 && !t.Failed() {
			t.Fatalf("could not read the leader key while checking for a leader: %v", lastErr)
		}
	}()
	for time.Now().Before(until) {
		holder, err := c.Leader(t.Context())
		switch {
		case err == nil && holder != old:
			t.Fatalf("%s took the leader key although fence.command fails", holder)
		case err != nil && !errors.Is(err, testcluster.ErrNoLeader):
			lastErr = err
		default:
			reads++
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while checking for a leader (%d reads, last error %v)", reads, lastErr)
		case <-tick.C:
		}
	}
}

// checkFenceCalls: the script ran against old with its member name and
// the cluster's scope, and only against old.
func checkFenceCalls(t *testing.T, c *testcluster.Cluster, n *testcluster.Node, old *testcluster.Node) {
	t.Helper()
	calls := fenceCalls(t, n)
	t.Logf("%s's fence script ran %d times; first: %+v", n.Name, len(calls), calls[:min(1, len(calls))])
	if len(calls) == 0 {
		t.Fatalf("%s recorded a fence_failed but its script never ran", n.Name)
	}
	for _, call := range calls {
		if call.Target != old.Name || call.Scope != c.Scope() {
			t.Errorf("%s's fence script got %+v; want target %s, scope %s", n.Name, call, old.Name, c.Scope())
		}
	}
	if want := fmt.Sprintf("postgres://127.0.0.1:%d/postgres", old.PGPort); calls[0].ConnURL != want {
		// Documented as empty if unknown; the member key expired with the
		// lease, so the agent may not know it. Reported, not asserted.
		t.Logf("note: REGENT_FENCE_TARGET_CONN_URL = %q (the target's conn_url is %s)", calls[0].ConnURL, want)
	}
}

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
