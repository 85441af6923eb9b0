package agent

import (
	"time"

	"github.com/regent-ha/regent/restapi"
)

// The RTO budget of a failover: where the time between the last sight of
// the old leader and the first write the new primary accepted went. Each
// phase is measured on the winner's clock (one host: no clock skew).
const (
	// PhaseDetect: the old leader last seen alive → its key's absence
	// seen. "Last seen alive" is the last tick this member's WAL receiver
	// streamed from it (for a dead leader: about its death, so the lease
	// running out is inside this phase), or the key's last sight when the
	// member was not streaming then.
	PhaseDetect = "detect"
	// PhaseSuspect: the fast path (fence.fast_failover) only: this member
	// began to suspect the old leader (detect's end) → a majority agreed.
	PhaseSuspect = "suspect_agree"
	// PhaseFence: fence.command against the old leader (when it ran).
	PhaseFence = "fence"
	// PhaseElect: absence seen (the fast path: agreement) → leader key
	// won, minus the fence: peers' status, primary_race_backoff, the race
	// itself (the fast path: the delete of the old key by revision).
	PhaseElect = "elect"
	// PhasePromote: key won → PostgreSQL out of recovery.
	PhasePromote = "promote"
	// PhaseFirstWrite: out of recovery → a write transaction committed
	// (the write probe, synchronous_commit local).
	PhaseFirstWrite = "first_write"
)

// promotionTimes are the moments of this agent's last promote, taken by
// promote for the failover record.
type promotionTimes struct {
	promotedAt   time.Time // PostgreSQL left recovery
	firstWriteAt time.Time // the write probe committed (zero: it failed)
	timeline     uint32    // the new timeline (0: unknown)
}

// failoverPhases splits a failover's timings into its phases, in order.
// A phase whose ends are unknown is left out, never guessed; a negative
// span (a clock step) counts as 0.
// A stream last seen over 2·ttl before the key was (the member was not
// streaming for another reason) does not date the leader's end.
func failoverPhases(t restapi.FailoverTimings, fence *restapi.StonithRecord, ttl time.Duration) []restapi.PhaseRecord {
	var out []restapi.PhaseRecord
	add := func(phase string, from, to time.Time) {
		if !from.IsZero() && !to.IsZero() {
			out = append(out, restapi.PhaseRecord{Phase: phase, Ms: max(0, to.Sub(from).Milliseconds())})
		}
	}
	alive := t.LeaderLastSeen
	if up := t.UpstreamLastSeen; !up.IsZero() && !alive.IsZero() && up.Before(alive) && alive.Sub(up) <= 2*ttl {
		alive = up
	}
	add(PhaseDetect, alive, t.DetectedAt)
	electFrom := t.DetectedAt
	if !t.AgreedAt.IsZero() {
		add(PhaseSuspect, t.DetectedAt, t.AgreedAt)
		electFrom = t.AgreedAt
	}
	var fenceMs int64
	if fence != nil && fence.Ran {
		fenceMs = fence.DurationMs
		out = append(out, restapi.PhaseRecord{Phase: PhaseFence, Ms: fenceMs})
	}
	if !electFrom.IsZero() && !t.ElectedAt.IsZero() {
		out = append(out, restapi.PhaseRecord{Phase: PhaseElect, Ms: max(0, t.ElectedAt.Sub(electFrom).Milliseconds()-fenceMs)})
	}
	add(PhasePromote, t.ElectedAt, t.PromotedAt)
	add(PhaseFirstWrite, t.PromotedAt, t.FirstWriteAt)
	return out
}
