package agent

import (
	"context"
	"errors"
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
	primary bool      // the last run was as the primary
	key     string    // the policy last applied ("" forces the next run)
	at      time.Time // when
	// seen is when each member last had a member key, for
	// member_slots_ttl (leader only; a new leader starts empty: slots
	// live on one server and the old primary's are not here anyway).
	seen map[string]time.Time
	// positions are the permanent slots' positions on this primary, as
	// last read, published in the status key's `slots`.
	positions map[string]int64
	// toCopy are the permanent logical slots this replica lacks
	// (PlanSlots' Copy); copyTried when the last copy started.
	toCopy    []postgres.Slot
	copyTried time.Time
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
	var stale *postgres.StaleCopiesError
	if err != nil && !errors.As(err, &stale) {
		return fmt.Errorf("replication slots: %w", err)
	}
	a.slots.key, a.slots.at, a.slots.primary = key, now, primary
	if primary {
		a.slots.positions = permanentPositions(have, a.dyn.Slots)
		return nil
	}
	a.slots.toCopy = postgres.PlanSlots(p, have).Copy
	if stale != nil { // Patroni's rule too: a copy whose WAL is gone is copied again
		for _, s := range a.dyn.Slots {
			if slices.Contains(stale.Names, s.Name) {
				a.slots.toCopy = append(a.slots.toCopy, s)
			}
		}
	}
	return nil
}

// slotCopyRetry spaces the copies of logical slots into a replica: each
// restarts it, so a copy that keeps failing (the leader unreachable, the
// slot gone) must not restart it every tick.
const slotCopyRetry = 15 * time.Second

// copyLogicalSlots gives this replica the permanent logical slots it
// lacks the way Patroni does (copy_logical_slots): read their state files
// from the leader, stop PostgreSQL, write them into pg_replslot, and let
// the next tick start it again, which loads them; later ticks advance
// them to the leader's published positions. It runs beside the loop (the
// stop and the read take time) and on a replica only: the leader key,
// and whether the primary accepts writes, are never touched.
func (a *Agent) copyLogicalSlots(ctx context.Context, up postgres.Upstream) {
	if len(a.slots.toCopy) == 0 || a.job != nil || (!a.slots.copyTried.IsZero() && a.now().Sub(a.slots.copyTried) < slotCopyRetry) {
		return
	}
	a.slots.copyTried = a.now()
	names := make([]string, 0, len(a.slots.toCopy))
	for _, s := range a.slots.toCopy {
		names = append(names, s.Name)
	}
	// The read is one short query, bounded like the loop's other calls to
	// the leader (TimelineHistory); only the stop runs beside the loop.
	rctx, cancel := a.ioContext(ctx)
	states, err := a.pg.ReadSlotStates(rctx, up, names)
	cancel()
	if err != nil || len(states) == 0 {
		a.log.Warn("cannot read the leader's logical slot files", "leader", up.Member, "slots", strings.Join(names, ","), "err", err)
		return
	}
	// A copy is only usable with the WAL from its restart_lsn: one older
	// than this replica's oldest segment would fail to advance and make
	// every later copy restart PostgreSQL for nothing. It is copied once
	// the consumer has moved the slot past it.
	octx, cancel := a.ioContext(ctx)
	oldest, err := a.pg.OldestWAL(octx)
	cancel()
	if err != nil {
		a.log.Warn("cannot copy the leader's logical slots", "err", err)
		return
	}
	states = slices.DeleteFunc(states, func(s postgres.SlotState) bool {
		if s.RestartLSN < oldest {
			a.log.Warn("cannot copy a logical slot yet: this replica no longer has the WAL from its restart_lsn; it is copied once its consumer moves it past",
				"slot", s.Name, "restart_lsn", s.RestartLSN, "oldest_wal", oldest)
			return true
		}
		return false
	})
	if len(states) == 0 {
		return
	}
	a.log.Info("copying the leader's logical slots into this replica; PostgreSQL restarts", "slots", strings.Join(names, ","), "leader", up.Member)
	a.pgState = PGStopping
	stopTimeout := a.cfg.Postgres.StopTimeout
	a.startJob(ctx, "logical slot copy", func(ctx context.Context) error {
		if _, err := a.pg.Stop(ctx, postgres.StopFast, stopTimeout); err != nil {
			return fmt.Errorf("copy logical slots: stop: %w", err)
		}
		return a.pg.InstallSlotStates(states)
	}, func(err error) {
		a.pgState = PGStopped // the next tick starts the replica
		a.slots.key = ""      // and re-reads its slots at once
		if err != nil {
			a.log.Warn("cannot copy the leader's logical slots", "err", err)
		}
	})
}

// slotMembers are the other members whose slots the primary keeps: those
// with a member key, and those that left less than member_slots_ttl ago;
// never a nostream member (it streams from nobody).
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
		case s.View != nil && s.View.Members[n].NoStream():
			// A nostream member replays from the archive only: a slot for
			// it would never be used and would keep WAL on the primary
			// forever.
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
