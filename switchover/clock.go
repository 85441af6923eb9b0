package switchover

import "time"

// Clock measures a switchover's timeouts on this host's own monotonic
// clock. The record's CreatedAt and event times are written by other
// hosts (any member can create the record, the old and new leaders write
// events), so comparing them with this host's clock would let clock skew
// shorten or stretch a timeout. The clock starts when this agent first
// sees the record, and again when it first sees each stage: a timeout can
// only come later than the record says, never earlier.
//
// The zero Clock is ready; it is owned by one goroutine (the HA loop).
type Clock struct {
	id          string
	firstSeen   time.Time
	stage       Stage
	stageSeenAt time.Time
}

// Observe notes the record at now and returns how long this agent has
// seen the switchover, and its current stage.
func (c *Clock) Observe(r *Record, now time.Time) (total, inStage time.Duration) {
	if c.id != r.ID {
		*c = Clock{id: r.ID, firstSeen: now}
	}
	if c.stage != r.Stage {
		c.stage, c.stageSeenAt = r.Stage, now
	}
	return now.Sub(c.firstSeen), now.Sub(c.stageSeenAt)
}
