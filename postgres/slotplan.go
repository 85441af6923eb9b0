package postgres

import (
	"fmt"
	"slices"
	"strings"
)

// Slot types, as pg_replication_slots.slot_type spells them.
const (
	SlotPhysical = "physical"
	SlotLogical  = "logical"
)

// Slot is a replication slot: one that exists (Active, Position filled
// from pg_replication_slots) or one the dynamic config's `slots` asks for
// (Patroni's format: type, and for a logical slot database and plugin).
type Slot struct {
	Name     string
	Type     string
	Database string // logical only
	Plugin   string // logical only
	Active   bool
	// Position is restart_lsn for a physical slot, confirmed_flush_lsn for
	// a logical one (0 when the slot never reserved WAL).
	Position LSN
}

// SlotMatch is one entry of `ignore_slots` (Patroni's matching rule): a
// slot matches when every attribute the entry sets is equal; an entry that
// sets none matches nothing.
type SlotMatch struct {
	Name     string
	Type     string
	Database string
	Plugin   string
}

// Matches reports whether s is covered by m.
func (m SlotMatch) Matches(s Slot) bool {
	if m == (SlotMatch{}) {
		return false
	}
	return (m.Name == "" || m.Name == s.Name) && (m.Type == "" || m.Type == s.Type) &&
		(m.Database == "" || m.Database == s.Database) && (m.Plugin == "" || m.Plugin == s.Plugin)
}

// String is the entry as a user writes it in the dynamic config.
func (m SlotMatch) String() string {
	var parts []string
	for _, kv := range [][2]string{{"name", m.Name}, {"type", m.Type}, {"database", m.Database}, {"plugin", m.Plugin}} {
		if kv[1] != "" {
			parts = append(parts, fmt.Sprintf("%q: %q", kv[0], kv[1]))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// SlotPolicy is what a member keeps in pg_replication_slots.
type SlotPolicy struct {
	// Primary: this member is the leader's primary. A replica keeps only
	// the permanent physical slots (so it can take over with them); the
	// members' own slots are the primary's business.
	Primary bool
	// Members are the members whose physical slots the primary keeps:
	// the others in etcd plus, for member_slots_ttl, those that left.
	Members []string
	// Permanent are the dynamic config's `slots`.
	Permanent []Slot
	// Ignore are the dynamic config's `ignore_slots`.
	Ignore []SlotMatch
	// Positions are the leader's published slot positions (the status
	// key's `slots`): a replica advances its copy of a permanent physical
	// slot to them, never past its own replay position.
	Positions map[string]LSN
}

// SlotPlan is what to do to reach a SlotPolicy from the existing slots.
type SlotPlan struct {
	Create  []Slot
	Advance []Slot // Position is the target
	// Drop are inactive slots nothing asks for; each is named in a WARN
	// with the ignore_slots entry that would keep it.
	Drop []Slot
	// Copy are permanent logical slots a replica lacks while the leader
	// publishes their position: a PostgreSQL 15 standby cannot create a
	// logical slot, so the agent copies the primary's state files into
	// the stopped replica (ReadSlotStates, InstallSlotStates). EnsureSlots
	// does not act on them.
	Copy []Slot
}

// Empty reports whether the plan does nothing.
func (p SlotPlan) Empty() bool { return len(p.Create)+len(p.Advance)+len(p.Drop)+len(p.Copy) == 0 }

// PlanSlots decides, without I/O, which slots to create, advance and drop.
// Rules, Patroni's unless noted:
//   - a slot matching ignore_slots is never touched;
//   - an active slot is never dropped;
//   - a permanent slot is created where it is missing (on a replica,
//     physical ones only: PostgreSQL 15 cannot create a logical slot on a
//     standby, so a logical one the leader publishes is listed in Copy);
//   - on a replica, an inactive permanent slot (physical or logical) is
//     advanced to the leader's published position, never backwards;
//   - an inactive physical slot nothing asks for is dropped;
//   - a logical slot that is not permanent is kept (Regent's choice:
//     Patroni drops it; a consumer's slot is too costly to lose by mistake).
func PlanSlots(p SlotPolicy, have []Slot) SlotPlan {
	want := map[string]Slot{}
	if p.Primary {
		for _, m := range p.Members {
			n := SlotName(m)
			want[n] = Slot{Name: n, Type: SlotPhysical}
		}
	}
	for _, s := range p.Permanent {
		want[s.Name] = s
	}
	existing := map[string]Slot{}
	var plan SlotPlan
	for _, h := range have {
		existing[h.Name] = h
		if ignored(p.Ignore, h) {
			continue
		}
		w, wanted := want[h.Name]
		switch {
		case wanted && sameKind(w, h):
			if !p.Primary && !h.Active {
				if to, ok := p.Positions[h.Name]; ok && to > h.Position {
					plan.Advance = append(plan.Advance, Slot{Name: h.Name, Type: h.Type, Position: to})
				}
			}
		case h.Active, h.Type == SlotLogical && !wanted:
		default: // unknown, or a permanent slot's name with another type, database or plugin
			plan.Drop = append(plan.Drop, h)
		}
	}
	for _, name := range sortedKeys(want) {
		w := want[name]
		if h, ok := existing[name]; ok && (sameKind(w, h) || ignored(p.Ignore, h) || h.Active) {
			continue
		}
		switch {
		case p.Primary || w.Type == SlotPhysical:
			plan.Create = append(plan.Create, w)
		case p.Positions[name] > 0:
			plan.Copy = append(plan.Copy, w)
		}
	}
	return plan
}

// sameKind: h is the slot w asks for (a logical slot of another database
// or plugin is not: Patroni drops and re-creates it).
func sameKind(w, h Slot) bool {
	return w.Type == h.Type && (w.Type == SlotPhysical || (w.Database == h.Database && w.Plugin == h.Plugin))
}

func ignored(ms []SlotMatch, s Slot) bool {
	return slices.ContainsFunc(ms, func(m SlotMatch) bool { return m.Matches(s) })
}

// KeepWith is the ignore_slots entry that would keep s, for the WARN
// naming a slot about to be dropped.
func KeepWith(s Slot) SlotMatch {
	m := SlotMatch{Name: s.Name, Type: s.Type}
	if s.Type == SlotLogical {
		m.Database, m.Plugin = s.Database, s.Plugin
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
