package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
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
