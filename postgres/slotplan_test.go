package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanSlots(t *testing.T) {
	phys := func(name string, active bool, pos LSN) Slot {
		return Slot{Name: name, Type: SlotPhysical, Active: active, Position: pos}
	}
	cdc := Slot{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "test_decoding"}
	tests := []struct {
		name   string
		policy SlotPolicy
		have   []Slot
		want   SlotPlan
	}{
		{"primary creates members' and permanent slots",
			SlotPolicy{Primary: true, Members: []string{"pg-2", "pg.3"}, Permanent: []Slot{{Name: "arch", Type: SlotPhysical}, cdc}},
			nil,
			SlotPlan{Create: []Slot{{Name: "arch", Type: SlotPhysical}, cdc, {Name: "pg_2", Type: SlotPhysical}, {Name: "pg_3", Type: SlotPhysical}}}},
		{"primary drops an unknown inactive physical slot",
			SlotPolicy{Primary: true, Members: []string{"pg-2"}},
			[]Slot{phys("pg_2", false, 1), phys("stale", false, 1)},
			SlotPlan{Drop: []Slot{phys("stale", false, 1)}}},
		{"an active unknown slot is kept",
			SlotPolicy{Primary: true},
			[]Slot{phys("receiver", true, 5)},
			SlotPlan{}},
		{"ignore_slots keeps a slot by name",
			SlotPolicy{Primary: true, Ignore: []SlotMatch{{Name: "barman"}}},
			[]Slot{phys("barman", false, 1), phys("other", false, 1)},
			SlotPlan{Drop: []Slot{phys("other", false, 1)}}},
		{"ignore_slots matches every attribute it sets",
			SlotPolicy{Primary: true, Ignore: []SlotMatch{{Name: "barman", Type: SlotLogical}}},
			[]Slot{phys("barman", false, 1)},
			SlotPlan{Drop: []Slot{phys("barman", false, 1)}}},
		{"ignore_slots by type keeps every physical slot",
			SlotPolicy{Primary: true, Ignore: []SlotMatch{{Type: SlotPhysical}}},
			[]Slot{phys("a", false, 1), phys("b", false, 1)},
			SlotPlan{}},
		{"an unknown logical slot is kept",
			SlotPolicy{Primary: true},
			[]Slot{{Name: "debezium", Type: SlotLogical, Database: "app", Plugin: "pgoutput"}},
			SlotPlan{}},
		{"a permanent logical slot of another plugin is re-created",
			SlotPolicy{Primary: true, Permanent: []Slot{cdc}},
			[]Slot{{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "pgoutput"}},
			SlotPlan{Create: []Slot{cdc}, Drop: []Slot{{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "pgoutput"}}}},
		{"an ignored slot with a permanent slot's name is left alone",
			SlotPolicy{Primary: true, Permanent: []Slot{{Name: "x", Type: SlotPhysical}}, Ignore: []SlotMatch{{Name: "x"}}},
			[]Slot{{Name: "x", Type: SlotLogical, Database: "d", Plugin: "p"}},
			SlotPlan{}},
		{"a replica keeps only the permanent slots, advances them, and copies a missing logical one",
			SlotPolicy{Members: []string{"pg-2"}, Permanent: []Slot{{Name: "arch", Type: SlotPhysical}, cdc},
				Positions: map[string]LSN{"arch": 100, "cdc": 90}},
			[]Slot{phys("arch", false, 40), phys("pg_2", false, 1)},
			SlotPlan{Advance: []Slot{{Name: "arch", Type: SlotPhysical, Position: 100}}, Drop: []Slot{phys("pg_2", false, 1)}, Copy: []Slot{cdc}}},
		{"a replica advances its copy of a logical slot",
			SlotPolicy{Permanent: []Slot{cdc}, Positions: map[string]LSN{"cdc": 90}},
			[]Slot{{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "test_decoding", Position: 70}},
			SlotPlan{Advance: []Slot{{Name: "cdc", Type: SlotLogical, Position: 90}}}},
		{"no copy before the leader publishes the slot",
			SlotPolicy{Permanent: []Slot{cdc}},
			nil,
			SlotPlan{}},
		{"an active slot on a replica is not advanced",
			SlotPolicy{Permanent: []Slot{cdc}, Positions: map[string]LSN{"cdc": 90}},
			[]Slot{{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "test_decoding", Position: 70, Active: true}},
			SlotPlan{}},
		{"a replica never moves a slot backwards",
			SlotPolicy{Permanent: []Slot{{Name: "arch", Type: SlotPhysical}}, Positions: map[string]LSN{"arch": 10}},
			[]Slot{phys("arch", false, 40)},
			SlotPlan{}},
		{"a replica creates a missing permanent physical slot",
			SlotPolicy{Permanent: []Slot{{Name: "arch", Type: SlotPhysical}}},
			nil,
			SlotPlan{Create: []Slot{{Name: "arch", Type: SlotPhysical}}}},
		{"a replica keeps an ignored slot across a switchover",
			SlotPolicy{Ignore: []SlotMatch{{Name: "foreign_archiver", Type: SlotPhysical}}},
			[]Slot{phys("foreign_archiver", false, 7), phys("pg_1", false, 7)},
			SlotPlan{Drop: []Slot{phys("pg_1", false, 7)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PlanSlots(tt.policy, tt.have)); diff != "" {
				t.Errorf("PlanSlots (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKeepWith(t *testing.T) {
	for _, tt := range []struct {
		slot Slot
		want string
	}{
		{Slot{Name: "arch", Type: SlotPhysical, Position: 5}, `{"name": "arch", "type": "physical"}`},
		{Slot{Name: "cdc", Type: SlotLogical, Database: "app", Plugin: "pgoutput"}, `{"name": "cdc", "type": "logical", "database": "app", "plugin": "pgoutput"}`},
	} {
		m := KeepWith(tt.slot)
		if got := m.String(); got != tt.want {
			t.Errorf("KeepWith(%s) = %s, want %s", tt.slot.Name, got, tt.want)
		}
		if !m.Matches(tt.slot) {
			t.Errorf("KeepWith(%s) does not match the slot", tt.slot.Name)
		}
	}
}
