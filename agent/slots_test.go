package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
)

// TestSlotMembersKeepsDepartedForTTL: member_slots_ttl keeps a departed
// member's slot for that long, then lets it go; 0 drops it at once.
func TestSlotMembersKeepsDepartedForTTL(t *testing.T) {
	view := func(names ...string) Snapshot {
		m := map[string]dcs.Member{}
		for _, n := range names {
			m[n] = dcs.Member{}
		}
		return Snapshot{View: &dcs.Cluster{Members: m}}
	}
	nostream := func(s Snapshot, name string) Snapshot {
		s.View.Members[name] = dcs.Member{Tags: map[string]any{"nostream": true}}
		return s
	}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name string
		ttl  time.Duration
		at   time.Duration
		snap Snapshot
		want []string
	}{
		{"all present", time.Minute, 0, view("pg1", "pg2", "pg3"), []string{"pg2", "pg3"}},
		{"pg3 left: kept", time.Minute, 30 * time.Second, view("pg1", "pg2"), []string{"pg2", "pg3"}},
		{"pg3 gone past the ttl", time.Minute, 61 * time.Second, view("pg1", "pg2"), []string{"pg2"}},
		{"pg3 back", time.Minute, 62 * time.Second, view("pg1", "pg2", "pg3"), []string{"pg2", "pg3"}},
		{"ttl 0: gone at once", 0, 63 * time.Second, view("pg1", "pg2"), []string{"pg2"}},
		{"a nostream member gets no slot", time.Minute, 64 * time.Second, nostream(view("pg1", "pg2", "pg3"), "pg3"), []string{"pg2"}},
	}
	a := &Agent{name: "pg1"}
	for _, st := range steps {
		a.dyn = config.Dynamic{MemberSlotsTTL: st.ttl}
		if diff := cmp.Diff(st.want, a.slotMembers(st.snap, t0.Add(st.at))); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", st.name, diff)
		}
	}
}

// TestPermanentPositions: the status key publishes only the permanent
// slots' positions, and only those that reserved WAL.
func TestPermanentPositions(t *testing.T) {
	permanent := []postgres.Slot{{Name: "arch", Type: postgres.SlotPhysical}, {Name: "cdc", Type: postgres.SlotLogical}, {Name: "new", Type: postgres.SlotPhysical}}
	have := []postgres.Slot{{Name: "arch", Type: postgres.SlotPhysical, Position: 100}, {Name: "cdc", Type: postgres.SlotLogical, Position: 90},
		{Name: "pg_2", Type: postgres.SlotPhysical, Position: 80}, {Name: "new", Type: postgres.SlotPhysical}}
	want := map[string]int64{"arch": 100, "cdc": 90}
	if diff := cmp.Diff(want, permanentPositions(have, permanent)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := permanentPositions(have, nil); got != nil {
		t.Errorf("no permanent slots: %v, want nil (the status key stays as before)", got)
	}
}

// TestReplicaCopiesPublishedLogicalSlot: a replica lacking a permanent
// logical slot the leader publishes reads the slot's files from the
// leader, stops PostgreSQL beside the loop, installs them and starts
// again; a copy that did not take is not retried before slotCopyRetry.
func TestReplicaCopiesPublishedLogicalSlot(t *testing.T) {
	store := storeLedByPg0(t)
	for key, value := range map[string]string{
		store.Keys().Status(): `{"optime": 50331648, "slots": {"cdc": 50331000}}`,
		store.Keys().Config(): `{"ttl": 10, "loop_wait": 1, "retry_timeout": 3,
			"slots": {"cdc": {"type": "logical", "database": "app", "plugin": "pgoutput"}}}`,
	} {
		if err := store.Put(t.Context(), key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	pg := pgtest.New(7000000000000000001)
	pg.SetReplica(50331648)
	h := newLoopHarness(t, store, pg)
	for range 5 {
		h.tick()
		h.awaitJob()
		h.advance(time.Second)
	}
	ops := strings.Join(pg.Ops(), ",")
	i := strings.Index(ops, "read slot states pg0 cdc,stop fast,install slot states cdc,start")
	if i < 0 {
		t.Fatalf("operations %s: want the read, the stop, the install and a start, in that order", ops)
	}
	// The fake never shows the slot: the copy did not take. No second
	// copy (restart) before slotCopyRetry.
	if n := strings.Count(ops, "read slot states"); n != 1 {
		t.Errorf("%d reads of the leader's slot files within 5 s, want 1: %s", n, ops)
	}
	for range 15 {
		h.tick()
		h.awaitJob()
		h.advance(time.Second)
	}
	if n := strings.Count(strings.Join(pg.Ops(), ","), "read slot states"); n != 2 {
		t.Errorf("%d reads after slotCopyRetry, want 2", n)
	}
}

// TestLeaderWritesAMissingInitializeKeyBack: after `regentctl remove`
// deleted the initialize key, the leader writes its system identifier
// back (create-only), so an empty new member cannot bootstrap a second
// cluster.
func TestLeaderWritesAMissingInitializeKeyBack(t *testing.T) {
	h := newLeaderHarness(t)
	key := h.dcs.Keys().Initialize()
	v, ok, err := h.dcs.Get(t.Context(), key)
	if err != nil || !ok || len(v.Data) == 0 {
		t.Fatalf("initialize after bootstrap: %q %v %v", v.Data, ok, err)
	}
	want := string(v.Data)
	if err := h.dcs.Delete(t.Context(), key, 0); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	h.tick()
	v, ok, err = h.dcs.Get(t.Context(), key)
	if err != nil || !ok || string(v.Data) != want {
		t.Fatalf("initialize after a leader tick: %q (present %v, %v), want %q", v.Data, ok, err, want)
	}
}
