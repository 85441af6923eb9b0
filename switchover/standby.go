package switchover

// A standby cluster's switchover (Record.Standby) runs the same stages
// with a standby leader on both ends (docs/disaster-recovery.md):
//
//   - QUIESCE_WRITES stops the old standby leader (a restartpoint, then a
//     fast stop); it takes no writes, so nothing is fenced, and the
//     routers are not paused (no writes to hold).
//   - Its final position is the end of the WAL it had: the greater of the
//     received and replayed positions read right before the stop and the
//     minimum recovery ending location pg_control records at the stop
//     (FinalPosition). A standby writes no shutdown checkpoint to WAL.
//   - WAIT_FOR_REPLICATION_CATCHUP: the candidate, which cascades from it,
//     has replayed up to that position (CaughtUp).
//   - PROMOTE_STANDBY: the old leader names the candidate in the failover
//     key and releases the leader key; the candidate takes it by the
//     ordinary create-if-absent race and, in a standby cluster, stays in
//     recovery and turns to the remote cluster (no pg_promote). The stage
//     completes when it runs in recovery holding the key.
//   - No write probe in validation: the new standby leader must stay in
//     recovery; the old leader streaming from it is what is checked.

import (
	"errors"

	"github.com/regent-ha/regent/postgres"
)

// CaughtUp reports whether a candidate that replayed up to replayed may
// take over. A primary's FinalLSN is the start of its shutdown checkpoint
// record, which the candidate must have replayed past; a standby
// leader's is the end of its WAL, which the candidate must have reached.
func (r *Record) CaughtUp(replayed postgres.LSN) bool {
	if r.Standby {
		return uint64(replayed) >= r.FinalLSN
	}
	return uint64(replayed) > r.FinalLSN
}

// errNoStandbyPosition: neither reading gave the old standby leader's
// position, so no catch-up could be checked against it.
var errNoStandbyPosition = errors.New("neither the position read before the stop nor pg_control's minimum recovery ending location is known")

// errLeftRecovery: the old standby leader stopped as a primary
// (promote-cluster during the switchover): its writes after the position
// read before the stop are past it, so it is no end of its WAL.
var errLeftRecovery = errors.New("the old standby leader stopped as a primary (standby_cluster removed meanwhile?)")

// FinalPosition is the old leader's final LSN after its stop: a primary's
// shutdown checkpoint from pg_control; for a standby leader (standby),
// the greater of lastSeen (its received/replayed position read right
// before the stop; 0 when that read failed) and pg_control's minimum
// recovery ending location, which the stop's restartpoint raised to what
// it had replayed. A standby leader that stopped as a primary (its
// pg_control says so) fails: the switchover is tried again from scratch.
func FinalPosition(standby bool, cd postgres.ControlData, lastSeen postgres.LSN) (postgres.LSN, error) {
	if !standby {
		return cd.CheckpointLSN, nil
	}
	if cd.State == postgres.StateShutDown || cd.State == postgres.StateInProduction {
		return 0, errLeftRecovery
	}
	final := max(lastSeen, cd.MinRecoveryEndLSN)
	if final == 0 {
		return 0, errNoStandbyPosition
	}
	return final, nil
}
