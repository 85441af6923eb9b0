package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

const standbyConfigKey = `{"ttl":10,"loop_wait":1,"retry_timeout":3,"standby_cluster":{"host":"dr-haproxy","port":5000}}`

// TestStandbyLeaderLoop drives one agent against fakes through a standby
// cluster's life: it bootstraps by cloning the remote, holds the leader
// key in recovery (never writable) following the remote, promotes when
// standby_cluster is removed (promote-cluster), and when it is set again
// (demote-cluster) stops, rewinds against the remote and runs in recovery
// again, keeping the key throughout.
func TestStandbyLeaderLoop(t *testing.T) {
	store := newStore()
	setConfigOn(t, store, standbyConfigKey)
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	for i := 0; i < 4 && !h.agent.lease.leading; i++ {
		h.tick()
		h.advance(time.Second)
	}
	if !h.agent.lease.leading {
		t.Fatal("the standby cluster's first member did not take the leader key")
	}
	if !slices.Contains(h.pg.Ops(), "clone standby_cluster") || slices.Contains(h.pg.Ops(), "initdb") {
		t.Errorf("bootstrap ops = %v, want a clone of the remote and no initdb", h.pg.Ops())
	}
	h.tick()
	assertStandbyLeader(t, h)
	if v, _, err := store.Get(t.Context(), store.Keys().Status()); err != nil || !strings.Contains(string(v.Data), `"optime":50331648`) {
		t.Errorf("status key = %s (%v), want the standby leader's position 0x3000000 as optime", v.Data, err)
	}
	// promote-cluster: standby_cluster removed.
	setConfig(t, h, `{"ttl":10,"loop_wait":1,"retry_timeout":3}`)
	h.tick()
	if !h.pg.Writable() || h.agent.role != RolePrimary {
		t.Fatalf("after promote-cluster: writable=%v role=%s, want a writable primary", h.pg.Writable(), h.agent.role)
	}
	if s := h.pub.get(); s.StandbyCluster || s.Status.Role != "primary" {
		t.Errorf("published standby_cluster=%v role=%s, want false/primary", s.StandbyCluster, s.Status.Role)
	}

	// demote-cluster: standby_cluster set again; the key is kept.
	setConfig(t, h, standbyConfigKey)
	for i := 0; i < 4 && h.agent.role != RoleStandbyLeader; i++ {
		h.tick()
		h.advance(time.Second)
		if !h.agent.lease.leading {
			t.Fatal("the leader lost its key while demoting to the standby leader")
		}
	}
	if !slices.Contains(h.pg.Ops(), "rewind standby_cluster") {
		t.Errorf("demote ops = %v, want a rewind against the remote", h.pg.Ops())
	}
	h.tick()
	assertStandbyLeader(t, h)
}

func setConfig(t *testing.T, h *loopHarness, data string) {
	t.Helper()
	setConfigOn(t, h.dcs, data)
}

// assertStandbyLeader: leading, in recovery following the remote, and
// published as Patroni's standby_leader with the lock held.
func assertStandbyLeader(t *testing.T, h *loopHarness) {
	t.Helper()
	if !h.agent.lease.leading || h.pg.Writable() {
		t.Fatalf("leading=%v writable=%v, want a leader that accepts no writes", h.agent.lease.leading, h.pg.Writable())
	}
	if up := h.pg.Upstream(); up == nil || !up.Remote || up.Host != "dr-haproxy" || up.Port != 5000 {
		t.Errorf("upstream = %+v, want the remote dr-haproxy:5000", up)
	}
	s := h.pub.get()
	if !s.StandbyCluster || s.Status.Role != "standby_leader" || !h.now.Before(s.LeaderUntil) {
		t.Errorf("published standby_cluster=%v role=%s leader_until=%v (now %v), want true/standby_leader/held",
			s.StandbyCluster, s.Status.Role, s.LeaderUntil, h.now)
	}
}

// TestStandbyLeaderRewindsAfterRemoteDiverged: the remote failed over to
// a timeline that forked before what the standby leader replayed; the
// standby leader, no longer streaming, rewinds against the remote and
// starts in recovery again, keeping the key. A fork after its position
// needs nothing.
func TestStandbyLeaderRewindsAfterRemoteDiverged(t *testing.T) {
	for _, tt := range []struct {
		name   string
		fork   postgres.LSN
		rewind bool
	}{
		{"remote forked before the standby leader's position", 0x3000000 - 1, true},
		{"remote forked after it", 0x3000000 + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := newStore()
			setConfigOn(t, store, standbyConfigKey)
			pg := pgtest.NewEmpty(7000000000000000001)
			h := newLoopHarness(t, store, pg)
			for i := 0; i < 4 && !h.agent.lease.leading; i++ {
				h.tick()
				h.advance(time.Second)
			}
			h.tick()
			assertStandbyLeader(t, h)
			pg.NotStreaming = true
			pg.Histories = map[uint32][]postgres.TimelineSwitch{2: {{Timeline: 1, SwitchLSN: tt.fork}}}
			h.advance(rewindCheckEvery)
			h.tick()
			h.awaitJob() // the rewind runs beside the loop
			if got := slices.Contains(h.pg.Ops(), "rewind standby_cluster"); got != tt.rewind {
				t.Fatalf("rewind against the remote = %v, want %v (ops %v; last plan %q)", got, tt.rewind, h.pg.Ops(), h.agent.lastPlan.Reason)
			}
			for i := 0; i < 3; i++ {
				h.tick()
				h.advance(time.Second)
			}
			assertStandbyLeader(t, h)
		})
	}
}

func setConfigOn(t *testing.T, store *dcstest.Fake, data string) {
	t.Helper()
	if err := store.Put(t.Context(), store.Keys().Config(), []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// TestStandbySwitchoverLoop drives two agents on fakes through a
// switchover inside a standby cluster: the standby leader pg1 stops, its
// last position (read before the stop) is the final LSN, pg2 caught up
// with it takes the key by the create-if-absent race and stays in
// recovery following the remote, pg1 restarts as its replica, and the
// record closes completed without a write probe. Nobody is ever writable
// and nobody promotes.
func TestStandbySwitchoverLoop(t *testing.T) {
	store := newStore()
	h1 := newStandbyLeader(t, store)
	pg2 := pgtest.New(7000000000000000001)
	pg2.SetReplica(0x3000000)
	h2 := newNamedHarness(t, "pg2", store, pg2, store.Peer())
	h2.tick()
	h2.tick()
	if up := pg2.Upstream(); up == nil || up.Member != "pg1" {
		t.Fatalf("setup: pg2 follows %+v, want pg1", up)
	}
	neverWritable := func(when string) {
		t.Helper()
		if h1.pg.Writable() || pg2.Writable() {
			t.Fatalf("%s: pg1 writable %t, pg2 writable %t; nothing in a standby cluster may be", when, h1.pg.Writable(), pg2.Writable())
		}
	}

	// The pre-flight reads both (pg2 cascades from pg1); the catch-up
	// reads pg2's replay position.
	h1.agent.peers = fixedPeers{
		{Name: "pg1", Reachable: true, InRecovery: true, State: "running", Timeline: 1, WAL: 0x3000000, Streaming: []string{"pg2"}},
		{Name: "pg2", Reachable: true, InRecovery: true, State: "running", Timeline: 1, WAL: 0x3000000, Replayed: 0x3000000},
	}
	if _, err := h1.agent.StartSwitchover(t.Context(), restapi.SwitchoverRequest{To: "pg2"}); err != nil {
		t.Fatalf("a switchover inside a standby cluster: %v, want it started", err)
	}
	if r := switchover.Active(store.View()); r == nil || !r.Standby {
		t.Fatalf("record %+v, want a standby cluster's switchover", r)
	}
	awaitStop(t, h1)
	neverWritable("quiesced")
	h1.tick() // final position, catch-up, hand-over
	r := switchover.Active(store.View())
	if r == nil || r.Stage != switchover.StagePromote || r.FinalLSN != 0x3000000 || store.View().LeaderName() != "" {
		t.Fatalf("after the stop: record %+v, leader %q; want PROMOTE_STANDBY, final LSN 0/3000000 (read before the stop), the key released", r, store.View().LeaderName())
	}

	h2.tick() // the designated candidate takes the key: no promotion
	if !h2.agent.lease.leading || store.View().LeaderName() != "pg2" || h2.agent.role != RoleStandbyLeader {
		t.Fatalf("pg2 leading %t, leader %q, role %s; want pg2 the standby leader", h2.agent.lease.leading, store.View().LeaderName(), h2.agent.role)
	}
	if up := pg2.Upstream(); up == nil || !up.Remote || up.Host != "dr-haproxy" {
		t.Errorf("pg2 upstream %+v, want the remote dr-haproxy", up)
	}
	neverWritable("after the hand-over")
	h1.tick() // the old standby leader restarts as a replica
	neverWritable("old leader restarted")
	if h1.agent.lease.leading || h1.agent.pgState != PGRunning {
		t.Fatalf("pg1 leading %t, state %s; want a running replica", h1.agent.lease.leading, h1.agent.pgState)
	}
	h1.tick()
	if up := h1.pg.Upstream(); up == nil || up.Member != "pg2" {
		t.Errorf("pg1 follows %+v, want pg2", up)
	}
	pg2.SetReplication(postgres.Replica{ApplicationName: "pg1", State: "streaming"})
	for i := 0; i < 4 && switchover.Active(store.View()) != nil; i++ {
		h2.tick()
		neverWritable("new standby leader's stages")
	}
	ids := switchover.IDs(store.View())
	if len(ids) != 1 {
		t.Fatalf("switchover records %v, want one", ids)
	}
	data, _ := switchover.RecordData(store.View(), ids[0])
	done, err := switchover.Decode(data)
	if err != nil || done.State != switchover.StateCompleted {
		t.Fatalf("record %+v (%v), want completed", done, err)
	}
	for _, e := range done.Events {
		if strings.Contains(e.Message, "write probe on") || strings.Contains(e.Message, "a write succeeded") || e.Kind == switchover.KindWarning {
			t.Errorf("event %s %s %q: a standby switchover probes no write and completes without warnings", e.Stage, e.Kind, e.Message)
		}
	}
	for _, pg := range []*pgtest.Fake{h1.pg, pg2} {
		if slices.Contains(pg.Ops(), "promote") {
			t.Errorf("ops %v: nothing promotes in a standby cluster", pg.Ops())
		}
	}
}

// newStandbyLeader: pg1 bootstraps a standby cluster on store and is its
// standby leader.
func newStandbyLeader(t *testing.T, store *dcstest.Fake) *loopHarness {
	t.Helper()
	setConfigOn(t, store, standbyConfigKey)
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	for i := 0; i < 4 && !h.agent.lease.leading; i++ {
		h.tick()
		h.advance(time.Second)
	}
	h.tick()
	assertStandbyLeader(t, h)
	return h
}

// TestStandbySwitchoverAbortRestoresTheStandbyLeader: a standby
// switchover that ends before the hand-over (here aborted while the
// candidate is unreachable) starts the old standby leader again in
// recovery following the remote, its key kept — not as a primary.
func TestStandbySwitchoverAbortRestoresTheStandbyLeader(t *testing.T) {
	store := newStore()
	h := newStandbyLeader(t, store)
	addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	quiesceFor(t, h, true)
	h.tick() // stopped; the candidate (noPeers: unreachable) is polled
	if r := switchover.Active(store.View()); r == nil || r.Stage != switchover.StageCatchUp {
		t.Fatalf("record %+v, want WAIT_FOR_REPLICATION_CATCHUP", r)
	}
	if _, err := h.agent.updateRecord(t.Context(), "s1", func(r *switchover.Record) error { r.AbortRequested = true; return nil }); err != nil {
		t.Fatal(err)
	}
	h.tick()
	data, _ := switchover.RecordData(store.View(), "s1")
	if r, err := switchover.Decode(data); err != nil || r.State != switchover.StateAborted {
		t.Fatalf("record %+v (%v), want aborted", r, err)
	}
	if h.agent.quiesce != nil || h.agent.pgState != PGRunning || h.agent.role != RoleStandbyLeader {
		t.Fatalf("after the abort: quiesce %v, state %s, role %s; want the standby leader running", h.agent.quiesce, h.agent.pgState, h.agent.role)
	}
	h.tick()
	assertStandbyLeader(t, h)
}
