package agent

import (
	"fmt"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// WALSeen is the agent's memory of its own WAL position across ticks:
// the position the previous tick observed and when it last changed. The
// loop keeps it (noteWAL); decide only reads the copy in the Snapshot.
type WALSeen struct {
	LSN     postgres.LSN
	MovedAt time.Time
}

// noteWAL is the loop's update of w with this tick's observation: the
// receive/replay position of a running replica. Anything else (a primary,
// a stopped server) forgets it, so a later replica starts afresh.
func (w WALSeen) noteWAL(pg PGState, now time.Time) WALSeen {
	if !pg.Running || !pg.Status.InRecovery {
		return WALSeen{}
	}
	if cur := pg.Status.WALPosition(); cur != w.LSN {
		return WALSeen{LSN: cur, MovedAt: now}
	}
	return w
}

// raceBackoff is Patroni's primary_race_backoff: with no leader, a replica
// whose received WAL still advances stays out of the race, so the race
// compares settled positions (a backlog behind a slow link drains first)
// and a primary that still streams is not replaced at once. "Still
// advances": the position differs from the previous tick's, or moved less
// than loop_wait ago (ticks wake early on watch events, so two ticks may
// be too close to see a trickle move). Bounded: from primary_race_backoff
// after this agent saw the cluster leaderless it races anyway. Without a
// previous observation (the first tick) nothing is known to move.
// It returns why not to race, "" to race.
//
// Safety: it only ever withholds a race, never starts one, so it cannot
// promote anything the other rules would not.
func raceBackoff(s Snapshot) string {
	bound := s.Config.PrimaryRaceBackoff
	prev := s.WALSeen
	if bound <= 0 || prev.LSN == 0 || s.LeaderlessSince.IsZero() {
		return ""
	}
	cur := s.PG.Status.WALPosition()
	movedAt := prev.MovedAt
	if cur != prev.LSN {
		movedAt = s.Now
	}
	leaderless := s.Now.Sub(s.LeaderlessSince)
	if s.Now.Sub(movedAt) >= s.Config.LoopWait || leaderless >= bound {
		return ""
	}
	return fmt.Sprintf("received WAL still advancing (%s, moved %s ago); waiting for it to settle (leaderless %s of primary_race_backoff %s)",
		cur, s.Now.Sub(movedAt).Round(time.Millisecond), leaderless.Round(time.Millisecond), bound)
}
