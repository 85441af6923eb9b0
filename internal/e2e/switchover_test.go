package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

const createLoadTable = "CREATE TABLE %s (id bigint PRIMARY KEY, node text NOT NULL, at timestamptz NOT NULL DEFAULT now())"

// TestSwitchoverUnderLoad: a planned switchover while a client writes a
// row every 10 ms through the /primary health check. It completes; the
// event stream (served by a member that is neither side) shows the seven
// stages in order, each started and completed with its duration; no
// acknowledged write is lost; the old primary ends as a streaming replica
// of the new one. The longest gap between acknowledged writes is the
// switchover's write-unavailability.
func TestSwitchoverUnderLoad(t *testing.T) {
	c, old, w := startLoaded(t, "e2e_load")
	others := c.Others(old.Name)
	to, observer := others[0], others[1]

	began := time.Now()
	id := startSwitchover(t, observer, switchoverReq{To: to.Name, Reason: "e2e"})
	stream, err := observer.OpenEvents(t.Context(), "/switchover/"+id+"/events", "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	got := readStream(t, stream, switchoverWait, nil)
	took := time.Since(began)
	events := streamEvents(got)
	t.Logf("switchover %s %s → %s: event stream %s in %.1fs", id, old.Name, to.Name, describeStream(got), took.Seconds())
	if end := got[len(got)-1]; end.End.State != "completed" {
		t.Errorf("event stream ended with state %q (failure %s), want completed", end.End.State, end.End.Failure)
	}
	if err := checkSeqs(events); err != nil {
		t.Errorf("event stream: %v", err)
	}
	if err := checkStages(events); err != nil {
		t.Errorf("event stream: stages:\n%v", err)
	}
	t.Logf("stage durations: %s", stageDurations(events))

	rec := waitRecord(t, old, id, replicateTimeout, "closed", closed)
	if rec.State != "completed" || rec.From != old.Name || rec.To != to.Name || rec.Reason != "e2e" {
		t.Errorf("record: state %q from %q to %q reason %q, want completed %s → %s \"e2e\"", rec.State, rec.From, rec.To, rec.Reason, old.Name, to.Name)
	}
	if len(rec.Events) != len(events) {
		t.Errorf("record has %d events, the stream delivered %d: %s", len(rec.Events), len(events), rec)
	}
	if rs, body, err := listSwitchovers(t.Context(), to); err != nil || len(rs) != 1 || rs[0].ID != id {
		t.Errorf("GET /switchovers on %s = %s (err %v), want the one record %s", to.Name, body, err, id)
	}
	if code, body, err := to.Do(t.Context(), http.MethodDelete, "/switchover/"+id, nil); err != nil || code != http.StatusConflict {
		t.Errorf("DELETE /switchover/%s after it completed = %d %s (err %v), want 409", id, code, body, err)
	}

	waitNewLeader(t, c, old.Name, replicateTimeout)
	if name, _ := leaderRevision(t, c); name != to.Name {
		t.Errorf("leader key names %q after the switchover, want %s", name, to.Name)
	}
	waitAcked(t, w, to.Name, time.Now(), 50, replicateTimeout)
	w.Stop()
	acks := w.Snapshot().Acked
	g := testcluster.LongestGap(acks)
	t.Logf("switchover write-unavailability: %.1fs (last ack %d on %s at +%s, next %d on %s at +%s after the PATCH)",
		g.Duration.Seconds(), g.From.ID, g.From.Node, g.From.At.Sub(began).Round(time.Millisecond), g.To.ID, g.To.Node, g.To.At.Sub(began).Round(time.Millisecond))
	if g.Duration > unavailabilityBound {
		t.Errorf("write-unavailability %s > %s", g.Duration.Round(time.Millisecond), unavailabilityBound)
	}
	checkAcked(t, to, "e2e_load", acks)

	waitStreamingFrom(t, old, to, rejoinTimeout)
	st, err := old.Status(t.Context())
	if err != nil || st["role"] != "replica" {
		t.Errorf("old primary %s: GET /patroni role %v (err %v), want replica", old.Name, st["role"], err)
	}
}

// TestSwitchoverDryRunRejects: dry runs to a nofailover member and to a
// member held more than maximum_lag_on_failover (1 MiB) behind answer 412
// naming those reasons, and create no record; once the lag is gone the
// same dry run passes (the control).
func TestSwitchoverDryRunRejects(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Tags: map[string]map[string]any{"pg3": {"nofailover": true}}})
	leader := waitHealthyForSwitchover(t, c)
	noFailover := c.Node("pg3")
	if leader == noFailover {
		t.Fatalf("the nofailover member %s leads", leader.Name)
	}
	lagging := c.Others(leader.Name)[0] // pg1 or pg2, not pg3

	r := expectRefusal(t, leader, switchoverReq{To: noFailover.Name, DryRun: true}, http.StatusPreconditionFailed)
	if rs := r.reasonsOf(noFailover.Name); !slices.Contains(rs, "tag nofailover") {
		t.Errorf("dry run to %s: rejected reasons %q, want \"tag nofailover\"", noFailover.Name, rs)
	}

	release := lagging.HoldWALReceiver(t)
	mustExec(t, leader, "CREATE TABLE e2e_lag (id int PRIMARY KEY, pad text NOT NULL)")
	mustExec(t, leader, "INSERT INTO e2e_lag SELECT g, repeat('x', 1000) FROM generate_series(1, 3000) g") // ≈ 3.5 MB of WAL
	lagRe := regexp.MustCompile(`^lag \S.* > \S.*$`)
	var lagReasons []string
	// The leader publishes its WAL position once per loop_wait: poll.
	testcluster.Poll(t, replicateTimeout, "a dry run to "+lagging.Name+" refused for lag", func(ctx context.Context) error {
		code, body, err := leader.Do(ctx, http.MethodPatch, "/switchover", switchoverReq{To: lagging.Name, DryRun: true})
		if err != nil {
			return err
		}
		var r refusal
		if code != http.StatusPreconditionFailed || json.Unmarshal(body, &r) != nil {
			return fmt.Errorf("%d %s", code, body)
		}
		lagReasons = r.reasonsOf(lagging.Name)
		if !slices.ContainsFunc(lagReasons, lagRe.MatchString) {
			return fmt.Errorf("412 without a lag reason for %s: %s", lagging.Name, body)
		}
		return nil
	})
	t.Logf("dry run to %s: 412 %q", lagging.Name, lagReasons)
	release()

	testcluster.Poll(t, replicateTimeout, "a dry run to "+lagging.Name+" accepted once it caught up", func(ctx context.Context) error {
		code, body, err := leader.Do(ctx, http.MethodPatch, "/switchover", switchoverReq{To: lagging.Name, DryRun: true})
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(string(body), `"to":"`+lagging.Name+`"`) {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	for _, n := range c.Nodes() {
		rs, body, err := listSwitchovers(t.Context(), n)
		if err != nil || len(rs) != 0 || strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("GET /switchovers on %s after dry runs = %s (err %v), want []", n.Name, body, err)
		}
	}
	if lock, err := c.Get(t.Context(), "switchover"); err != nil || lock != nil {
		t.Errorf("switchover lock after dry runs: %q (err %v), want none", lock, err)
	}
}

// expectRefusal sends PATCH /switchover and expects status with a JSON
// refusal body.
func expectRefusal(t *testing.T, n *testcluster.Node, req switchoverReq, status int) refusal {
	t.Helper()
	code, body := patchSwitchover(t, n, req)
	var r refusal
	if code != status || json.Unmarshal(body, &r) != nil {
		t.Fatalf("PATCH /switchover %+v on %s = %d %s, want %d with a JSON refusal", req, n.Name, code, body, status)
	}
	t.Logf("PATCH /switchover %+v on %s: %d %s", req, n.Name, code, strings.TrimSpace(string(body)))
	return r
}

// TestSwitchoverConflictAndAbort: while a switchover waits for a slow
// candidate (its WAL replay held) a second PATCH is refused with 409
// naming the first; DELETE aborts it: the old primary serves writes again
// under the same lease, the record is aborted, and no acknowledged write
// is lost.
func TestSwitchoverConflictAndAbort(t *testing.T) {
	c, old, w := startLoaded(t, "e2e_abort")
	others := c.Others(old.Name)
	cand, third := others[0], others[1]
	_, leaseRev := leaderRevision(t, c)

	release := cand.HoldWALReplay(t)
	began := time.Now()
	id := startSwitchover(t, old, switchoverReq{To: cand.Name, Reason: "e2e abort", Timeout: "60s"})

	r := expectRefusal(t, third, switchoverReq{To: third.Name, Reason: "e2e second"}, http.StatusConflict)
	if r.ID != id || !strings.Contains(r.Error, id) {
		t.Errorf("409 names %q (%q), want the running switchover %s", r.ID, r.Error, id)
	}

	waitRecord(t, old, id, stageWait, stageCatchUp+" started", inStage(stageCatchUp))
	code, body, err := third.Do(t.Context(), http.MethodDelete, "/switchover/"+id, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("DELETE /switchover/%s on %s = %d %s (err %v), want 202", id, third.Name, code, body, err)
	}
	aborted := time.Now()
	rec := waitRecord(t, old, id, replicateTimeout, "closed", closed)
	if rec.State != "aborted" || rec.Failure == nil || rec.Failure.Reason == "" {
		t.Errorf("record after DELETE: state %q failure %+v, want aborted with a reason: %s", rec.State, rec.Failure, rec)
	}
	if rec.started(stagePromote) {
		t.Errorf("aborted record reached %s: %s", stagePromote, rec)
	}
	if err := checkSeqs(rec.Events); err != nil {
		t.Errorf("record: %v", err)
	}
	testcluster.Poll(t, replicateTimeout, old.Name+" writable again: /primary 200 and an INSERT", func(ctx context.Context) error {
		if err := old.API().CheckPrimary(ctx); err != nil {
			return err
		}
		return tryWrite(ctx, old, "INSERT INTO e2e_abort (id, node) VALUES (-1, 'probe')")
	})
	t.Logf("old primary writable %.1fs after the DELETE (%.1fs after the PATCH)", time.Since(aborted).Seconds(), time.Since(began).Seconds())
	if name, rev := leaderRevision(t, c); name != old.Name || rev != leaseRev {
		t.Errorf("leader key after the abort: %q created at revision %d, want %s at %d (the same lease, never released)", name, rev, old.Name, leaseRev)
	}
	if err := checkOneLeader(t.Context(), c, old); err != nil {
		t.Error(err)
	}
	release()
	waitAcked(t, w, old.Name, time.Now(), 50, replicateTimeout)
	w.Stop()
	acks := w.Snapshot().Acked
	g := testcluster.LongestGap(acks)
	t.Logf("aborted switchover write-unavailability: %.1fs", g.Duration.Seconds())
	checkAcked(t, old, "e2e_abort", acks)
	waitStreamingFrom(t, cand, old, rejoinTimeout)
}

// TestSwitchoverAbortDuringSlowQuiesce: the old primary's stop hangs
// (the candidate's WAL receiver is held, so the walsender serving it, and
// with it the fast shutdown, waits) for longer than the lease TTL, and
// the switchover is aborted meanwhile. While quiesced no node answers
// GET /primary with 200 and the old primary takes no write; the old
// leader keeps renewing its lease all along (DESIGN §5: the old primary
// restarts as primary with its lease), and once PostgreSQL has stopped it
// restarts as the primary: record aborted, same lease, nothing lost.
func TestSwitchoverAbortDuringSlowQuiesce(t *testing.T) {
	c, old, w := startLoaded(t, "e2e_slow")
	cand := c.Others(old.Name)[0]
	_, leaseRev := leaderRevision(t, c)

	release := cand.HoldWALReceiver(t)
	id := startSwitchover(t, old, switchoverReq{To: cand.Name, Reason: "e2e slow quiesce", Timeout: "60s"})
	waitRecord(t, old, id, stageWait, stageQuiesce+" started", inStage(stageQuiesce))
	testcluster.Poll(t, replicateTimeout, "writes fenced: no GET /primary 200, no write on "+old.Name, func(ctx context.Context) error {
		for _, n := range c.Nodes() {
			if code, _, err := n.Get(ctx, "/primary"); err == nil && code == http.StatusOK {
				return fmt.Errorf("%s answers GET /primary 200 during %s", n.Name, stageQuiesce)
			}
		}
		if err := tryWrite(ctx, old, "INSERT INTO e2e_slow (id, node) VALUES (-2, 'fenced?')"); err == nil {
			return fmt.Errorf("%s accepted a write during %s", old.Name, stageQuiesce)
		}
		return nil
	})
	code, body, err := old.Do(t.Context(), http.MethodDelete, "/switchover/"+id, nil)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("DELETE /switchover/%s = %d %s (err %v), want 202", id, code, body, err)
	}
	aborted := time.Now()
	// Keep the stop stuck past the TTL: a leader that stops renewing while
	// it waits loses its lease in that time.
	leaseErr := keepsLease(t, c, old.Name, leaseRev, c.TTL()+2*time.Second)
	if leaseErr != nil {
		t.Errorf("while the aborted switchover waited for PostgreSQL to stop: %v", leaseErr)
	}
	release()

	rec := waitRecord(t, old, id, c.TTL()+30*time.Second, "closed", closed)
	t.Logf("record closed %s %.1fs after the DELETE: %s", rec.State, time.Since(aborted).Seconds(), rec)
	if rec.State != "aborted" {
		t.Errorf("record state %q, want aborted", rec.State)
	}
	leader := c.WaitLeader(t, c.TTL()+30*time.Second)
	if leader != old {
		t.Errorf("after the abort %s leads, want the old primary %s restored", leader.Name, old.Name)
	}
	if name, rev := leaderRevision(t, c); name != old.Name || rev != leaseRev {
		t.Errorf("leader key after the abort: %q created at revision %d, want %s at %d (the same lease)", name, rev, old.Name, leaseRev)
	}
	testcluster.Poll(t, replicateTimeout, "exactly one primary: "+leader.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, leader)
	})
	waitAcked(t, w, leader.Name, time.Now(), 50, replicateTimeout)
	w.Stop()
	acks := w.Snapshot().Acked
	t.Logf("aborted slow switchover write-unavailability: %.1fs", testcluster.LongestGap(acks).Duration.Seconds())
	checkAcked(t, leader, "e2e_slow", acks)
}

// keepsLease watches the leader key for d and returns an error at the
// first moment it does not name leader with CreateRevision rev.
func keepsLease(t *testing.T, c *testcluster.Cluster, leader string, rev int64, d time.Duration) error {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < d {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		resp, err := c.Etcd().Get(ctx, c.Keys().Leader())
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("etcd get leader key: %w", err)
		case len(resp.Kvs) == 0:
			return fmt.Errorf("%s lost its lease %.1fs in: no leader key", leader, time.Since(start).Seconds())
		case string(resp.Kvs[0].Value) != leader || resp.Kvs[0].CreateRevision != rev:
			return fmt.Errorf("%s lost its lease %.1fs in: leader key %q created at revision %d (was %d)",
				leader, time.Since(start).Seconds(), resp.Kvs[0].Value, resp.Kvs[0].CreateRevision, rev)
		}
		select {
		case <-t.Context().Done():
			return t.Context().Err()
		case <-tick.C:
		}
	}
	return nil
}

func compactBody(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }

// TestSwitchoverOrchestratorKilled: the old leader's agent (only the
// agent) is SIGKILLed while it drives a switchover (held in
// QUIESCE_WRITES by a stopped WAL receiver of the candidate, or in
// WAIT_FOR_REPLICATION_CATCHUP by its stopped replay). Within ttl + 30 s
// the cluster has exactly one primary that takes writes and the record is
// closed, never left running; the restarted agent rejoins.
func TestSwitchoverOrchestratorKilled(t *testing.T) {
	for _, tc := range []struct {
		stage string
		hold  func(*testcluster.Node, testing.TB) func()
	}{
		{stageQuiesce, (*testcluster.Node).HoldWALReceiver},
		{stageCatchUp, (*testcluster.Node).HoldWALReplay},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			testOrchestratorKilled(t, tc.stage, tc.hold)
		})
	}
}

func testOrchestratorKilled(t *testing.T, stage string, hold func(*testcluster.Node, testing.TB) func()) {
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	cand := c.Others(old.Name)[0]
	mustExec(t, old, "CREATE TABLE e2e_kill (id bigint PRIMARY KEY)")

	release := hold(cand, t)
	id := startSwitchover(t, old, switchoverReq{To: cand.Name, Reason: "e2e kill", Timeout: "60s"})
	waitRecord(t, old, id, stageWait, stage+" started", inStage(stage))
	killed := time.Now()
	old.KillAgent(t)
	t.Logf("killed %s's agent during %s", old.Name, stage)
	release()

	rec := waitRecord(t, cand, id, c.TTL()+30*time.Second, "closed after its orchestrator died", closed)
	t.Logf("record closed %s %.1fs after the kill: %s", rec.State, time.Since(killed).Seconds(), rec)
	switch {
	case rec.State == "failed" && (rec.Failure == nil || rec.Failure.Reason == ""):
		t.Errorf("record failed without a reason: %s", rec)
	case rec.State != "failed" && rec.State != "completed":
		t.Errorf("record closed %q, want completed or failed", rec.State)
	}
	leader := waitNewLeader(t, c, old.Name, replicateTimeout)
	testcluster.Poll(t, replicateTimeout, "exactly one primary: "+leader.Name, func(ctx context.Context) error {
		if err := checkOneLeader(ctx, c, leader); err != nil {
			return err
		}
		// The killed agent's node is not in checkOneLeader: its PostgreSQL
		// must not be writable.
		if old.PostgresRunning() {
			rec, err := old.QueryInt(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END")
			if err == nil && rec == 0 {
				return fmt.Errorf("%s (agent dead) runs PostgreSQL as a primary", old.Name)
			}
		}
		return nil
	})
	if err := tryWrite(t.Context(), leader, "INSERT INTO e2e_kill VALUES (1)"); err != nil {
		t.Errorf("write on the new primary %s: %v", leader.Name, err)
	}
	if lock, err := c.Get(t.Context(), "switchover"); err != nil || lock != nil {
		t.Errorf("switchover lock after the record closed: %q (err %v), want none", lock, err)
	}

	old.Start(t)
	c.WaitHealthy(t, rejoinTimeout)
	waitRows(t, c.Nodes(), 1, "SELECT count(*) FROM e2e_kill")
}

// TestSwitchoverEventsResume: a client reading a switchover's event
// stream disconnects mid-stream and reconnects (to another member) with
// Last-Event-ID: across both connections it receives every event exactly
// once, seq 1..N, then "end".
func TestSwitchoverEventsResume(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	others := c.Others(old.Name)
	cand, third := others[0], others[1]

	release := cand.HoldWALReplay(t)
	id := startSwitchover(t, old, switchoverReq{To: cand.Name, Reason: "e2e resume", Timeout: "60s"})
	path := "/switchover/" + id + "/events"
	first, err := old.OpenEvents(t.Context(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	// Leave after seq 2: seq 1 and 2 are written together at the request,
	// so the server has more queued than the client takes.
	part1 := readStream(t, first, stageWait, func(e sseEvent) bool { return e.Event.Seq >= 2 || e.Kind == "end" })
	first.Close()
	lastID := part1[len(part1)-1].ID

	second, err := third.OpenEvents(t.Context(), path, lastID)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	part2 := readStream(t, second, stageWait, func(e sseEvent) bool {
		return e.Event.Stage == stageCatchUp && e.Kind == "started" || e.Kind == "end"
	})
	release()
	part2 = append(part2, readStream(t, second, switchoverWait, nil)...)
	t.Logf("first connection (to %s): %s; second (to %s, Last-Event-ID %s): %s",
		old.Name, describeStream(part1), third.Name, lastID, describeStream(part2))

	all := append(streamEvents(part1), streamEvents(part2)...)
	if err := checkSeqs(all); err != nil {
		t.Errorf("events across both connections: %v", err)
	}
	if ends := slices.IndexFunc(part1, func(e sseEvent) bool { return e.Kind == "end" }); ends >= 0 {
		t.Errorf("the first connection already saw the end: the disconnect was not mid-stream")
	}
	if end := part2[len(part2)-1]; end.Kind != "end" || end.End.State != "completed" {
		t.Errorf("second connection ended with %s %q, want end completed", end.Kind, end.End.State)
	}
	rec := waitRecord(t, third, id, replicateTimeout, "closed", closed)
	if len(rec.Events) != len(all) {
		t.Errorf("record has %d events, both connections delivered %d: %s", len(rec.Events), len(all), rec)
	}
	if err := checkStages(all); err != nil {
		t.Errorf("stages:\n%v", err)
	}
}

// TestSwitchoverPatronictl: Patroni's own CLI runs a switchover through
// POST /switchover (and the failover key): it reports success, the
// candidate leads, and the same staged machine ran (a completed record).
func TestSwitchoverPatronictl(t *testing.T) {
	needPatronictl(t)
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	cand := c.Others(old.Name)[1]
	cfg := c.PatronictlConfig(t)

	ctx, cancel := context.WithTimeout(t.Context(), switchoverWait)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, "patronictl", "-c", cfg, "switchover", "--force", "--candidate", cand.Name)
	out, err := cmd.CombinedOutput()
	t.Logf("patronictl switchover --force --candidate %s (%.1fs): %v\n%s", cand.Name, time.Since(began).Seconds(), err, out)
	if err != nil {
		t.Fatalf("patronictl switchover: %v", err)
	}
	if want := `Successfully switched over to "` + cand.Name + `"`; !strings.Contains(string(out), want) {
		t.Errorf("patronictl output lacks %q", want)
	}
	leader := waitNewLeader(t, c, old.Name, replicateTimeout)
	if leader != cand {
		t.Errorf("new leader %s, want the candidate %s", leader.Name, cand.Name)
	}
	var rec switchoverRecord
	testcluster.Poll(t, switchoverWait, "a completed switchover "+old.Name+" → "+cand.Name+" in GET /switchovers", func(ctx context.Context) error {
		rs, body, err := listSwitchovers(ctx, cand)
		if err != nil {
			return err
		}
		if len(rs) != 1 {
			return fmt.Errorf("%d records: %s", len(rs), body)
		}
		rec = rs[0]
		if rec.State != "completed" || rec.From != old.Name || rec.To != cand.Name {
			return fmt.Errorf("record %s → %s %s: %s", rec.From, rec.To, rec.State, body)
		}
		return nil
	})
	if err := checkStages(rec.Events); err != nil {
		t.Errorf("stages of %s:\n%v", rec.ID, err)
	}
	t.Logf("stage durations: %s", stageDurations(rec.Events))
	waitStreamingFrom(t, old, cand, rejoinTimeout)
	if f, err := c.Get(t.Context(), "failover"); err != nil || (f != nil && strings.TrimSpace(string(f)) != "{}") {
		t.Errorf("failover key after the switchover: %s (err %v), want absent or {}", f, err)
	}
}
