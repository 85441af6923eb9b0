package agent

import "time"

// switchoverClock measures a switchover's timeouts on this host's own
// monotonic clock. The record's CreatedAt and event times are written by
// other hosts (any member can create the record, the old and new leaders
// write events), so comparing them with this host's clock would let clock
// skew shorten or stretch a timeout. The clock starts when this agent
// first sees the record, and again when it first sees each stage: a
// timeout can only come later than the record says, never earlier.
type switchoverClock struct {
	id          string
	firstSeen   time.Time
	stage       string
	stageSeenAt time.Time
}

// observe notes the record at now and returns how long this agent has
// seen the switchover, and its current stage.
func (c *switchoverClock) observe(r *SwitchoverRecord, now time.Time) (total, inStage time.Duration) {
	if c.id != r.ID {
		*c = switchoverClock{id: r.ID, firstSeen: now}
	}
	if c.stage != r.Stage {
		c.stage, c.stageSeenAt = r.Stage, now
	}
	return now.Sub(c.firstSeen), now.Sub(c.stageSeenAt)
}
