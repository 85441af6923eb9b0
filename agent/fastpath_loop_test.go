package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

// hookDouble is fence.command: each run takes the next exit code (the
// last repeats) and is counted.
type hookDouble struct {
	mu    sync.Mutex
	exits []int
	runs  []string
}

func (h *hookDouble) Run(_ context.Context, target, _, _ string) (fencing.HookResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	code := h.exits[min(len(h.runs), len(h.exits)-1)]
	h.runs = append(h.runs, target)
	if code != 0 {
		return fencing.HookResult{Ran: true, ExitCode: code}, fmt.Errorf("%w: exit status %d", fencing.ErrFenceFailed, code)
	}
	return fencing.HookResult{Ran: true}, nil
}

func (h *hookDouble) count() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.runs) }

// probeDouble is the leader probe: what it answers is set by the test.
type probeDouble struct {
	mu sync.Mutex
	p  LeaderProbe
}

func (d *probeDouble) ProbeLeader(context.Context, dcs.Member) LeaderProbe {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.p
}

func (d *probeDouble) set(p LeaderProbe) { d.mu.Lock(); d.p = p; d.mu.Unlock() }

// fixedPeers answers for the peers it knows, as reachable replicas.
type fixedPeers []PeerStatus

func (f fixedPeers) Fetch(_ context.Context, ms map[string]dcs.Member) []PeerStatus {
	var out []PeerStatus
	for _, p := range f {
		if _, ok := ms[p.Name]; ok {
			out = append(out, p)
		}
	}
	return out
}

// fastCluster: pg1 leads (its harness is no longer ticked once it "dies"),
// pg2 is the candidate with fast_failover on, pg3 a less advanced replica
// whose suspicion the test writes.
type fastCluster struct {
	t      *testing.T
	leader *loopHarness
	cand   *loopHarness
	p3     *dcstest.Fake
	via    *dcstest.Fake // pg2's own client: its operations are recorded
	hook   *hookDouble
	probe  *probeDouble
	ops    opLog // pg2's leader-key operations, in order
}

func newFastCluster(t *testing.T, exits ...int) *fastCluster {
	t.Helper()
	c := &fastCluster{t: t, leader: newLeaderHarness(t), hook: &hookDouble{exits: exits},
		probe: &probeDouble{p: LeaderProbe{APIReachable: true, PGReachable: true}}}
	store := c.leader.dcs
	c.via = store.Peer()
	pg2 := pgtest.New(7000000000000000001)
	pg2.SetReplica(0x6000000)
	c.cand = newNamedHarness(t, "pg2", store, pg2, c.via)
	c.via.Intercept(func(op, key string) error {
		if key == store.Keys().Leader() && op != "CheckLeader" {
			c.ops.add(op)
		}
		return nil
	})
	a := c.cand.agent
	a.cfg.Fence = fencing.HookConfig{Command: []string{"/bin/fence"}, Timeout: 5 * time.Second, FastFailover: true, SuspectAfter: time.Second}
	a.stonith, a.prober = c.hook, c.probe
	a.peers = fixedPeers{peer("pg3", 0x5000000)}
	c.p3 = addPeer(t, store, "pg3", dcs.Member{ConnURL: "postgres://127.0.0.1:5434/postgres", APIURL: "http://127.0.0.1:8010/patroni", State: "running"})
	c.cand.tick()
	c.cand.tick()
	if a.lease.leading || store.View().LeaderName() != "pg1" || c.cand.agent.lastPlan.Action.Kind != ActFollow {
		t.Fatalf("setup: pg2 leading %t, leader %q, plan %s; want pg2 following pg1", a.lease.leading, store.View().LeaderName(), a.lastPlan.Action.Kind)
	}
	return c
}

// leaderRev is the leader key's ModRevision now.
func (c *fastCluster) leaderRev() int64 { return c.leader.dcs.View().Leader.ModRevision }

// pg3Suspects writes pg3's suspicion of the current leader key.
func (c *fastCluster) pg3Suspects() {
	c.t.Helper()
	data, _ := json.Marshal(dcs.Suspicion{Leader: "pg1", LeaderRevision: c.leaderRev(), Since: time.Now().UTC().Format(time.RFC3339)})
	if err := c.p3.PutOnLease(c.t.Context(), c.p3.Keys().Suspect("pg3"), data); err != nil {
		c.t.Fatal(err)
	}
}

// leaderDies: pg1's REST API and PostgreSQL stop answering (its harness
// is not ticked again; its lease stays alive until the test expires it).
func (c *fastCluster) leaderDies() {
	c.probe.set(LeaderProbe{})
	c.pg3Suspects()
}

// agree runs pg2's ticks until the majority's suspicion is old enough and
// pg2 starts the hook beside the loop.
func (c *fastCluster) agree() {
	c.t.Helper()
	c.cand.tick() // suspects; pg3's key seen
	if got := c.cand.dcs.View().Suspects()["pg2"]; got.Leader != "pg1" || got.LeaderRevision != c.leaderRev() {
		c.t.Fatalf("pg2's suspicion key = %+v; want pg1 at revision %d", got, c.leaderRev())
	}
	if c.cand.agent.fast.job != nil {
		c.t.Fatal("the hook started before the suspicion lasted suspect_after")
	}
	c.cand.advance(time.Second)
	c.cand.tick()
	if c.cand.agent.fast.job == nil {
		c.t.Fatalf("no fence beside the loop after suspect_after; plan %s: %s", c.cand.agent.lastPlan.Action.Kind, c.cand.agent.lastPlan.Reason)
	}
}

// awaitHook waits for the hook beside the loop to end and hands its result
// back for the next tick to collect.
func (c *fastCluster) awaitHook() {
	c.t.Helper()
	j := c.cand.agent.fast.job
	select {
	case err := <-j.done:
		j.done <- err
	case <-time.After(5 * time.Second):
		c.t.Fatal("the fence beside the loop did not end")
	}
}

// decisions returns the records pg2 flushed to etcd, of kind.
func decisionsOf(t *testing.T, v *dcs.Cluster, kind string) []restapi.Decision {
	t.Helper()
	var out []restapi.Decision
	for name, raw := range v.Extra {
		if !strings.HasPrefix(name, "decisions/") {
			continue
		}
		var d restapi.Decision
		if err := json.Unmarshal(raw.Data, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

// TestFastPathFencedLeaderIsReplacedAtOnce: with the leader gone and pg3
// agreeing, pg2 runs the hook beside the loop; on exit 0 it deletes the
// leader key at the suspected revision, then takes the lease and promotes
// — pg1's lease still alive, long before it could expire. The record
// carries the phases, suspect_agree and fence included.
func TestFastPathFencedLeaderIsReplacedAtOnce(t *testing.T) {
	c := newFastCluster(t, 0)
	store, a := c.leader.dcs, c.cand.agent
	oldLease := store.View().Leader.Lease
	c.leaderDies()
	c.agree()
	c.ops.take()
	c.awaitHook()
	c.cand.tick()
	if got := c.hook.runs; !slices.Equal(got, []string{"pg1"}) {
		t.Errorf("hook runs = %v, want one against pg1", got)
	}
	if ops := c.ops.take(); !slices.Equal(ops, []string{"Delete", "AcquireLeader"}) {
		t.Errorf("pg2's leader-key operations = %v, want Delete (by revision) then AcquireLeader", ops)
	}
	if !a.lease.leading || store.View().LeaderName() != "pg2" || !c.cand.pg.Writable() {
		t.Fatalf("pg2 leading %t, leader %q, writable %t; want pg2 promoted", a.lease.leading, store.View().LeaderName(), c.cand.pg.Writable())
	}
	if !store.LeaseAlive(oldLease) {
		t.Fatal("pg1's lease expired: the test no longer shows the fast path beating it")
	}
	c.cand.tick() // flushes the record
	recs := decisionsOf(t, store.View(), "failover")
	if len(recs) != 1 || recs[0].Stonith == nil || !recs[0].Stonith.Ran || recs[0].Timings == nil {
		t.Fatalf("failover records = %+v, want one with the fence run and timings", recs)
	}
	var phases []string
	for _, p := range recs[0].Timings.Phases {
		phases = append(phases, p.Phase)
	}
	if want := []string{PhaseDetect, PhaseSuspect, PhaseFence, PhaseElect, PhasePromote, PhaseFirstWrite}; !slices.Equal(phases, want) {
		t.Errorf("phases = %v, want %v", phases, want)
	}
	if _, ok := store.View().Suspects()["pg2"]; ok {
		t.Error("pg2's suspicion key outlived its suspicion (it leads now)")
	}
}

// TestFastPathFailedHookWaitsForTheLease: exit 1 falls back to the lease:
// no promotion while pg1's lease lives (however many ticks), the reason in
// the decision record; the lease expiry then elects pg2 as before (the
// normal path runs the hook again, which now succeeds).
func TestFastPathFailedHookWaitsForTheLease(t *testing.T) {
	c := newFastCluster(t, 1, 0)
	store, a := c.leader.dcs, c.cand.agent
	c.leaderDies()
	c.agree()
	c.awaitHook()
	for range 8 {
		c.cand.tick()
		c.cand.advance(time.Second)
	}
	if a.lease.leading || store.View().LeaderName() != "pg1" || c.cand.pg.Writable() || c.hook.count() != 1 {
		t.Fatalf("pg2 leading %t, leader %q, writable %t, hook runs %d; want pg1's key kept, no promotion, one run",
			a.lease.leading, store.View().LeaderName(), c.cand.pg.Writable(), c.hook.count())
	}
	if ops := c.ops.take(); slices.Contains(ops, "Delete") || slices.Contains(ops, "AcquireLeader") {
		t.Errorf("pg2 touched the leader key after a failed hook: %v", ops)
	}
	recs := decisionsOf(t, store.View(), "fast_failover_fallback")
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, "exit status 1") || !strings.Contains(recs[0].Reason, "falling back to the lease expiry") {
		t.Fatalf("fallback records = %+v, want one naming the hook's failure", recs)
	}
	if !strings.Contains(a.lastPlan.Reason, "waiting for the lease to expire") {
		t.Errorf("plan while waiting: %q", a.lastPlan.Reason)
	}
	store.ExpireLease(store.View().Leader.Lease)
	for i := 0; i < 3 && !a.lease.leading; i++ {
		c.cand.tick()
	}
	if !a.lease.leading || store.View().LeaderName() != "pg2" {
		t.Fatalf("after the lease expired: pg2 leading %t, leader %q; want the lease path to elect pg2", a.lease.leading, store.View().LeaderName())
	}
}

// TestFastPathCompareFailureAborts: the leader key changed between the
// suspicion and the delete (etcd's compare fails): pg2 does not race, the
// abort is recorded, and it follows the key's holder.
func TestFastPathCompareFailureAborts(t *testing.T) {
	c := newFastCluster(t, 0)
	store, a := c.leader.dcs, c.cand.agent
	c.leaderDies()
	c.agree()
	c.awaitHook()
	c.via.Intercept(func(op, key string) error {
		if op == "Delete" && key == store.Keys().Leader() {
			return fmt.Errorf("%w: %s changed since the suspected revision", dcs.ErrConflict, key)
		}
		return nil
	})
	c.cand.tick()
	c.cand.tick()
	if a.lease.leading || store.View().LeaderName() != "pg1" || c.cand.pg.Writable() {
		t.Fatalf("pg2 leading %t, leader %q, writable %t; want the fast path aborted", a.lease.leading, store.View().LeaderName(), c.cand.pg.Writable())
	}
	recs := decisionsOf(t, store.View(), "fast_failover_aborted")
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, "changed since revision") {
		t.Fatalf("abort records = %+v, want one", recs)
	}
	if a.lastPlan.Action.Kind != ActFollow || !strings.Contains(a.lastPlan.Reason, "aborted") {
		t.Errorf("plan after the abort: %s %q; want follow pg1", a.lastPlan.Action.Kind, a.lastPlan.Reason)
	}
}

// TestFastPathSuspicionEndsWithTheLeaderAnswering: a leader that answers
// again ends the suspicion and its key; a lone suspicion never fences.
func TestFastPathSuspicionEndsWithTheLeaderAnswering(t *testing.T) {
	c := newFastCluster(t, 0)
	store := c.leader.dcs
	c.probe.set(LeaderProbe{})
	c.cand.tick()
	c.cand.advance(2 * time.Second)
	c.cand.tick() // pg3 does not agree: no majority of 2
	if c.cand.agent.fast.job != nil || c.hook.count() != 0 {
		t.Fatal("a lone suspicion ran the hook")
	}
	if _, ok := store.View().Suspects()["pg2"]; !ok {
		t.Fatal("pg2's suspicion is not published")
	}
	c.probe.set(LeaderProbe{APIReachable: true})
	c.cand.tick()
	if _, ok := store.View().Suspects()["pg2"]; ok {
		t.Error("pg2's suspicion key stayed after the leader answered")
	}
}

// TestFastPathWithoutAView: before the first cluster view (and with no
// leader key) the fast path has nothing to look at and does nothing.
func TestFastPathWithoutAView(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	h.agent.cfg.Fence = fencing.HookConfig{Command: []string{"/bin/fence"}, FastFailover: true, SuspectAfter: time.Second}
	for _, v := range []*dcs.Cluster{nil, {Members: map[string]dcs.Member{}}} {
		s := Snapshot{View: v, PG: replica(0x5000000)}
		h.agent.observeFastPath(t.Context(), &s)
		if s.FastPath != nil {
			t.Errorf("view %v: fast path view %+v, want none", v, s.FastPath)
		}
	}
}

// TestFastWake: a pending suspicion wakes the loop when the youngest
// suspicion the last tick counted as too young comes of age — at once if
// that passed during the tick — not at the next loop_wait; nothing pending
// (no suspicion, or a verdict already) wakes nothing.
func TestFastWake(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	a := h.agent
	a.cfg.Fence.SuspectAfter = time.Second
	if w := a.fastWake(); !w.IsZero() {
		t.Errorf("no suspicion: wake %s, want none", w)
	}
	a.fast.observedAt = t0
	a.fast.suspect = suspicion{Leader: "pg1", Rev: 7, Since: t0.Add(-300 * time.Millisecond)}
	a.fast.seen = map[string]time.Time{"pg3": t0.Add(-800 * time.Millisecond), "pg4": t0.Add(-2 * time.Second)}
	if w, want := a.fastWake(), t0.Add(200*time.Millisecond); !w.Equal(want) {
		t.Errorf("wake %s, want %s (pg3's suspicion comes of age first)", w, want)
	}
	a.fast.seen["pg3"] = t0.Add(-1000 * time.Millisecond) // counted by the last tick
	if w, want := a.fastWake(), t0.Add(700*time.Millisecond); !w.Equal(want) {
		t.Errorf("wake %s, want %s (its own suspicion next)", w, want)
	}
	a.fast.outcome = &fenceOutcome{Verdict: VerdictFallback}
	if w := a.fastWake(); !w.IsZero() {
		t.Errorf("verdict reached: wake %s, want none", w)
	}
}

// TestFastFailoverWakesOnSuspicionsOnly: a fast_failover replica wakes at
// once for a peer's suspicion, but not for other keys: it once woke for
// every write under the prefix, its own decision records included, and
// with a failing fence.command ran the hook about 25 times a second
// (race → fence_failed record → wake → race …; the chaos suite's
// kill-node-fence-fails rounds).
func TestFastFailoverWakesOnSuspicionsOnly(t *testing.T) {
	c := newFastCluster(t, 0)
	a := c.cand.agent
	a.dyn.LoopWait = time.Hour
	a.nextTick = c.cand.now.Add(time.Hour)
	drain := func() {
		for len(a.dcs.Notify()) > 0 {
			<-a.dcs.Notify()
		}
		a.dcs.TakeChanges()
	}
	drain()
	// waited runs one waitNextTick, ended by write or by a bound: whether
	// the write woke it.
	waited := func(write func()) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() { a.waitNextTick(ctx); close(done) }()
		write()
		<-done
		return ctx.Err() == nil
	}
	if waited(func() {
		if err := c.p3.Put(t.Context(), c.p3.Keys().Decision("x1"), []byte(`{"kind":"fence_failed"}`)); err != nil {
			t.Error(err)
		}
	}) {
		t.Fatal("a decision record woke the fast_failover replica's loop")
	}
	drain()
	if !waited(c.pg3Suspects) {
		t.Fatal("a peer's suspicion did not wake the fast_failover replica's loop")
	}
}
