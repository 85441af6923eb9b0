package agent

import (
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/switchover"
)

// TestStaleViewDoesNotRepeatASwitchoverStep: the old leader's next tick
// can run before the watch delivers the record it has just written (the
// event-driven ticks of a switchover come every few milliseconds). It must
// act on what it wrote, not start its quiesce again: a second quiesce
// appended a second QUIESCE_WRITES "started" event and ran a second
// checkpoint and stop against a PostgreSQL already shutting down (CI,
// TestSwitchoverPatronictl).
func TestStaleViewDoesNotRepeatASwitchoverStep(t *testing.T) {
	store := newStore()
	via := &heldView{Fake: store}
	h := newLoopHarnessVia(t, store, pgtest.NewEmpty(7000000000000000001), via)
	h.bootstrapLeader()
	ctx := t.Context()
	addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	rec := switchover.Record{ID: "s1", From: h.agent.name, To: "pg2", CreatedAt: time.Now(), Timeout: "30s", State: switchover.StateRunning}
	rec.Append(switchover.StagePreFlight, switchover.KindStarted, "checking")
	rec.Append(switchover.StagePreFlight, switchover.KindCompleted, "candidate pg2 qualifies")
	putSwitchover(t, store, rec)

	via.held.Store(store.View()) // the watch delivers nothing from here
	h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone))
	if got := getSwitchover(t, store, "s1"); got.Stage != switchover.StageQuiesce {
		t.Fatalf("after the first step the record is at %s, want QUIESCE_WRITES", got.Stage)
	}
	for range 3 {
		h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone))
	}
	via.held.Store(nil)
	got := getSwitchover(t, store, "s1")
	n := 0
	for _, e := range got.Events {
		if e.Stage == switchover.StageQuiesce && e.Kind == switchover.KindStarted {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d QUIESCE_WRITES started events, want 1 (a tick on a stale view repeated the step): %+v", n, got.Events)
	}
}

// TestPollTicksDoNotRenewAYoungLease: a switchover's 50 ms poll ticks
// leave a lease renewed less than loop_wait/2 ago alone (no keepalive, no
// leader check, the deadline unchanged); an older one is renewed as on
// any tick.
func TestPollTicksDoNotRenewAYoungLease(t *testing.T) {
	h := newLeaderHarness(t)
	h.advance(time.Second)
	h.tick() // renews
	deadline := h.agent.lease.deadline()
	renewals := func() int {
		n := 0
		for _, e := range h.events.take() {
			if e == "dcs KeepAlive" || e == "dcs CheckLeader" {
				n++
			}
		}
		return n
	}
	renewals()

	h.advance(100 * time.Millisecond)
	h.agent.pollTick = true
	h.tick()
	if n := renewals(); n != 0 || !h.agent.lease.deadline().Equal(deadline) {
		t.Fatalf("a poll tick 100ms after a renewal made %d renewal calls and moved the deadline %v → %v; want none", n, deadline, h.agent.lease.deadline())
	}
	h.advance(500 * time.Millisecond)
	h.agent.pollTick = true
	h.tick()
	if n := renewals(); n != 2 || !h.agent.lease.deadline().After(deadline) {
		t.Fatalf("a poll tick 600ms after a renewal made %d renewal calls (deadline %v → %v); want the keepalive and the leader check", n, deadline, h.agent.lease.deadline())
	}
	h.agent.pollTick = false
	h.advance(100 * time.Millisecond)
	h.tick()
	if n := renewals(); n != 2 {
		t.Fatalf("an ordinary tick made %d renewal calls; want 2 whatever the lease's age", n)
	}
}
