package agent

// Before a rewind: is the source ready (its control file on the timeline
// it is on), and has a stopped server diverged from its upstream. The
// decisions are pure (rewindsource_test.go); the I/O is in follow.go.

import (
	"fmt"

	"github.com/regent-ha/regent/postgres"
)

// rewindSourceReady decides whether pg_rewind may run against a source
// whose control file's latest checkpoint is on controlTL, to bring this
// server onto target (the timeline the source is on). PostgreSQL 15's
// pg_rewind compares the control files' checkpoint timelines: below
// target it finds "no rewind required" and copies nothing, leaving a
// server that can never start ("requested timeline N does not contain
// minimum recovery point"). why says what is awaited when not ready.
func rewindSourceReady(controlTL, target uint32, err error) (ready bool, why string) {
	switch {
	case err != nil:
		return false, fmt.Sprintf("cannot checkpoint the rewind source or read its control file: %v", err)
	case controlTL < target:
		return false, fmt.Sprintf("the rewind source's latest checkpoint is on timeline %d, not yet on its timeline %d (a standby's restartpoint needs a replayed checkpoint record of that timeline)", controlTL, target)
	}
	return true, ""
}

// stoppedDiverged decides, from the control file of a stopped server,
// whether it diverged from an upstream on upstreamTL whose timeline
// history is given: the same comparison the running check makes with the
// replay position (NeedsRewind), taking the end of local WAL from
// pg_controldata (ControlData.WALEnd). After an unclean stop the end is
// unknown: any other timeline counts as diverged (pg_rewind runs crash
// recovery itself).
func stoppedDiverged(cd postgres.ControlData, upstreamTL uint32, history []postgres.TimelineSwitch) bool {
	tl, end, clean := cd.WALEnd()
	if !clean {
		return tl != upstreamTL
	}
	return postgres.NeedsRewind(tl, end, upstreamTL, history)
}
