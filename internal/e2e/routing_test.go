package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// routedCluster starts a cluster whose members all carry the routing
// section for p, and PgBouncer pointing at its first primary.
func routedCluster(t *testing.T, p *pgbouncerProc, pauseTimeout time.Duration, table string) (*testcluster.Cluster, *testcluster.Node) {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{ExtraConfig: func(_ string, cfg map[string]any) {
		cfg["routing"] = map[string]any{"pgbouncer": []any{p.routingConfig(pauseTimeout)}}
	}})
	leader := waitHealthyForSwitchover(t, c)
	mustExec(t, leader, fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, client int NOT NULL)", table))
	p.start(t, leader)
	return c, leader
}

// routingEvents are the record's routing events at point.
func routingEvents(r switchoverRecord, point string) []switchoverEvent {
	var out []switchoverEvent
	for _, e := range r.Events {
		if strings.HasPrefix(e.Message, "routing "+point+":") {
			out = append(out, e)
		}
	}
	return out
}

// TestPgBouncerSwitchoversLoseNoTransaction (issue #18, must-show 1): 8
// clients run transactions through PgBouncer (transaction pooling) while
// the cluster switches over 5 times. Regent pauses PgBouncer before each
// quiesce and repoints and resumes it right after the promotion, so a
// transaction that arrives meanwhile waits in PgBouncer: no transaction
// fails and every acknowledged one is on the final primary. The longest
// transaction latency is the clients' view of a switchover.
func TestPgBouncerSwitchoversLoseNoTransaction(t *testing.T) {
	const table, switchovers = "e2e_pgbouncer", 5
	p := newPgBouncer(t)
	c, leader := routedCluster(t, p, 10*time.Second, table)
	clients := startTxClients(t, p, table, 8)
	clients.waitProgress(t, 200, "200 transactions through PgBouncer before the first switchover")

	for i := range switchovers {
		to := c.Others(leader.Name)[i%2]
		id := startQualifiedSwitchover(t, leader, switchoverReq{To: to.Name, Reason: "routing e2e"})
		rec := waitRecord(t, to, id, switchoverWait, "closed", closed)
		if rec.State != "completed" {
			t.Fatalf("switchover %d (%s → %s) ended %s: %s", i+1, leader.Name, to.Name, rec.State, rec)
		}
		pause, repoint := routingEvents(rec, "pause"), routingEvents(rec, "repoint")
		if len(pause) != 1 || pause[0].Kind != "info" || len(repoint) != 1 || repoint[0].Kind != "info" {
			t.Errorf("switchover %d: want one successful pause and repoint event, got pause %+v repoint %+v", i+1, pause, repoint)
		} else {
			t.Logf("switchover %d %s → %s: %s; %s; stages %s", i+1, leader.Name, to.Name,
				pause[0].Message, repoint[0].Message, stageDurations(rec.Events))
		}
		testcluster.Poll(t, replicateTimeout, "PgBouncer resumed and pointing at "+to.Name, func(ctx context.Context) error {
			paused, host, port, err := p.paused(ctx)
			switch {
			case err != nil:
				return err
			case paused || port != to.PGPort:
				return fmt.Errorf("paused %t, points at %s:%d, want %d", paused, host, port, to.PGPort)
			}
			return nil
		})
		clients.waitProgress(t, 100, fmt.Sprintf("100 transactions through PgBouncer after switchover %d", i+1))
		leader = waitHealthyForSwitchover(t, c)
		if leader.Name != to.Name {
			t.Fatalf("after switchover %d the leader is %s, want %s", i+1, leader.Name, to.Name)
		}
	}
	clients.Stop()
	acked, failed := clients.counts()
	if len(failed) > 0 {
		t.Errorf("%d of %d transactions failed through PgBouncer across %d switchovers; first: %s", len(failed), acked+len(failed), switchovers, failed[0])
	}
	lost := clients.missing(t, leader, table)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged transactions are missing on %s: %v", len(lost), leader.Name, lost[:min(len(lost), 20)])
	}
	t.Logf("PgBouncer under %d switchovers: %d transactions acknowledged, %d failed, %d lost; longest transaction %s (started %s)",
		switchovers, acked, len(failed), len(lost), clients.longest.Round(time.Millisecond), clients.longestA.Format("15:04:05.000"))
}

// TestPgBouncerPauseTimeoutAborts (issue #18, must-show 4): a transaction
// left open through PgBouncer holds its PAUSE; the switchover gives up at
// routing.pgbouncer[].pause_timeout, before QUIESCE_WRITES: PgBouncer is
// resumed, the old primary still leads and accepts writes (through
// PgBouncer too), and the open transaction commits.
func TestPgBouncerPauseTimeoutAborts(t *testing.T) {
	const table = "e2e_pgbouncer_pause"
	p := newPgBouncer(t)
	c, leader := routedCluster(t, p, 2*time.Second, table)

	ctx := t.Context()
	holder, err := p.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQuietly(ctx, holder)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (id, client) VALUES (1, 0)", table)); err != nil {
		t.Fatal(err)
	}

	to := c.Others(leader.Name)[0]
	id := startQualifiedSwitchover(t, leader, switchoverReq{To: to.Name, Reason: "pause timeout e2e"})
	rec := waitRecord(t, leader, id, switchoverWait, "closed", closed)
	t.Logf("record: %s", rec)
	if rec.State != "failed" || rec.Failure == nil || !strings.Contains(rec.Failure.Reason, "PAUSE") || !strings.Contains(rec.Failure.Reason, "aborted before QUIESCE_WRITES") {
		t.Errorf("switchover ended %s (failure %+v), want failed naming the PAUSE timeout", rec.State, rec.Failure)
	}
	if rec.started(stageQuiesce) {
		t.Errorf("the switchover reached QUIESCE_WRITES: %s", rec)
	}
	if ev := routingEvents(rec, "pause"); len(ev) != 1 || ev[0].Kind != "warning" || !strings.Contains(ev[0].Message, "no answer within 2s") {
		t.Errorf("pause events %+v, want one warning naming the 2s timeout", ev)
	}
	testcluster.Poll(t, replicateTimeout, "PgBouncer resumed", func(ctx context.Context) error {
		paused, _, port, err := p.paused(ctx)
		if err == nil && (paused || port != leader.PGPort) {
			err = fmt.Errorf("paused %t, points at port %d, want %d", paused, port, leader.PGPort)
		}
		return err
	})
	testcluster.Poll(t, replicateTimeout, "the restore recorded in the switchover record", func(ctx context.Context) error {
		r, err := getRecord(ctx, leader, id)
		if err == nil && len(routingEvents(r, "restore")) == 0 {
			err = errors.New("no restore event yet")
		}
		return err
	})
	if name, _ := leaderRevision(t, c); name != leader.Name {
		t.Fatalf("leader key names %q, want %s still", name, leader.Name)
	}
	mustExec(t, leader, fmt.Sprintf("INSERT INTO %s (id, client) VALUES (2, 0)", table))
	wctx, cancel := context.WithTimeout(ctx, replicateTimeout)
	defer cancel()
	other, err := p.connect(wctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQuietly(wctx, other)
	if _, err := other.Exec(wctx, fmt.Sprintf("INSERT INTO %s (id, client) VALUES (3, 0)", table)); err != nil {
		t.Fatalf("a write through PgBouncer after the aborted switchover: %v", err)
	}
	if err := tx.Commit(wctx); err != nil {
		t.Fatalf("the transaction that held the PAUSE: %v", err)
	}
	var n int64
	if err := other.QueryRow(wctx, "SELECT count(*) FROM "+table, pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows = %d (err %v), want 3", n, err)
	}
}

// TestHAProxyRuntimeAPISwitchovers (issue #18, must-show 2): two HAProxy
// processes run the example configuration in front of one cluster; the
// members' routing section names the admin socket of the first only. 4
// clients on each write every 10 ms (a failed try reconnects at the next
// tick) during 3 switchovers. The integrated HAProxy sends the new
// primary traffic within 0.1 s of its promotion (readied through the
// runtime API; the old primary drained at the pause, so no client waits
// out HAProxy's connect retries on it); the plain one waits for its
// health checks. Failed statements and the longest gap between
// acknowledged writes per switchover are reported for both. Then the
// primary is killed: the failover's winner readies itself in the
// integrated HAProxy too.
func TestHAProxyRuntimeAPISwitchovers(t *testing.T) {
	const table, switchovers, promotionBound = "e2e_haproxy_api", 3, 100 * time.Millisecond
	// checkInterval is the example's `inter 1s`: a first write later than
	// that may have come from a health check, not from the runtime API.
	const checkInterval = time.Second
	bin := haproxyBinary(t)
	socket, adminCfg := haproxyAdmin(t)
	c := testcluster.New(t, testcluster.Options{ExtraConfig: func(_ string, cfg map[string]any) {
		cfg["routing"] = map[string]any{"haproxy": []any{map[string]any{"socket": socket, "backend": "primary"}}}
	}})
	leader := waitHealthyForSwitchover(t, c)
	for _, tb := range []string{table + "_with", table + "_without"} {
		mustExec(t, leader, fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, client int NOT NULL)", tb))
	}
	integrated := startHAProxy(t, bin, c, adminCfg)
	plain := startHAProxy(t, bin, c)
	integrated.waitWrites(t, leader, "after bootstrap", bootstrapTimeout)
	plain.waitWrites(t, leader, "after bootstrap", bootstrapTimeout)
	withAPI := startStmtClients(t, integrated.write, table+"_with", 4)
	without := startStmtClients(t, plain.write, table+"_without", 4)
	start := time.Now()
	withAPI.waitAcks(t, leader.PGPort, start, 100, "writes through the integrated HAProxy")
	without.waitAcks(t, leader.PGPort, start, 100, "writes through the plain HAProxy")

	type tally struct {
		failed int
		gap    time.Duration
	}
	var with, wout tally
	var slowest time.Duration
	var delays []time.Duration
	for i := range switchovers {
		to := c.Others(leader.Name)[i%2]
		promoted := watchPromotion(t, to, switchoverWait)
		began := time.Now()
		failedBefore, failedBeforePlain := withAPI.failedSince(start), without.failedSince(start)
		id := startQualifiedSwitchover(t, leader, switchoverReq{To: to.Name, Reason: "haproxy runtime API e2e"})
		rec := waitRecord(t, to, id, switchoverWait, "closed", closed)
		if rec.State != "completed" {
			t.Fatalf("switchover %d (%s → %s) ended %s: %s", i+1, leader.Name, to.Name, rec.State, rec)
		}
		for _, point := range []string{"pause", "repoint"} {
			if ev := routingEvents(rec, point); len(ev) == 0 || slices.ContainsFunc(ev, func(e switchoverEvent) bool { return e.Kind != "info" }) {
				t.Errorf("switchover %d: %s events %+v, want successful ones", i+1, point, ev)
			}
		}
		at, ok := <-promoted
		if !ok {
			t.Fatalf("switchover %d: %s never observed out of recovery", i+1, to.Name)
		}
		withAPI.waitAcks(t, to.PGPort, at, 50, "writes to "+to.Name+" through the integrated HAProxy")
		without.waitAcks(t, to.PGPort, at, 50, "writes to "+to.Name+" through the plain HAProxy")
		leader = waitHealthyForSwitchover(t, c)
		if leader.Name != to.Name {
			t.Fatalf("after switchover %d the leader is %s, want %s", i+1, leader.Name, to.Name)
		}
		end := time.Now()
		first, _ := withAPI.firstAck(to.PGPort, began)
		firstPlain, _ := without.firstAck(to.PGPort, began)
		w := tally{withAPI.failedSince(start) - failedBefore, withAPI.longestGap(began, end)}
		wo := tally{without.failedSince(start) - failedBeforePlain, without.longestGap(began, end)}
		delay := first.Sub(at)
		slowest = max(slowest, delay)
		t.Logf("switchover %d → %s: first write on the new primary %s after its promotion with the runtime API, %s without; failed statements %d with, %d without; longest gap between acknowledged writes %s with, %s without",
			i+1, to.Name, delay.Round(time.Millisecond), firstPlain.Sub(at).Round(time.Millisecond), w.failed, wo.failed, w.gap.Round(time.Millisecond), wo.gap.Round(time.Millisecond))
		with.failed, wout.failed = with.failed+w.failed, wout.failed+wo.failed
		with.gap, wout.gap = max(with.gap, w.gap), max(wout.gap, wo.gap)
		delays = append(delays, delay)
		if delay > checkInterval {
			t.Errorf("switchover %d: the new primary %s got its first write through the integrated HAProxy %s after its promotion: not before a health check could have found it (%s)",
				i+1, to.Name, delay.Round(time.Millisecond), checkInterval)
		}
	}
	// The median, not each: one switchover on a loaded machine may lose a
	// few tens of milliseconds to scheduling.
	slices.Sort(delays)
	if median := delays[len(delays)/2]; median > promotionBound {
		t.Errorf("the new primary got its first write through the integrated HAProxy a median %s after its promotion (%v), want ≤ %s", median.Round(time.Millisecond), delays, promotionBound)
	}
	// Automatic failover: the primary's host dies; the winner readies its
	// own server through the runtime API right after it promotes.
	promoted := watchAnyPromotion(t, c.Others(leader.Name), failoverWait)
	killedAt := time.Now()
	leader.Kill(t)
	winner := waitNewLeader(t, c, leader.Name, failoverWait)
	at, ok := <-promoted
	if !ok {
		t.Fatalf("no replica observed out of recovery after the kill")
	}
	withAPI.waitAcks(t, winner.PGPort, killedAt, 50, "writes to "+winner.Name+" through the integrated HAProxy after the failover")
	first, _ := withAPI.firstAck(winner.PGPort, killedAt)
	t.Logf("failover to %s: first write through the integrated HAProxy %s after its promotion", winner.Name, first.Sub(at).Round(time.Millisecond))
	if first.Sub(at) > checkInterval {
		t.Errorf("failover: the integrated HAProxy sent %s its first write %s after its promotion, want < %s (before any health check)", winner.Name, first.Sub(at).Round(time.Millisecond), checkInterval)
	}

	t.Logf("HAProxy over %d switchovers (4 clients, a try every 10 ms each): failed statements per switchover %.1f with the runtime API, %.1f without; longest gap %s with, %s without; slowest first write after promotion %s",
		switchovers, float64(with.failed)/switchovers, float64(wout.failed)/switchovers, with.gap.Round(time.Millisecond), wout.gap.Round(time.Millisecond), slowest.Round(time.Millisecond))
}
