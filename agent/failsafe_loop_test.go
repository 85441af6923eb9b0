package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres/pgtest"
)

// fakeFailsafe answers the leader's failsafe calls: every member accepts
// unless refuse names it.
type fakeFailsafe struct {
	mu     sync.Mutex
	refuse map[string]error
	calls  []map[string]string
}

func (f *fakeFailsafe) CallFailsafe(_ context.Context, urls map[string]string, _ []byte) map[string]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, maps.Clone(urls))
	out := map[string]error{}
	for name := range urls {
		out[name] = f.refuse[name]
	}
	return out
}

func (f *fakeFailsafe) callCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

func (f *fakeFailsafe) setRefuse(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = map[string]error{name: err}
}

// failsafeHarness is a leader (pg1) of pg1..pg3 with failsafe_mode on (and
// pause when asked), whose /failsafe key is written and topology frozen.
func failsafeHarness(t *testing.T, pause bool) (*loopHarness, *fakeFailsafe) {
	t.Helper()
	h := newLeaderHarness(t)
	return h, enableFailsafe(t, h, pause)
}

// enableFailsafe adds pg2 and pg3 to h's cluster and turns failsafe_mode
// on (and pause when asked); it returns the members' fake answers.
func enableFailsafe(t *testing.T, h *loopHarness, pause bool) *fakeFailsafe {
	t.Helper()
	calls := &fakeFailsafe{}
	h.agent.failsafe = calls
	h.agent.metrics = NewMetrics(prometheus.NewRegistry())
	for _, p := range []string{"pg2", "pg3"} {
		addPeer(t, h.dcs, p, dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://" + p + ":8008/patroni", Timeline: 1})
	}
	h.setDynamic(map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576,
		"failsafe_mode": true, "pause": pause})
	for i := 0; i < 3; i++ { // apply, write /failsafe, freeze it at a renewal
		h.advance(time.Second)
		h.tick()
	}
	v, _, _ := h.dcs.Get(t.Context(), h.dcs.Keys().Failsafe())
	if !strings.Contains(string(v.Data), `"pg2":"http://pg2:8008/patroni"`) || !strings.Contains(string(v.Data), `"pg1":`) {
		t.Fatalf("failsafe key = %s, want every member with its api_url", v.Data)
	}
	topo := failsafeTopology(h.dcs.View(), "pg1", true)
	if want := []string{"pg2", "pg3"}; !slices.Equal(slices.Sorted(maps.Keys(topo)), want) {
		t.Fatalf("topology = %v, want %v", topo, want)
	}
	return calls
}

// TestFailsafeRoundsPingTheWatchdog: with the watchdog armed, each round
// that moves the deadline pings it, so a leader bridging a long outage is
// never reset while every member answers; once a member stops answering,
// the pings stop and the leader fences before the device fires.
func TestFailsafeRoundsPingTheWatchdog(t *testing.T) {
	h, wd := newArmedLeader(t)
	calls := enableFailsafe(t, h, false)
	h.dcs.SetDown(true)
	cut := h.now
	check := func() {
		t.Helper()
		st := wd.Status()
		if fires := st.LastKeepalive.Add(st.Timeout); st.Armed && !h.now.Before(fires) && h.pg.Writable() {
			t.Fatalf("the watchdog fired %s into the outage with PostgreSQL writable", h.now.Sub(cut))
		}
	}
	for h.now.Sub(cut) < 30*time.Second {
		h.advance(500 * time.Millisecond)
		h.tick()
		check()
		if !h.pg.Writable() {
			t.Fatalf("fenced %s into the outage although every member answered", h.now.Sub(cut))
		}
	}
	if last := wd.Status().LastKeepalive; h.now.Sub(last) > 2*time.Second {
		t.Errorf("last watchdog ping %s ago: the rounds do not ping it", h.now.Sub(last))
	}
	calls.setRefuse("pg2", errors.New("timeout"))
	for i := 0; i < 40 && h.pg.Writable(); i++ {
		h.advance(250 * time.Millisecond)
		h.tick()
		check()
	}
	if h.pg.Writable() {
		t.Fatal("still writable 10 s after a member stopped answering")
	}
}

// TestFailsafeKeepsTheLeaderThroughAnEtcdOutage (#17): with failsafe_mode
// on and every member answering, a leader cut off from etcd for 60 s (10
// ttl) keeps PostgreSQL writable, and when etcd returns having expired its
// lease (and the key with it) takes the key again — only if absent — and
// goes on leading without stopping PostgreSQL. Paused (maintenance mode)
// it does the same: the rounds move the deadline, paused or not.
func TestFailsafeKeepsTheLeaderThroughAnEtcdOutage(t *testing.T) {
	for _, pause := range []bool{false, true} {
		name := "running"
		if pause {
			name = "paused"
		}
		t.Run(name, func(t *testing.T) {
			h, calls := failsafeHarness(t, pause)
			oldLease := h.dcs.Lease()
			h.events.take()
			h.dcs.SetDown(true)
			cut := h.now
			for h.now.Sub(cut) < 60*time.Second {
				h.advance(500 * time.Millisecond)
				h.tick()
				if !h.pg.Writable() || !h.agent.lease.leading {
					t.Fatalf("fenced %s into the outage although every member answered: %s", h.now.Sub(cut), h.agent.lastPlan.Reason)
				}
			}
			if calls.callCount() == 0 {
				t.Fatal("no failsafe call during the outage")
			}
			if s := h.pub.get(); !s.Status.FailsafeModeIsActive || s.Status.Regent.Failsafe == nil || s.Status.Regent.EtcdError != "unreachable" {
				t.Errorf("published status: failsafe_mode_is_active %v, failsafe %+v, etcd_error %q; want active, unreachable",
					s.Status.FailsafeModeIsActive, s.Status.Regent.Failsafe, s.Status.Regent.EtcdError)
			}
			if v := testutil.ToFloat64(h.agent.metrics.etcdError.WithLabelValues("unreachable")); v != 1 {
				t.Errorf(`regent_etcd_error{class="unreachable"} = %v during the outage, want 1`, v)
			}
			h.dcs.ExpireLease(oldLease) // etcd expired it during the outage
			h.dcs.SetDown(false)
			for i := 0; i < 3; i++ {
				h.advance(500 * time.Millisecond)
				h.tick()
			}
			v := h.dcs.View()
			if v.LeaderName() != "pg1" || v.Leader.Lease != h.dcs.Lease() || h.dcs.Lease() == oldLease {
				t.Fatalf("leader key after etcd returned = %+v (our lease %x, old %x): want pg1 on a new lease", v.Leader, h.dcs.Lease(), oldLease)
			}
			if !h.agent.lease.leading || h.agent.lease.inFailsafe() || !h.pg.Writable() {
				t.Fatalf("after etcd returned: leading %v failsafe %v writable %v", h.agent.lease.leading, h.agent.lease.inFailsafe(), h.pg.Writable())
			}
			for _, e := range h.events.take() {
				if strings.HasPrefix(e, "pg stop") || strings.HasPrefix(e, "pg start") {
					t.Errorf("PostgreSQL was restarted: %s", e)
				}
			}
			if v := testutil.ToFloat64(h.agent.metrics.etcdError.WithLabelValues("unreachable")); v != 0 {
				t.Errorf(`regent_etcd_error{class="unreachable"} = %v after etcd returned, want 0`, v)
			}
			if s := h.pub.get(); s.Status.FailsafeModeIsActive || s.Status.Regent.EtcdError != "" {
				t.Errorf("after etcd returned: failsafe_mode_is_active %v etcd_error %q", s.Status.FailsafeModeIsActive, s.Status.Regent.EtcdError)
			}
		})
	}
}

// TestFailsafeFencesWhenAMemberDoesNotAnswer: one member of the frozen
// topology refuses (or cannot be reached): the leader fences by the
// deadline of its last success, as without failsafe.
func TestFailsafeFencesWhenAMemberDoesNotAnswer(t *testing.T) {
	h, calls := failsafeHarness(t, false)
	h.dcs.SetDown(true)
	cut := h.now
	for i := 0; i < 6; i++ { // some successful rounds first
		h.advance(500 * time.Millisecond)
		h.tick()
	}
	calls.setRefuse("pg3", errors.New("connection refused"))
	lastRound := h.now
	deadline := h.agent.lease.deadline()
	if want := lastRound.Add(7 * time.Second); deadline.After(want) {
		t.Fatalf("deadline %v is past the last round + ttl − margin %v", deadline.Sub(cut), want.Sub(cut))
	}
	step := 250 * time.Millisecond
	for h.pg.Writable() {
		h.advance(step)
		h.tick()
		if h.pg.Writable() && !h.now.Before(deadline) {
			t.Fatalf("still writable at %s, past the deadline %s of the last answered round", h.now.Sub(cut), deadline.Sub(cut))
		}
	}
	if fenced := h.now.Sub(lastRound); fenced > 7*time.Second+step {
		t.Errorf("fenced %s after the last answered round, want by ttl − safety_margin = 7s", fenced)
	}
}

// TestFailsafeNeverBridgesALostKey: etcd answers that another member holds
// the key (a compare failure, ErrNotLeader): never failsafe, whatever the
// members would say; and a leader whose /failsafe key does not name it
// has no topology, so it fences at its deadline.
func TestFailsafeNeverBridgesALostKey(t *testing.T) {
	t.Run("key held by another member", func(t *testing.T) {
		h, calls := failsafeHarness(t, false)
		other := addPeer(t, h.dcs, "pg4", dcs.Member{APIURL: "http://pg4:8008/patroni"})
		h.dcs.ExpireLease(h.dcs.Lease())
		takeLeader(t, other, "pg4")
		before := calls.callCount()
		h.advance(time.Second)
		h.tick()
		if h.agent.lease.leading || h.pg.Writable() || calls.callCount() != before {
			t.Errorf("leading %v writable %v failsafe calls %d: a lost key must never be bridged", h.agent.lease.leading, h.pg.Writable(), calls.callCount()-before)
		}
	})
	t.Run("no failsafe key naming the leader", func(t *testing.T) {
		h, calls := failsafeHarness(t, false)
		if err := h.dcs.Put(t.Context(), h.dcs.Keys().Failsafe(), []byte(`{"pg2":"http://pg2:8008/patroni"}`)); err != nil {
			t.Fatal(err)
		}
		h.dcs.SetDown(true)
		cut := h.now
		for h.pg.Writable() && h.now.Sub(cut) < 10*time.Second {
			h.advance(250 * time.Millisecond)
			h.tick()
		}
		if h.pg.Writable() || calls.callCount() != 0 {
			t.Errorf("writable %v after %s, %d failsafe calls: without a topology the leader must fence", h.pg.Writable(), h.now.Sub(cut), calls.callCount())
		}
	})
}

// TestFailsafeLeaderLosesToAnotherKeyHolderWhenEtcdReturns: if another
// member nonetheless holds the key when etcd returns, the create-if-absent
// fails and the leader demotes: it never overwrites a key.
func TestFailsafeLeaderLosesToAnotherKeyHolderWhenEtcdReturns(t *testing.T) {
	h, _ := failsafeHarness(t, false)
	oldLease := h.dcs.Lease()
	other := addPeer(t, h.dcs, "pg4", dcs.Member{APIURL: "http://pg4:8008/patroni"})
	h.dcs.SetDown(true)
	for i := 0; i < 4; i++ {
		h.advance(500 * time.Millisecond)
		h.tick()
	}
	h.dcs.ExpireLease(oldLease)
	takeLeader(t, other, "pg4")
	h.dcs.SetDown(false)
	for i := 0; i < 3; i++ {
		h.advance(500 * time.Millisecond)
		h.tick()
	}
	if h.agent.lease.leading || h.pg.Writable() || h.dcs.View().LeaderName() != "pg4" {
		t.Errorf("leading %v writable %v leader key %q: want demoted under pg4's key", h.agent.lease.leading, h.pg.Writable(), h.dcs.View().LeaderName())
	}
}

// TestAcceptFailsafe: a member's answers to POST /failsafe (Patroni's
// codes and texts) and the hold it records.
func TestAcceptFailsafe(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.New(7000000000000000001))
	ctx := t.Context()
	if code, _ := h.agent.AcceptFailsafe(ctx, []byte(`{"name":"pg9"}`)); code != http.StatusBadGateway {
		t.Errorf("failsafe_mode off: %d, want 502", code)
	}
	h.agent.dyn.FailsafeMode = true
	h.agent.publishLimits()
	for body, want := range map[string]int{
		`{"name":"pg1"}`: http.StatusBadRequest, // names this member
		`{}`:             http.StatusBadRequest,
		`not json`:       http.StatusBadRequest,
	} {
		if code, text := h.agent.AcceptFailsafe(ctx, []byte(body)); code != want {
			t.Errorf("%s: %d %q, want %d", body, code, text, want)
		}
	}
	if h.agent.failsafeHold().Leader != "" {
		t.Fatal("a refused call recorded a hold")
	}
	h.agent.fs.primary.Store(true)
	if code, text := h.agent.AcceptFailsafe(ctx, []byte(`{"name":"pg9"}`)); code != http.StatusInternalServerError || text != "Running as a leader" {
		t.Errorf("as a primary: %d %q, want 500 Running as a leader", code, text)
	}
	h.agent.fs.primary.Store(false)
	if code, text := h.agent.AcceptFailsafe(ctx, []byte(`{"name":"pg9","api_url":"http://x/patroni","ttl":30}`)); code != http.StatusOK || text != "Accepted" {
		t.Fatalf("accepted call: %d %q", code, text)
	}
	hold := h.agent.failsafeHold()
	if hold.Leader != "pg9" || hold.TTL != 30*time.Second || !hold.At.Equal(h.now) || !hold.Active(h.now.Add(29*time.Second)) || hold.Active(h.now.Add(30*time.Second)) {
		t.Errorf("hold = %+v, want pg9 for the caller's longer ttl 30s from now", hold)
	}
	h.advance(time.Second)
	h.agent.AcceptFailsafe(ctx, []byte(`{"name":"pg9"}`))
	if again := h.agent.failsafeHold(); !again.Since.Equal(hold.Since) || again.TTL != 10*time.Second {
		t.Errorf("a repeated call = %+v: want the episode's start kept, ttl back to this member's 10s", again)
	}
}

// TestFailsafeHoldStopsARace: a replica holding a failsafe call sees the
// leader key expire in etcd and still does not race; once the hold is a
// ttl old it races as usual.
func TestFailsafeHoldStopsARace(t *testing.T) {
	store := newStore()
	leader := addPeer(t, store, "pg9", dcs.Member{APIURL: "http://pg9:8008/patroni"})
	takeLeader(t, leader, "pg9")
	h := newReplicaHarness(t, store)
	h.agent.dyn.FailsafeMode = true
	h.agent.publishLimits()
	if code, _ := h.agent.AcceptFailsafe(t.Context(), []byte(`{"name":"pg9"}`)); code != http.StatusOK {
		t.Fatal("call not accepted")
	}
	store.ExpireLease(leader.Lease())
	h.tick()
	if p := h.agent.lastPlan; p.Action.Kind != ActWait || !strings.Contains(p.Reason, "failsafe: leader pg9") {
		t.Fatalf("plan with a fresh hold = %v (%s), want waiting on the hold", p.Action.Kind, p.Reason)
	}
	if m := store.View().Members["pg1"]; m.Failsafe == nil || m.Failsafe.Leader != "pg9" {
		t.Errorf("member key failsafe = %+v, want the hold of pg9 published", m.Failsafe)
	}
	h.advance(10 * time.Second)
	h.tick()
	if p := h.agent.lastPlan; p.Action.Kind == ActWait && strings.Contains(p.Reason, "failsafe") {
		t.Errorf("still held a ttl after the call: %s", p.Reason)
	}
}

// newReplicaHarness: pg1 runs as a streaming replica in store's cluster.
func newReplicaHarness(t *testing.T, store *dcstest.Fake) *loopHarness {
	t.Helper()
	pg := pgtest.New(7000000000000000001)
	pg.SetReplica(0x5000000)
	h := newLoopHarness(t, store, pg)
	h.tick() // a lease, the member key
	return h
}

// TestFailsafeBridgesNoLeader (#17 must-show 5): etcd answering
// "etcdserver: no leader" (quorum lost, members alive) is an outage, not a
// lost key: with failsafe_mode on the leader stays primary through it.
func TestFailsafeBridgesNoLeader(t *testing.T) {
	h, calls := failsafeHarness(t, false)
	noLeader := fmt.Errorf("dcs: keepalive lease 1: %w", rpctypes.ErrNoLeader)
	h.dcs.Intercept(func(op, _ string) error { return noLeader })
	cut := h.now
	for h.now.Sub(cut) < 30*time.Second {
		h.advance(500 * time.Millisecond)
		h.tick()
		if !h.pg.Writable() {
			t.Fatalf("fenced %s into a no-leader etcd: %s", h.now.Sub(cut), h.agent.lastPlan.Reason)
		}
	}
	if calls.callCount() == 0 || h.pub.get().Status.Regent.EtcdError != "no_leader" {
		t.Errorf("failsafe calls %d, etcd_error %q; want rounds and no_leader", calls.callCount(), h.pub.get().Status.Regent.EtcdError)
	}
}

// TestPausedLeaderFencesInAnEtcdOutageWithoutFailsafe: maintenance mode
// does not stop the deadline: without failsafe_mode, a paused leader that
// cannot reach etcd fences at ttl − safety_margin after its last renewal,
// as a running one does (docs/architecture.md "Maintenance mode").
func TestPausedLeaderFencesInAnEtcdOutageWithoutFailsafe(t *testing.T) {
	h := newLeaderHarness(t)
	h.setDynamic(map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "maximum_lag_on_failover": 1048576, "pause": true})
	h.advance(time.Second)
	h.tick()
	if !h.agent.dyn.Pause || !h.agent.lease.leading {
		t.Fatalf("pause %v leading %v", h.agent.dyn.Pause, h.agent.lease.leading)
	}
	lastAck := h.agent.lease.lastAck
	h.dcs.SetDown(true)
	step := 250 * time.Millisecond
	for h.pg.Writable() {
		h.advance(step)
		h.tick()
		if h.pg.Writable() && h.now.Sub(lastAck) >= 7*time.Second {
			t.Fatalf("paused leader still writable %s after its last renewal (ttl − safety_margin = 7s)", h.now.Sub(lastAck))
		}
	}
	if fenced := h.now.Sub(lastAck); fenced < 7*time.Second {
		t.Errorf("paused leader fenced %s after its last renewal, before its deadline", fenced)
	}
}
