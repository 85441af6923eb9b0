package agent

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/switchover"
)

// TestEveryDCSCallIsBounded (#15 item 2): with etcd unreachable (every
// call waits for its context, as etcd's client does), every method of the
// agent's DCS that takes a context returns by the bound, even when the
// caller passes a context without a deadline. Methods are found by
// reflection, so a method added later is covered too.
func TestEveryDCSCallIsBounded(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	h.agent.dyn.RetryTimeout = 100 * time.Millisecond
	h.agent.setLease(h.agent.lease.lost()) // the retry bound alone
	store.SetHang(true)
	ctxType := reflect.TypeFor[context.Context]()
	v := reflect.ValueOf(h.agent.dcs)
	checked := 0
	for i := 0; i < v.NumMethod(); i++ {
		m, mt := v.Method(i), v.Type().Method(i)
		if m.Type().NumIn() == 0 || m.Type().In(0) != ctxType {
			continue
		}
		args := []reflect.Value{reflect.ValueOf(t.Context())} // no deadline: the bound must come from the agent
		for j := 1; j < m.Type().NumIn(); j++ {
			args = append(args, reflect.Zero(m.Type().In(j)))
		}
		done := make(chan struct{})
		go func() { defer close(done); m.Call(args) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still blocked 5s into an etcd outage (bound: retry_timeout 100ms)", mt.Name)
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("checked %d context-taking methods, want every one of the DCS interface's", checked)
	}
}

// TestSwitchoverStepCannotHoldTheLoop (#15 item 2): a switchover step on
// the new primary (PROMOTE_STANDBY → REPOINT) whose etcd stops answering
// returns within the bound, so the loop goes on to fence-check and renew.
func TestSwitchoverStepCannotHoldTheLoop(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	rec := switchover.Record{ID: "s1", From: "pg0", To: "pg1", CreatedAt: h.now, Timeout: "30s", Stage: switchover.StagePromote, State: switchover.StateRunning}
	rec.Append(switchover.StagePromote, switchover.KindStarted, "handing over")
	data, _ := json.Marshal(rec)
	if err := store.Put(t.Context(), store.Keys().Switchover("s1"), data); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(t.Context(), store.Keys().SwitchoverLock(), []byte("s1")); err != nil {
		t.Fatal(err)
	}
	snap := h.agent.observe(t.Context(), RestartNone)
	if snap.Switchover == nil {
		t.Fatal("the switchover record is not in the view")
	}
	h.agent.dyn.RetryTimeout = 200 * time.Millisecond
	h.agent.publishLimits()
	store.SetHang(true)
	done := make(chan struct{})
	go func() { defer close(done); h.agent.driveSwitchover(t.Context(), snap) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the switchover step still holds the loop 5s into an etcd outage (retry_timeout 200ms)")
	}
}

// TestSwitchoverTimeoutUsesThisHostsClock (#15 item 12): the record was
// created by a member whose clock runs an hour behind ours; the
// old leader waiting for its candidate to catch up must not call the
// switchover expired at once, and must expire it once its own clock has
// seen the timeout go by.
func TestSwitchoverTimeoutUsesThisHostsClock(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	ctx := t.Context()
	addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	rec := switchover.Record{ID: "s1", From: "pg1", To: "pg2", CreatedAt: time.Now().Add(-time.Hour), Timeout: "30s", Stage: switchover.StageCatchUp, State: switchover.StateRunning, FinalLSN: 0x9000000}
	putSwitchover(t, store, rec)
	state := func() switchover.State { return getSwitchover(t, store, "s1").State }
	h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone))
	if got := state(); got != switchover.StateRunning {
		t.Fatalf("switchover %s at once: its CreatedAt comes from another host's clock", got)
	}
	h.advance(31 * time.Second)
	h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone))
	if got := state(); got != switchover.StateFailed {
		t.Fatalf("switchover %s after 31 s on this host's clock with a 30 s timeout, want failed", got)
	}
}

// TestLeaderRemovesALockItsCloseLeftBehind: a switchover closed (record
// failed) whose lock delete did not get through — a slow etcd, found by
// the chaos suite — must not leave the lock for good.
func TestLeaderRemovesALockItsCloseLeftBehind(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	ctx := t.Context()
	putSwitchover(t, store, switchover.Record{ID: "s1", From: "pg1", To: "pg2", State: switchover.StateFailed, Stage: switchover.StagePreFlight})
	for i := 0; i < 3; i++ {
		h.advance(time.Second)
		h.tick()
	}
	if _, ok, _ := store.Get(ctx, store.Keys().SwitchoverLock()); ok {
		t.Fatal("the lock of a finished switchover is still there after 3 ticks of the leader")
	}
}
