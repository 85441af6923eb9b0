package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// slotRefresh is how often a member re-reads its slots when nothing it
// knows of changed: a slot made by hand is dropped (with a WARN) or a
// replica's copy of a permanent slot advanced within it. A query of
// pg_replication_slots every few seconds costs nothing measurable.
const slotRefresh = 5 * time.Second

// slotState is the loop's memory of the slots it keeps.
type slotState struct {
	key string    // the policy last applied ("" forces the next run)
	at  time.Time // when
	// seen is when each member last had a member key, for
	// member_slots_ttl (leader only; a new leader starts empty: slots
	// live on one server and the old primary's are not here anyway).
	seen map[string]time.Time
	// positions are the permanent slots' positions on this primary, as
	// last read, published in the status key's `slots`.
	positions map[string]int64
}

// ensureSlots keeps this member's replication slots (postgres.PlanSlots):
// on the primary a physical slot for every other member (and, for
// member_slots_ttl, for members that left) and the permanent slots; on a
// replica its copies of the permanent physical slots, advanced to the
// leader's published positions. The call is bounded by ctx (the lease
// deadline on a leader): it never holds the loop past it, and it touches
// only slots, never whether PostgreSQL accepts writes.
func (a *Agent) ensureSlots(ctx context.Context, s Snapshot, primary bool) error {
	now := a.now()
	p := postgres.SlotPolicy{Primary: primary, Permanent: a.dyn.Slots, Ignore: a.dyn.IgnoreSlots}
	if primary {
		p.Members = a.slotMembers(s, now)
	} else if s.View != nil {
		p.Positions = map[string]postgres.LSN{}
		for name, pos := range s.View.Status.Slots {
			p.Positions[name] = postgres.LSN(pos)
		}
	}
	key := policyKey(p)
	if key == a.slots.key && now.Sub(a.slots.at) < slotRefresh {
		return nil
	}
	have, err := a.pg.EnsureSlots(ctx, p)
	if err != nil {
		return fmt.Errorf("replication slots: %w", err)
	}
	a.slots.key, a.slots.at = key, now
	if primary {
		a.slots.positions = permanentPositions(have, a.dyn.Slots)
	}
	return nil
}

// slotMembers are the other members whose slots the primary keeps: those
// with a member key, and those that left less than member_slots_ttl ago.
func (a *Agent) slotMembers(s Snapshot, now time.Time) []string {
	if a.slots.seen == nil {
		a.slots.seen = map[string]time.Time{}
	}
	if s.View != nil {
		for _, n := range s.View.MemberNames() {
			a.slots.seen[n] = now
		}
	}
	var out []string
	for n, at := range a.slots.seen {
		switch {
		case n == a.name:
		case now.Sub(at) > a.dyn.MemberSlotsTTL:
			delete(a.slots.seen, n)
		default:
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// permanentPositions are the positions of the permanent slots among have.
func permanentPositions(have []postgres.Slot, permanent []postgres.Slot) map[string]int64 {
	out := map[string]int64{}
	for _, h := range have {
		if slices.ContainsFunc(permanent, func(p postgres.Slot) bool { return p.Name == h.Name && p.Type == h.Type }) && h.Position > 0 {
			out[h.Name] = int64(h.Position)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// policyKey identifies a policy: a change runs the slots at once.
func policyKey(p postgres.SlotPolicy) string {
	return fmt.Sprintf("%t|%s|%v|%v|%v", p.Primary, strings.Join(p.Members, ","), p.Permanent, p.Ignore, p.Positions)
}
