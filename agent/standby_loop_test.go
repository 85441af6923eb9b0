package agent

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
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
	_, err := h.agent.StartSwitchover(t.Context(), restapi.SwitchoverRequest{To: "pg2"})
	if se, ok := errors.AsType[*restapi.SwitchoverError](err); !ok || se.Status != http.StatusPreconditionFailed {
		t.Errorf("switchover in a standby cluster: err = %v, want a 412 refusal", err)
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
