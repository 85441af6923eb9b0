package postgres

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// TimelineSwitch is one line of a timeline .history file: Timeline (a
// parent) ended at SwitchLSN, where its child timeline begins.
type TimelineSwitch struct {
	Timeline  uint32
	SwitchLSN LSN
	Reason    string
}

// ParseTimelineHistory parses the text of a <TLI>.history file: one
// "parentTLI<TAB>switchpoint<TAB>reason" line per ancestor, blank lines and
// '#' comments ignored. Timelines must increase.
func ParseTimelineHistory(text string) ([]TimelineSwitch, error) {
	var out []TimelineSwitch
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline history line %d: %q: want timeline and switch point", n, line)
		}
		tl, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || tl == 0 {
			return nil, fmt.Errorf("timeline history line %d: bad timeline %q", n, f[0])
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history line %d: %w", n, err)
		}
		if len(out) > 0 && uint32(tl) <= out[len(out)-1].Timeline {
			return nil, fmt.Errorf("timeline history line %d: timeline %d does not increase", n, tl)
		}
		reason := ""
		if len(f) > 2 {
			// Keep the reason as written, after the first two fields.
			_, rest, _ := strings.Cut(line, f[1])
			reason = strings.TrimSpace(rest)
		}
		out = append(out, TimelineSwitch{Timeline: uint32(tl), SwitchLSN: lsn, Reason: reason})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("timeline history: %w", err)
	}
	return out, nil
}

// NeedsRewind reports whether a server whose local WAL ends at localLSN
// (exclusive: the first byte past its last record — ControlData.WALEnd,
// or a running replica's replay LSN) on localTimeline has diverged from an
// upstream on upstreamTimeline whose history (the upstream timeline's
// .history file) is given. It is pure.
//
//   - same timeline: never (a lagging or leading upstream on the same
//     timeline has not forked; streaming resumes where it can);
//   - local timeline is an ancestor in the history: diverged when local
//     WAL goes past the point where that timeline ended (localLSN >
//     SwitchLSN); at or before it the server can follow the new timeline;
//   - local timeline not in the history (a sibling or newer timeline):
//     diverged.
func NeedsRewind(localTimeline uint32, localLSN LSN, upstreamTimeline uint32, history []TimelineSwitch) bool {
	if localTimeline == upstreamTimeline {
		return false
	}
	for _, s := range history {
		if s.Timeline == localTimeline {
			return localLSN > s.SwitchLSN
		}
	}
	return true
}

// TimelineHistory reads the upstream's pg_wal/<timeline>.history with
// pg_read_file over a short-lived superuser connection and parses it.
// Timeline 1 has no history: nil.
func (i *Instance) TimelineHistory(ctx context.Context, from Upstream, timeline uint32) ([]TimelineSwitch, error) {
	if timeline <= 1 {
		return nil, nil
	}
	conn, err := i.dialUpstream(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("timeline history: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }() // a read-only session: closing can lose nothing
	var text string
	path := fmt.Sprintf("pg_wal/%08X.history", timeline)
	if err := conn.QueryRow(ctx, "SELECT pg_read_file($1)", path).Scan(&text); err != nil {
		return nil, fmt.Errorf("timeline history: read %s on %s: %w", path, from.Member, err)
	}
	return ParseTimelineHistory(text)
}

// SourceCheckpointTimeline reads the timeline of the latest checkpoint in
// a rewind source's control file (pg_control_checkpoint()), over a
// short-lived superuser connection. With checkpoint it first runs
// CHECKPOINT there: on a standby that is a restartpoint, which moves the
// control file to the newest checkpoint record the standby replayed.
//
// Why: PostgreSQL 15's pg_rewind compares the checkpoint timelines of the
// two control files. A source that just switched timeline (a promoted
// primary before its first checkpoint, a standby leader that followed a
// remote failover before its next restartpoint) still shows the old one,
// and pg_rewind then reports "no rewind required" and copies nothing.
func (i *Instance) SourceCheckpointTimeline(ctx context.Context, from Upstream, checkpoint bool) (uint32, error) {
	conn, err := i.dialUpstream(ctx, from)
	if err != nil {
		return 0, fmt.Errorf("rewind source checkpoint: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }() // CHECKPOINT completes or not on its own: closing loses nothing
	if checkpoint {
		if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
			return 0, fmt.Errorf("rewind source checkpoint: CHECKPOINT on %s: %w", from.Member, err)
		}
	}
	var tl int64
	if err := conn.QueryRow(ctx, "SELECT timeline_id::bigint FROM pg_control_checkpoint()").Scan(&tl); err != nil {
		return 0, fmt.Errorf("rewind source checkpoint: read the control file of %s: %w", from.Member, err)
	}
	return uint32(tl), nil
}
