package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/restapi"

	"github.com/regent-ha/regent/postgres/pgtest"
)

// setDynamic writes the cluster's dynamic config (the config key) in the
// fake store and lets the agent's next tick apply it.
func (h *loopHarness) setDynamic(cfg map[string]any) {
	h.t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.dcs.Put(h.t.Context(), h.dcs.Keys().Config(), data); err != nil {
		h.t.Fatal(err)
	}
}

var errInjected = errors.New("injected etcd failure")

// TestLoweredTTLMovesTheDeadlineAtOnce (#15 item 1): lowering ttl moves the
// leader key to a shorter lease; if no renewal succeeds after the move, the
// leader must fence before the NEW lease can expire (grant send time + new
// ttl), not at the old lease's deadline.
func TestLoweredTTLMovesTheDeadlineAtOnce(t *testing.T) {
	h := newLeaderHarness(t)
	h.setDynamic(map[string]any{"ttl": 30, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576})
	h.advance(time.Second)
	h.tick() // rotates to a 30 s lease
	h.advance(time.Second)
	h.tick() // renews it: deadline = send + 30 − 3
	if !h.agent.lease.leading {
		t.Fatal("not leading after the ttl raise")
	}
	h.setDynamic(map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576})
	h.advance(time.Second)
	rotatedAt := h.now
	granted := false
	h.dcs.Intercept(func(op, key string) error {
		switch {
		case op == "GrantLease":
			granted = true
		case granted && (op == "KeepAlive" || op == "CheckLeader"):
			return errInjected // every renewal after the move fails
		}
		return nil
	})
	h.tick()
	if !granted {
		t.Fatal("the lease was not rotated for the new ttl")
	}
	newExpiry := rotatedAt.Add(10 * time.Second) // earliest expiry of the new lease
	step := 250 * time.Millisecond
	for h.pg.Writable() {
		h.advance(step)
		h.tick()
		if h.pg.Writable() && !h.now.Before(newExpiry.Add(-3*time.Second)) {
			t.Fatalf("still writable %s after the rotation to a 10 s lease (must fence by grant + ttl − safety_margin = 7s)", h.now.Sub(rotatedAt))
		}
	}
}

// journalWatchdog gives the harness's agent a required watchdog on a
// journal device (never a real one) driven by the harness clock.
func (h *loopHarness) journalWatchdog() *fencing.Watchdog {
	h.t.Helper()
	file := filepath.Join(h.t.TempDir(), "watchdog.journal")
	open := func(string) (fencing.Device, error) { return fencing.OpenJournal(file) }
	wd := fencing.NewWatchdog(fencing.Config{Mode: fencing.ModeRequired, Device: fencing.JournalPrefix + file}, open, nil,
		func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now })
	h.agent.wd = wd
	h.t.Cleanup(func() { _ = wd.Disarm() })
	return wd
}

// newArmedLeader returns a harness whose agent leads with a journal
// watchdog (journalWatchdog), armed.
func newArmedLeader(t *testing.T) (*loopHarness, *fencing.Watchdog) {
	t.Helper()
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	wd := h.journalWatchdog()
	h.bootstrapLeader()
	h.advance(time.Second)
	h.tick()
	if !wd.Status().Armed {
		t.Fatal("the leader's watchdog is not armed")
	}
	return h, wd
}

// TestFailedFenceKeepsTheKeyAndTheWatchdog (#15 item 4): a leader past its
// deadline whose stop fails keeps the leader key (nobody may promote over
// a primary that may still accept writes) and keeps the watchdog armed
// (the device must reset the host if the agent hangs now); it retries the
// stop every tick and lets go only once PostgreSQL is down.
func TestFailedFenceKeepsTheKeyAndTheWatchdog(t *testing.T) {
	h, wd := newArmedLeader(t)
	h.pg.StopErr = errors.New("processes would not die")
	h.advance(30 * time.Second) // a frozen agent wakes past its deadline; etcd still has the key
	for i := 0; i < 3; i++ {
		h.tick()
		if !wd.Status().Armed {
			t.Fatalf("tick %d: the watchdog was disarmed although PostgreSQL could not be stopped", i)
		}
		if l := h.dcs.View().LeaderName(); l != "pg1" {
			t.Fatalf("tick %d: leader key = %q after a failed fence, want it kept by pg1", i, l)
		}
		h.advance(time.Second)
	}
	if n := strings.Count(strings.Join(h.pg.Ops(), ","), "stop immediate"); n < 3 {
		t.Errorf("the fence was not retried every tick: %d immediate stops", n)
	}
	h.pg.StopErr = nil
	h.tick()
	if h.pg.Writable() {
		t.Fatal("still writable after the stop succeeded")
	}
	if wd.Status().Armed {
		t.Error("the watchdog is still armed after a successful fence")
	}
	if budgets := h.pg.StopBudgets; budgets[len(budgets)-1] > 3*time.Second {
		t.Errorf("fencing stop budget %s exceeds safety_margin 3s", budgets[len(budgets)-1])
	}
}

// TestFenceWhoseReplicaStartFailsStaysReadOnly: a leader past its deadline
// stops PostgreSQL, then its read-only restart fails. The node must stay
// unwritable, say why in the log, give the key up (PostgreSQL is down) and
// come back only as a replica once starting works again.
func TestFenceWhoseReplicaStartFailsStaysReadOnly(t *testing.T) {
	h := newLeaderHarness(t)
	var logs bytes.Buffer
	h.agent.log = slog.New(slog.NewTextHandler(&logs, nil))
	h.pg.StartErr = errors.New("port 5432 in use")
	h.advance(30 * time.Second) // a frozen agent wakes past its deadline
	h.tick()
	if h.pg.Writable() {
		t.Fatal("writable after the fence")
	}
	if h.agent.pgState != PGStartFailed {
		t.Errorf("pgState = %s after a failed restart, want %s", h.agent.pgState, PGStartFailed)
	}
	if out := logs.String(); !strings.Contains(out, "restarting PostgreSQL as a replica failed") || !strings.Contains(out, "port 5432 in use") {
		t.Errorf("the failed restart is not logged with its cause:\n%s", out)
	}
	if l := h.dcs.View().LeaderName(); l == "pg1" {
		t.Error("the fenced leader kept its key with PostgreSQL stopped")
	}
	h.pg.StartErr = nil
	h.advance(time.Second)
	h.tick()
	st, err := h.pg.Status(t.Context())
	if err != nil || !st.InRecovery {
		t.Fatalf("after the start works again: status %+v, %v; want a running replica", st, err)
	}
}

// TestDeposedLeaderCannotOverwriteLeaderOnlyKeys (#15 item 11): a leader
// whose lease lapsed and whose key another member took cannot write the
// status key any more, even from a tick that still believes it leads.
func TestDeposedLeaderCannotOverwriteLeaderOnlyKeys(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	ctx := t.Context()
	other := addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	store.ExpireLease(store.Lease())
	takeLeader(t, other, "pg2")
	before, _, _ := store.Get(ctx, store.Keys().Status())
	snap := h.agent.observe(ctx, RestartNone)
	snap.PG.Status.CurrentLSN += 0x100000
	h.agent.statusWritten = statusRecord{} // due now
	_ = h.agent.lead(ctx, snap)
	after, _, _ := store.Get(ctx, store.Keys().Status())
	if after.ModRevision != before.ModRevision {
		t.Fatalf("a deposed leader overwrote the status key: %s → %s", before.Data, after.Data)
	}
}

// TestSlowInitdbKeepsTheBootstrap (#15 item 9): initdb outlasting the
// session lease does not fail the bootstrap; the agent takes a fresh lease.
func TestSlowInitdbKeepsTheBootstrap(t *testing.T) {
	store := newStore()
	pg := pgtest.NewEmpty(7000000000000000001)
	h := newLoopHarness(t, store, pg)
	pg.OnOp = func(op string) {
		h.events.add("pg " + op)
		if op == "initdb" {
			store.ExpireLease(store.Lease()) // 10 s of initdb on a slow disk
		}
	}
	for i := 0; i < 3 && !h.agent.lease.leading; i++ {
		if err := h.agent.tick(t.Context()); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
		h.advance(time.Second)
	}
	if !h.agent.lease.leading || !pg.Writable() {
		t.Fatalf("not leading after a slow initdb: leading=%v writable=%v", h.agent.lease.leading, pg.Writable())
	}
}

// TestSlowRenewalsFenceBeforeTheWatchdogFires (#15 item 6): renewals that
// etcd acknowledges too late to ping the watchdog (each 2 s after it was
// sent; the keepalive window at ttl 10 s is 1.5 s) still extend the
// lease, but the device was last pinged long ago: the agent must fence
// itself before the device fires, never leave a healthy host to be reset
// with PostgreSQL writable.
func TestSlowRenewalsFenceBeforeTheWatchdogFires(t *testing.T) {
	h, wd := newArmedLeader(t)
	h.dcs.Intercept(func(op, key string) error {
		if op == "KeepAlive" {
			h.advance(2 * time.Second) // the answer arrives 2 s after the request
		}
		return nil
	})
	for i := 0; i < 20 && h.pg.Writable(); i++ {
		h.advance(500 * time.Millisecond)
		h.tick()
		st := wd.Status()
		if fires := st.LastKeepalive.Add(st.Timeout); st.Armed && !h.now.Before(fires) {
			t.Fatalf("the watchdog fired at %v (last ping %v) with PostgreSQL still writable: a healthy host reset",
				fires.Sub(st.LastKeepalive), st.LastKeepalive)
		}
	}
	if h.pg.Writable() {
		t.Fatal("still writable after 20 slow renewals that never pinged the watchdog")
	}
	if wd.Status().Armed {
		t.Error("the watchdog is still armed after the fence")
	}
}

// TestPatroniSwitchoverWaitReadsNoLoopState (#15 item 7): POST /switchover
// waits for the new leader on a REST goroutine while the loop applies a
// new dynamic config; under -race a read of the loop's own config there
// is reported.
func TestPatroniSwitchoverWaitReadsNoLoopState(t *testing.T) {
	h := newLeaderHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.agent.awaitNewLeader(ctx, "Switchover", "pg1", "")
	}()
	for i := 0; i < 5; i++ {
		h.setDynamic(map[string]any{"ttl": 10 + i, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576})
		h.tick()
	}
	<-done
}

// TestLeaderRestartLongerThanTheLeaseKeepsLeading (#15 item 3, "must
// show" 5): POST /restart on the leader whose stop takes longer than ttl.
// The stop runs beside the loop: the loop keeps renewing (the leader keeps
// its key and its deadline stays ahead), and once the stop ends the loop
// starts PostgreSQL again as the primary and answers the request.
func TestLeaderRestartLongerThanTheLeaseKeepsLeading(t *testing.T) {
	h := newLeaderHarness(t)
	gate := make(chan struct{})
	h.pg.StopGate = gate
	reply := make(chan commandResult, 1)
	begun := make(chan int, 1)
	go func() {
		code, _ := h.agent.restartNow(t.Context(), restapi.RestartRequest{}, reply)
		begun <- code
	}()
	select {
	case code := <-begun:
		if code != replyLater {
			t.Fatalf("restart answered %d at once, want it to run beside the loop", code)
		}
	case <-time.After(2 * time.Second):
		close(gate)
		t.Fatal("the restart holds the loop while PostgreSQL stops")
	}
	for i := 0; i < 25; i++ { // 25 s > ttl 10 s
		h.advance(time.Second)
		h.tick()
		if !h.agent.lease.leading || !h.agent.lease.deadline().After(h.now) {
			t.Fatalf("after %d s of a slow restart: leading=%v deadline in %s", i+1, h.agent.lease.leading, h.agent.lease.deadline().Sub(h.now))
		}
		if h.agent.lastPlan.Action.Kind != ActWait {
			t.Fatalf("plan during the stop = %s (%s), want wait", h.agent.lastPlan.Action.Kind, h.agent.lastPlan.Reason)
		}
	}
	close(gate)
	stop := h.agent.restart.stop
	err := <-stop.done // wait for the background stop to end, then hand its result back to the loop
	stop.done <- err
	h.tick()
	select {
	case r := <-reply:
		if r.code != 200 {
			t.Fatalf("restart answered %d %s", r.code, r.text)
		}
	default:
		t.Fatal("no answer after PostgreSQL started again")
	}
	if !h.pg.Writable() || !h.agent.lease.leading {
		t.Fatalf("after the restart: writable=%v leading=%v", h.pg.Writable(), h.agent.lease.leading)
	}
}

// TestCloneRunsBesideTheLoop (#15 "long work runs beside the loop"): a
// replica cloning for longer than ttl keeps renewing its lease (its member
// key stays), decides nothing else meanwhile, and starts as a replica once
// the clone ends.
func TestCloneRunsBesideTheLoop(t *testing.T) {
	store := storeLedByPg0(t)
	pg := pgtest.NewEmpty(7000000000000000001)
	gate := make(chan struct{})
	pg.CloneGate = gate
	h := newLoopHarness(t, store, pg)
	h.manualJobs = true
	h.tick()
	if h.agent.job == nil || h.agent.job.kind != "clone" {
		t.Fatalf("no clone beside the loop after the first tick (plan %s: %s)", h.agent.lastPlan.Action.Kind, h.agent.lastPlan.Reason)
	}
	lease := store.Lease()
	for i := 0; i < 30; i++ { // 30 s of cloning, ttl 10 s
		h.advance(time.Second)
		h.tick()
		if h.agent.lastPlan.Action.Kind != ActWait {
			t.Fatalf("plan during the clone = %s (%s), want wait", h.agent.lastPlan.Action.Kind, h.agent.lastPlan.Reason)
		}
	}
	if !store.LeaseAlive(lease) || store.Lease() != lease {
		t.Fatal("the member's lease was not kept alive during the clone")
	}
	close(gate)
	h.manualJobs = false
	h.tick() // collects the clone
	h.tick() // starts the replica
	if ev := strings.Join(pg.Ops(), ","); !strings.Contains(ev, "clone pg0,start") {
		t.Fatalf("operations %s: want the clone, then a start", ev)
	}
}

// TestPromotedPrimaryCreatesSlotsBeforeEtcd: a new primary whose etcd
// stops answering right after it won the key still creates the replicas'
// replication slots as part of the promotion, before any etcd write: the
// replicas can then stream its timeline, and one of them can take over
// once it fences (found by TestSwitchoverNewPrimaryCutFromEtcd: with the
// slots left to the next tick, both replicas stayed on the old timeline
// behind the cut primary and neither could race).
func TestPromotedPrimaryCreatesSlotsBeforeEtcd(t *testing.T) {
	h := newLeaderHarness(t)
	addPeer(t, h.dcs, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", State: "running"})
	h.pg.SetReplica(0x5000000) // the key is ours; PostgreSQL is still the replica that won it
	view := h.agent.dcs.View()
	h.agent.slots = slotState{}
	h.agent.dyn.RetryTimeout = 100 * time.Millisecond
	h.agent.publishLimits()
	h.events.take()
	h.dcs.SetHang(true)
	if err := h.agent.promote(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	ev := h.events.take()
	promoted, slots := slices.Index(ev, "pg promote"), slices.Index(ev, "pg slots pg2")
	firstDCS := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "dcs ") })
	switch {
	case promoted < 0 || slots < promoted:
		t.Fatalf("promote then the replicas' slots, want both in that order: %q", ev)
	case firstDCS >= 0 && firstDCS < slots:
		t.Fatalf("an etcd call (%s) came before the slots: %q", ev[firstDCS], ev)
	}
}
