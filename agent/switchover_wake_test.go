package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/switchover"
)

// awaitWake runs one waitNextTick of a and fails t unless it returns
// within bound: with loop_wait an hour long, only an event (or a poll)
// can end it that soon.
func awaitWake(t *testing.T, a *Agent, bound time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { a.waitNextTick(t.Context()); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s: the loop still waits after %s (loop_wait %s): the hand-over waits for a tick", what, bound, a.dyn.LoopWait)
	}
}

// TestSwitchoverHandOversDoNotWaitForLoopWait: with loop_wait at an hour,
// the candidate's loop wakes on the old leader's hand-over (the watch
// events of the record, the failover key and the released leader key),
// promotes in that tick, records the promotion in the very next one
// (started at once), and keeps looking for its replicas at the
// switchover poll, not at loop_wait.
func TestSwitchoverHandOversDoNotWaitForLoopWait(t *testing.T) {
	h1 := newLeaderHarness(t)
	store, ctx := h1.dcs, t.Context()
	pg2 := pgtest.New(7000000000000000001)
	pg2.SetReplica(0x6000000)
	h2 := newNamedHarness(t, "pg2", store, pg2, store.Peer())
	h2.tick()
	h2.tick()
	if h2.agent.lease.leading || store.View().LeaderName() != "pg1" {
		t.Fatalf("setup: pg2 leading %t, leader %q; want pg1 leading", h2.agent.lease.leading, store.View().LeaderName())
	}

	rec := switchover.Record{ID: "s1", From: "pg1", To: "pg2", CreatedAt: time.Now(), Timeout: "30s", State: switchover.StateRunning, FinalLSN: 0x5000000}
	rec.Append(switchover.StagePreFlight, switchover.KindStarted, "checking")
	rec.Append(switchover.StageQuiesce, switchover.KindStarted, "fencing")
	rec.Append(switchover.StageCatchUp, switchover.KindStarted, "waiting")
	putSwitchover(t, store, rec)
	h2.tick() // sees the catch-up
	h2.agent.dyn.LoopWait = time.Hour
	h2.agent.nextTick = h2.now.Add(time.Hour)
	for len(h2.agent.dcs.Notify()) > 0 {
		<-h2.agent.dcs.Notify()
	}
	h2.agent.dcs.TakeChanges()

	if err := h1.agent.handOver(ctx, switchover.Active(store.View()), switchover.CatchUp{InView: true, Reachable: true, Replayed: 0x6000000}); err != nil {
		t.Fatalf("hand-over: %v", err)
	}
	awaitWake(t, h2.agent, 10*time.Second, "after the leader key's release")
	h2.tick()
	if !h2.agent.lease.leading || !pg2.Writable() || store.View().LeaderName() != "pg2" {
		t.Fatalf("after the woken tick: pg2 leading %t, writable %t, leader %q; want pg2 promoted", h2.agent.lease.leading, pg2.Writable(), store.View().LeaderName())
	}

	// A real timer of ttl − safety_margin (the lease deadline) is the
	// loop's next wake-up without an event; 3 s is well under it.
	awaitWake(t, h2.agent, 3*time.Second, "after the promotion")
	h2.tick()
	if r := switchover.Active(store.View()); r == nil || r.Stage != switchover.StageRepoint {
		t.Fatalf("record after the next tick: %+v, want REPOINT_CLIENT_TRAFFIC (the promotion recorded)", r)
	}
	addPeer(t, store, "pg3", dcs.Member{ConnURL: "postgres://127.0.0.1:5434/postgres", APIURL: "http://127.0.0.1:8010/patroni", State: "running"})
	h2.tick() // pg3 does not stream yet: REPOINT waits on PostgreSQL, no event
	for len(h2.agent.dcs.Notify()) > 0 {
		<-h2.agent.dcs.Notify()
	}
	h2.agent.dcs.TakeChanges()
	awaitWake(t, h2.agent, 3*time.Second, "while the replicas repoint")
}

// caughtUpPeers: every peer asked for is reachable and replayed at lsn.
type caughtUpPeers struct{ lsn postgres.LSN }

func (p caughtUpPeers) Fetch(_ context.Context, ms map[string]dcs.Member) []PeerStatus {
	var out []PeerStatus
	for name := range ms {
		out = append(out, PeerStatus{Name: name, Reachable: true, InRecovery: true, Replayed: p.lsn, State: "running"})
	}
	return out
}

// TestOldLeaderHandsOverInTheTickItSeesTheStop: once its stop has ended,
// the old leader records the final LSN, reads the candidate's position and
// releases the key in that one tick: no tick (nor the record write's
// watch event) between quiesced, caught up and released. The quiesce's
// steps are timed in the record.
func TestOldLeaderHandsOverInTheTickItSeesTheStop(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	h.agent.peers = caughtUpPeers{lsn: 0x9000000}
	quiesceFor(t, h, false)
	h.tick()
	r := switchover.Active(store.View())
	if r == nil || r.Stage != switchover.StagePromote || store.View().LeaderName() != "" {
		t.Fatalf("after the tick that saw the stop: record %+v, leader %q; want PROMOTE_STANDBY and the key released", r, store.View().LeaderName())
	}
	var steps string
	for _, e := range r.Events {
		if e.Stage == switchover.StageQuiesce && e.Kind == switchover.KindInfo {
			steps = e.Message
		}
	}
	if !strings.Contains(steps, "checkpoint") || !strings.Contains(steps, "fast stop") {
		t.Errorf("QUIESCE_WRITES info event %q, want the checkpoint's and the stop's durations", steps)
	}
}

// quiesceFor writes a switchover s1 from h's member to pg2 past its
// pre-flight (standby: inside a standby cluster), ticks h into its
// quiesce and lets the stop beside the loop end.
func quiesceFor(t *testing.T, h *loopHarness, standby bool) {
	t.Helper()
	rec := switchover.Record{ID: "s1", From: h.agent.name, To: "pg2", CreatedAt: time.Now(), Timeout: "30s", State: switchover.StateRunning, Standby: standby}
	rec.Append(switchover.StagePreFlight, switchover.KindStarted, "checking")
	rec.Append(switchover.StagePreFlight, switchover.KindCompleted, "candidate pg2 qualifies")
	putSwitchover(t, h.dcs, rec)
	awaitStop(t, h)
}

// awaitStop ticks h into its switchover's quiesce and lets the stop
// beside the loop end.
func awaitStop(t *testing.T, h *loopHarness) {
	t.Helper()
	h.tick() // starts the quiesce: checkpoint and stop beside the loop
	q := h.agent.quiesce
	if q == nil {
		t.Fatal("no quiesce started")
	}
	select {
	case err := <-q.stopped:
		q.stopped <- err // for the tick to collect, as waitNextTick would
	case <-time.After(5 * time.Second):
		t.Fatal("the background checkpoint and stop did not end")
	}
}
