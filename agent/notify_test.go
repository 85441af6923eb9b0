package agent

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres/pgtest"
)

// fakeNotifier records every notification (one string per datagram).
type fakeNotifier struct {
	sent     opLog
	mu       sync.Mutex // guards fail
	fail     error
	watchdog time.Duration
}

func (f *fakeNotifier) Send(lines ...string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	f.sent.add(strings.Join(lines, "\n"))
	return nil
}

func (f *fakeNotifier) WatchdogInterval() time.Duration { return f.watchdog }

func TestReadyOnlyOnceEtcdAndPostgresAreObserved(t *testing.T) {
	store := newStore()
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	n := &fakeNotifier{watchdog: 20 * time.Second}
	h.agent.notifier = n

	store.SetDown(true)
	h.tick()
	h.advance(time.Second)
	h.tick()
	got := n.sent.take()
	if len(got) != 2 || strings.Contains(strings.Join(got, "|"), "READY=1") {
		t.Fatalf("with etcd down: sent %q, want two datagrams without READY=1", got)
	}
	if want := "STATUS=waiting for etcd; uninitialized, postgres stopped\nWATCHDOG=1"; got[0] != want {
		t.Errorf("first tick sent %q, want %q", got[0], want)
	}
	if got[1] != "WATCHDOG=1" {
		t.Errorf("second tick (nothing changed) sent %q, want only the keep-alive", got[1])
	}

	store.SetDown(false)
	for i := 0; i < 3 && !h.agent.lease.leading; i++ {
		h.advance(time.Second)
		h.tick()
	}
	got = n.sent.take()
	if len(got) == 0 || !strings.HasPrefix(got[0], "READY=1\nSTATUS=") {
		t.Fatalf("after etcd came back: sent %q, want READY=1 with a status first", got)
	}
	if c := strings.Count(strings.Join(got, "|"), "READY=1"); c != 1 {
		t.Errorf("READY=1 sent %d times, want once: %q", c, got)
	}
	if last := got[len(got)-1]; !strings.Contains(last, "STATUS=primary (leader), postgres running") {
		t.Errorf("after bootstrap the last notification is %q, want the leader's status", last)
	}
}

func TestNotificationThatFailsIsRetried(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	n := &fakeNotifier{fail: errors.New("socket gone")}
	h.agent.notifier = n
	h.tick()
	n.mu.Lock()
	n.fail = nil
	n.mu.Unlock()
	h.advance(time.Second)
	h.tick()
	got := n.sent.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], "READY=1\nSTATUS=") {
		t.Fatalf("after a failed send: sent %q, want READY=1 and the status again", got)
	}
	if strings.Contains(got[0], "WATCHDOG=1") {
		t.Errorf("keep-alive sent without a watchdog: %q", got[0])
	}
}

func TestKeepaliveEveryHalfTheWatchdog(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	if got := h.agent.keepaliveEvery(); got != 0 {
		t.Errorf("keepaliveEvery without a notifier = %s, want 0", got)
	}
	h.agent.notifier = &fakeNotifier{}
	if got := h.agent.keepaliveEvery(); got != 0 {
		t.Errorf("keepaliveEvery without WatchdogSec = %s, want 0", got)
	}
	h.agent.notifier = &fakeNotifier{watchdog: 30 * time.Second}
	if got := h.agent.keepaliveEvery(); got != 15*time.Second {
		t.Errorf("keepaliveEvery with WatchdogSec=30s = %s, want 15s", got)
	}
}

func TestServiceStatus(t *testing.T) {
	fresh := Snapshot{View: &dcs.Cluster{}, ViewFresh: true}
	for _, tc := range []struct {
		name    string
		snap    Snapshot
		role    Role
		pg      PGRunState
		leading bool
		want    string
		ready   bool
	}{
		{"no view yet", Snapshot{}, RoleUninitialized, PGStopped, false, "waiting for etcd; uninitialized, postgres stopped", false},
		{"stale view", Snapshot{View: fresh.View}, RoleReplica, PGRunning, false, "waiting for etcd; replica, postgres running", false},
		{"postgres hung", Snapshot{View: fresh.View, ViewFresh: true, PG: PGState{Unresponsive: true}}, RolePrimary, PGRunning, true, "postgres does not answer; primary", false},
		{"leader", fresh, RolePrimary, PGRunning, true, "primary (leader), postgres running", true},
		{"replica", fresh, RoleReplica, PGRunning, false, "replica, postgres running", true},
		{"stopped replica", fresh, RoleReplica, PGStopped, false, "replica, postgres stopped", true},
	} {
		if got := serviceStatus(tc.snap, tc.role, tc.pg, tc.leading); got != tc.want {
			t.Errorf("%s: serviceStatus = %q, want %q", tc.name, got, tc.want)
		}
		if got := observedAll(tc.snap); got != tc.ready {
			t.Errorf("%s: observedAll = %v, want %v", tc.name, got, tc.ready)
		}
	}
}

// TestWaitingLoopSendsKeepalives: between ticks the loop itself sends
// WATCHDOG=1 every half WatchdogSec (a tick alone, every loop_wait, may
// come too rarely for a short WatchdogSec).
func TestWaitingLoopSendsKeepalives(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	n := &fakeNotifier{watchdog: 40 * time.Millisecond}
	h.agent.notifier = n
	h.agent.nextTick = h.now.Add(time.Second) // one real second of waiting
	h.agent.waitNextTick(t.Context())
	got := n.sent.take()
	if len(got) < 5 {
		t.Fatalf("one second of waiting with WatchdogSec=40ms sent %d keep-alives, want about 50", len(got))
	}
	for _, m := range got {
		if m != "WATCHDOG=1" {
			t.Errorf("between ticks sent %q, want only WATCHDOG=1", m)
		}
	}
}
