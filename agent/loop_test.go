package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

// loopHarness runs one agent's ticks by hand against fakes, with a clock
// the test advances: the loop tests of STYLE habit 15(b).
type loopHarness struct {
	t     *testing.T
	now   time.Time
	dcs   *dcstest.Fake
	pg    *pgtest.Fake
	agent *Agent
	pub   *lastSnapshot

	// manualJobs: the test itself decides when work beside the loop ends.
	manualJobs bool

	mu     sync.Mutex // guards now
	events opLog      // DCS and PostgreSQL operations, in order
}

// opLog records operations in order; the loop, the work beside it and
// the test read and write it from their goroutines.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(op string) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// take returns what was recorded since the last take.
func (l *opLog) take() (ops []string) {
	l.mu.Lock()
	ops, l.ops = l.ops, nil
	l.mu.Unlock()
	return ops
}

type lastSnapshot struct {
	mu   sync.Mutex
	snap *restapi.Snapshot
}

func (l *lastSnapshot) Publish(s *restapi.Snapshot) { l.mu.Lock(); l.snap = s; l.mu.Unlock() }
func (l *lastSnapshot) get() *restapi.Snapshot      { l.mu.Lock(); defer l.mu.Unlock(); return l.snap }

type noPeers struct{}

func (noPeers) Fetch(context.Context, map[string]dcs.Member) []PeerStatus { return nil }

func newLoopHarness(t *testing.T, store *dcstest.Fake, pg *pgtest.Fake) *loopHarness {
	t.Helper()
	return newLoopHarnessVia(t, store, pg, store)
}

// harnessConfig is the agents' regent.yml: only the timings matter, the
// fakes ignore the addresses (bin_dir must exist for validation).
const harnessConfig = `
name: pg1
scope: demo
etcd: {endpoints: [http://127.0.0.1:2379]}
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
postgres:
  data_dir: /var/lib/regent/pg1
  bin_dir: /usr/lib/postgresql/15/bin
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  superuser: {username: postgres, password: x}
  replication: {username: replicator, password: y}
watchdog: {mode: off}
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3, maximum_lag_on_failover: 1048576}
`

// newLoopHarnessVia gives the agent via as its DCS (a double wrapping
// store); the harness still inspects store.
func newLoopHarnessVia(t *testing.T, store *dcstest.Fake, pg *pgtest.Fake, via DCS) *loopHarness {
	t.Helper()
	return newNamedHarness(t, "pg1", store, pg, via)
}

// newNamedHarness: the agent is member name (a second agent on the same
// store takes store.Peer() as via).
func newNamedHarness(t *testing.T, name string, store *dcstest.Fake, pg *pgtest.Fake, via DCS) *loopHarness {
	t.Helper()
	cfg, err := config.Parse([]byte(strings.ReplaceAll(harnessConfig, "pg1", name)))
	if err != nil {
		t.Fatal(err)
	}
	h := &loopHarness{t: t, now: time.Now(), dcs: store, pg: pg, pub: &lastSnapshot{}}
	store.Intercept(func(op, key string) error { h.events.add("dcs " + op); return nil })
	pg.OnOp = func(op string) { h.events.add("pg " + op) }
	h.agent, err = New(Options{Config: cfg, DCS: via, Postgres: pg, Publisher: h.pub, Peers: noPeers{},
		Clock: func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// awaitJob waits for work running beside the loop (a clone, a rewind) to
// end and hands its result back for the next tick to collect: the real
// loop is woken by that event, and the fakes' work ends at once.
func (h *loopHarness) awaitJob() {
	h.t.Helper()
	j := h.agent.job
	if j == nil || h.manualJobs {
		return
	}
	select {
	case err := <-j.done:
		j.done <- err
	case <-time.After(5 * time.Second):
		h.t.Fatalf("%s beside the loop did not end", j.kind)
	}
}

func (h *loopHarness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func (h *loopHarness) tick() {
	h.t.Helper()
	h.awaitJob()
	if err := h.agent.tick(h.t.Context()); err != nil {
		h.t.Fatalf("tick: %v", err)
	}
}

// bootstrapLeader runs ticks until the agent leads a fresh cluster.
func (h *loopHarness) bootstrapLeader() {
	h.t.Helper()
	for i := 0; i < 3 && !h.agent.lease.leading; i++ {
		h.tick()
		h.advance(time.Second)
	}
	if !h.agent.lease.leading || !h.pg.Writable() {
		h.t.Fatalf("agent did not bootstrap and lead: leading=%v writable=%v", h.agent.lease.leading, h.pg.Writable())
	}
}

// newLeaderHarness returns a harness whose agent (pg1) bootstrapped a fresh
// cluster and leads it.
func newLeaderHarness(t *testing.T) *loopHarness {
	t.Helper()
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	h.bootstrapLeader()
	return h
}

// addPeer joins store as another member: its own 10 s session lease and
// its member key.
func addPeer(t *testing.T, store *dcstest.Fake, name string, m dcs.Member) *dcstest.Fake {
	t.Helper()
	p := store.Peer()
	if _, err := p.GrantLease(t.Context(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.PutMember(t.Context(), name, m); err != nil {
		t.Fatal(err)
	}
	return p
}

// takeLeader makes p (a peer from addPeer) hold the leader key as name.
func takeLeader(t *testing.T, p *dcstest.Fake, name string) {
	t.Helper()
	if won, err := p.AcquireLeader(t.Context(), name); err != nil || !won {
		t.Fatalf("%s: AcquireLeader = %v, %v", name, won, err)
	}
}

// storeLedByPg0 is the store of an initialized cluster (system identifier
// 7000000000000000001) whose leader key pg0, a running primary peer, holds.
func storeLedByPg0(t *testing.T) *dcstest.Fake {
	t.Helper()
	store := newStore()
	leader := addPeer(t, store, "pg0", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running", Role: "primary"})
	takeLeader(t, leader, "pg0")
	if err := store.Put(t.Context(), store.Keys().Initialize(), []byte("7000000000000000001")); err != nil {
		t.Fatal(err)
	}
	return store
}

// putSwitchover writes rec and the switchover lock naming it, as the
// REST API's start does.
func putSwitchover(t *testing.T, store *dcstest.Fake, rec switchover.Record) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	keys := store.Keys()
	for key, v := range map[string][]byte{keys.Switchover(rec.ID): data, keys.SwitchoverLock(): []byte(rec.ID)} {
		if err := store.Put(t.Context(), key, v); err != nil {
			t.Fatal(err)
		}
	}
}

// getSwitchover reads and decodes switchover id's record.
func getSwitchover(t *testing.T, store *dcstest.Fake, id string) *switchover.Record {
	t.Helper()
	v, _, err := store.Get(t.Context(), store.Keys().Switchover(id))
	if err != nil {
		t.Fatal(err)
	}
	r, err := switchover.Decode(v.Data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newStore() *dcstest.Fake { return dcstest.New(dcs.NewKeys("/service/", "demo")) }

// TestLeaderFencesBeforeTheLeaseCanExpire: with every renewal failing, the
// leader stops writes at t_ack + ttl − safety_margin, before etcd could
// expire the lease (t_ack + ttl), and /primary stops answering 200 then.
func TestLeaderFencesBeforeTheLeaseCanExpire(t *testing.T) {
	h := newLeaderHarness(t)
	h.tick() // one more acknowledged renewal
	lastAck := h.now
	deadline := h.agent.lease.deadline()
	if want := lastAck.Add(10*time.Second - 3*time.Second); !deadline.Equal(want) {
		t.Fatalf("deadline = %v after an ack at %v, want ack + ttl − safety_margin = %v", deadline, lastAck, want)
	}
	h.dcs.SetDown(true)
	step := 250 * time.Millisecond
	for h.pg.Writable() {
		h.advance(step)
		if h.now.Sub(lastAck) > 10*time.Second {
			t.Fatalf("still writable %s after the last acknowledged renewal (ttl 10s)", h.now.Sub(lastAck))
		}
		h.tick()
		if s := h.pub.get(); !s.LeaderUntil.IsZero() && !h.now.Before(s.LeaderUntil) && h.pg.Writable() {
			t.Fatalf("published LeaderUntil %v lets /primary pass at %v", s.LeaderUntil, h.now)
		}
	}
	fencedAt := h.now.Sub(lastAck)
	if fencedAt < 7*time.Second || fencedAt > 7*time.Second+step {
		t.Errorf("fenced %s after the last ack, want at ttl − safety_margin = 7s", fencedAt)
	}
	if h.agent.lease.leading {
		t.Error("agent still believes it leads after fencing")
	}
	if s := h.pub.get(); !s.LeaderUntil.IsZero() {
		t.Errorf("published LeaderUntil = %v after fencing, want zero", s.LeaderUntil)
	}
}

// rendezvousDCS answers KeepAlive and CheckLeader only once both are in
// flight (or after rendezvousWait, failing): a leader that sends them one
// after the other cannot renew through it.
type rendezvousDCS struct {
	*dcstest.Fake
	on                   atomic.Bool
	keepalive, checkLead chan struct{}
}

const rendezvousWait = 2 * time.Second

func newRendezvousDCS(store *dcstest.Fake) *rendezvousDCS {
	return &rendezvousDCS{Fake: store, keepalive: make(chan struct{}, 1), checkLead: make(chan struct{}, 1)}
}

func (r *rendezvousDCS) meet(mine, other chan struct{}) error {
	mine <- struct{}{}
	select {
	case <-other:
		return nil
	case <-time.After(rendezvousWait):
		return errors.New("rendezvous: the other request was not in flight")
	}
}

func (r *rendezvousDCS) KeepAlive(ctx context.Context) error {
	if r.on.Load() {
		if err := r.meet(r.keepalive, r.checkLead); err != nil {
			return err
		}
	}
	return r.Fake.KeepAlive(ctx)
}

func (r *rendezvousDCS) CheckLeader(ctx context.Context, name string) error {
	if r.on.Load() {
		if err := r.meet(r.checkLead, r.keepalive); err != nil {
			return err
		}
	}
	return r.Fake.CheckLeader(ctx, name)
}

// TestLeaderRenewalIsOneRoundTrip: the leader's keepalive and its leader
// key check are in flight together, so an etcd that answers in just under
// retry_timeout still renews the lease (sequential, they needed two round
// trips within it; the chaos suite's slow-etcd faults found it).
func TestLeaderRenewalIsOneRoundTrip(t *testing.T) {
	store := newStore()
	via := newRendezvousDCS(store)
	h := newLoopHarnessVia(t, store, pgtest.NewEmpty(7000000000000000001), via)
	h.bootstrapLeader()
	via.on.Store(true)
	h.advance(time.Second)
	renewAt := h.now
	h.tick()
	if !h.agent.lease.leading {
		t.Fatal("the leader lost leadership on a renewal")
	}
	if want := renewAt.Add(10*time.Second - 3*time.Second); !h.agent.lease.deadline().Equal(want) {
		t.Fatalf("deadline = %v, want the renewal's send time + ttl − safety_margin = %v: the keepalive and the leader check were not in flight together", h.agent.lease.deadline(), want)
	}
}

// TestFrozenLeaderFencesBeforeAnyEtcdCall: a process waking from a freeze
// past its deadline stops PostgreSQL before it talks to etcd at all.
func TestFrozenLeaderFencesBeforeAnyEtcdCall(t *testing.T) {
	h := newLeaderHarness(t)
	h.events.take()
	h.advance(30 * time.Second) // SIGSTOP … SIGCONT
	h.tick()
	ev := h.events.take()
	if len(ev) == 0 || ev[0] != "pg stop immediate" {
		t.Fatalf("first operation after waking = %v, want pg stop immediate before anything else", ev)
	}
	if h.pg.Writable() {
		t.Error("PostgreSQL is writable after the frozen leader woke up")
	}
}

// TestLeaderNeverRecreatesALostLeaderKey: when the lease lapsed at etcd,
// the former leader demotes; it takes the key again only as a replica
// racing like anyone else, never while PostgreSQL is still writable.
func TestLeaderNeverRecreatesALostLeaderKey(t *testing.T) {
	h := newLeaderHarness(t)
	h.events.take()
	h.dcs.ExpireLease(h.dcs.Lease())
	for i := 0; i < 5; i++ {
		h.advance(time.Second)
		h.tick()
	}
	ev := h.events.take()
	stop := slices.Index(ev, "pg stop immediate")
	acquire := slices.Index(ev, "dcs AcquireLeader")
	if stop < 0 {
		t.Fatalf("no immediate stop after losing the lease: %v", ev)
	}
	if acquire >= 0 && acquire < stop {
		t.Fatalf("AcquireLeader at %d before the demotion at %d: %v", acquire, stop, ev)
	}
}

// TestLeaderDemotesWhenAnotherMemberHoldsTheKey: someone else won the key
// while our lease lapsed: demote and follow it.
func TestLeaderDemotesWhenAnotherMemberHoldsTheKey(t *testing.T) {
	h := newLeaderHarness(t)
	store := h.dcs
	other := addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", Timeline: 2})
	store.ExpireLease(store.Lease())
	takeLeader(t, other, "pg2")
	for i := 0; i < 3; i++ {
		h.advance(time.Second)
		h.tick()
	}
	if h.pg.Writable() {
		t.Fatal("old primary still writable while pg2 holds the leader key")
	}
	if got := h.agent.lastPlan.Action; got.Kind != ActFollow && got.Kind != ActStartReplica {
		t.Errorf("last plan = %+v (%s), want following pg2", got, h.agent.lastPlan.Reason)
	}
	if ev := strings.Join(h.events.take(), ","); strings.Contains(ev, "pg promote") {
		t.Errorf("promoted while another member leads: %s", ev)
	}
}

// TestCrashedPrimaryRestartsInPlaceThenReleases follows primary_start_timeout.
func TestCrashedPrimaryRestartsInPlaceThenReleases(t *testing.T) {
	h := newLeaderHarness(t)
	h.pg.Crash()
	h.tick()
	if !h.pg.Writable() || !h.agent.lease.leading {
		t.Fatalf("crashed primary not restarted in place (writable %v, leading %v): %s", h.pg.Writable(), h.agent.lease.leading, h.agent.lastPlan.Reason)
	}
	h.pg.Crash()
	h.pg.StartErr = fmt.Errorf("data directory unreadable")
	for i := 0; i < 15 && h.agent.lease.leading; i++ {
		h.advance(time.Second)
		h.tick()
	}
	if h.agent.lease.leading {
		t.Fatalf("still leading with PostgreSQL down past primary_start_timeout: %s", h.agent.lastPlan.Reason)
	}
	if v := h.dcs.View(); v.Leader != nil {
		t.Errorf("leader key still held by %s after giving up", v.Leader.Name)
	}
}

// TestFencedLeaderReleasesItsKeyWhenEtcdReturns: etcd renews leases when it
// comes back, so the fenced leader's key would live on with its session
// lease; the agent must release it so an election can run.
func TestFencedLeaderReleasesItsKeyWhenEtcdReturns(t *testing.T) {
	h := newLeaderHarness(t)
	h.dcs.SetDown(true)
	for i := 0; i < 10 && h.pg.Writable(); i++ {
		h.advance(time.Second)
		h.tick()
	}
	if h.pg.Writable() {
		t.Fatal("leader did not fence while etcd was down")
	}
	h.events.take()
	h.dcs.SetDown(false)
	for i := 0; i < 5; i++ {
		h.advance(time.Second)
		h.tick()
	}
	if ev := h.events.take(); !slices.Contains(ev, "dcs ReleaseLeader") {
		t.Fatalf("fenced leader never released its key after etcd returned: %v (last plan: %s)", ev, h.agent.lastPlan.Reason)
	}
}

// TestReplicaStartPublishesItsMemberKeyOnAFreshLease: a member cut off
// long enough for its lease to expire at etcd (and its replication slot to
// be dropped by the leader) is rewound and restarted in the same tick. Its
// member key must reach etcd, on a new lease, before pg_ctl waits for
// consistency: the leader recreates the slot from that key, and without
// the slot the standby cannot get the WAL it needs to become consistent.
func TestReplicaStartPublishesItsMemberKeyOnAFreshLease(t *testing.T) {
	store := newStore()
	pg := pgtest.New(7000000000000000001)
	pg.SetReplica(0x3000000)
	h := newLoopHarness(t, store, pg)
	ctx := t.Context()
	if !h.agent.ensureLease(ctx) {
		t.Fatal("no lease granted")
	}
	store.ExpireLease(store.Lease())
	h.agent.renew(ctx) // the keepalive finds the lease gone at etcd
	if store.Lease() != 0 {
		t.Fatalf("lease %x still current after it expired at etcd", store.Lease())
	}
	h.events.take()
	if err := h.agent.startPG(ctx, "replica"); err != nil {
		t.Fatal(err)
	}
	ev := h.events.take()
	grant, put, start := slices.Index(ev, "dcs GrantLease"), slices.Index(ev, "dcs PutMember"), slices.Index(ev, "pg start")
	if grant < 0 || put < grant || start < put {
		t.Fatalf("events %v: want GrantLease, then PutMember, then the start", ev)
	}
	if _, ok := store.View().Members[h.agent.name]; !ok {
		t.Errorf("no member key for %s in etcd after the start", h.agent.name)
	}
}

// TestHungPrimaryIsStoppedBeforeTheKeyIsReleased: a leader whose
// PostgreSQL stops answering (frozen, hung) sees it as not running, tries a
// restart in place (which finds it "already running") and, past
// primary_start_timeout, gives the key up. The server must be stopped
// before that — found by the chaos suite: a frozen primary left running
// woke up after the new primary was promoted and served a read of a write
// nobody had acknowledged.
func TestHungPrimaryIsStoppedBeforeTheKeyIsReleased(t *testing.T) {
	h := newLeaderHarness(t)
	h.pg.Hang()
	h.events.take()
	for i := 0; i < 15 && h.agent.lease.leading; i++ {
		h.advance(time.Second)
		h.tick()
	}
	if h.agent.lease.leading {
		t.Fatalf("still leading with PostgreSQL hung past primary_start_timeout: %s", h.agent.lastPlan.Reason)
	}
	ev := h.events.take()
	stop, release := slices.Index(ev, "pg stop immediate"), slices.Index(ev, "dcs ReleaseLeader")
	if stop < 0 || release < stop {
		t.Fatalf("events %v: want the immediate stop before ReleaseLeader", ev)
	}
	if h.pg.Writable() {
		t.Error("the hung server still runs as a primary after the key was released")
	}
}
