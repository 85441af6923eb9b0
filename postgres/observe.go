package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// statusSQL reads everything but pg_stat_replication in one row. Functions
// that fail in recovery (pg_current_wal_lsn, pg_walfile_name) or out of it
// (pg_get_wal_replay_pause_state) are guarded by the recovery flag, read
// once in a CTE so both guards agree.
//
// Timeline: on a primary it is parsed from pg_walfile_name of the current
// LSN (pg_control_checkpoint() still says the old timeline right after a
// promote, until the end-of-recovery checkpoint completes). In recovery it
// is the greatest of the WAL receiver's received_tli, the last
// checkpoint's (restartpoint's) timeline, the minimum recovery timeline and
// the newest timeline of a WAL segment in pg_wal: timelines only grow along
// a history, so the greatest is the one the replica has reached.
//
// Segments, not .history files: a replica that cannot follow a promotion
// (it replayed past the fork point: a former primary) still fetches the
// new timeline's history file, but is only ever sent WAL of its own
// timeline; counting the history file would hide its divergence.
const statusSQL = `
WITH r AS (SELECT pg_is_in_recovery() AS rec),
     c AS (SELECT CASE WHEN r.rec THEN NULL ELSE pg_current_wal_lsn() END AS lsn FROM r)
SELECT r.rec,
       c.lsn::text,
       pg_walfile_name(c.lsn),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       CASE WHEN r.rec THEN pg_get_wal_replay_pause_state() <> 'not paused' ELSE false END,
       pg_last_xact_replay_timestamp(),
       coalesce(w.status = 'streaming', false),
       coalesce(w.received_tli, 0)::bigint,
       (SELECT timeline_id FROM pg_control_checkpoint())::bigint,
       (SELECT min_recovery_end_timeline FROM pg_control_recovery())::bigint,
       CASE WHEN r.rec THEN (SELECT coalesce(max(('x' || substr(name, 1, 8))::bit(32)::bigint), 0)
                              FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') ELSE 0 END,
       (SELECT system_identifier FROM pg_control_system()),
       current_setting('server_version_num')::int,
       pg_postmaster_start_time(),
       EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart)
FROM r CROSS JOIN c
LEFT JOIN (SELECT status, received_tli FROM pg_stat_wal_receiver LIMIT 1) w ON true`

const replicationSQL = `
SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''),
       coalesce(host(client_addr), ''), coalesce(state, ''), coalesce(sync_state, ''),
       coalesce(sync_priority, 0), sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text
FROM pg_stat_replication ORDER BY application_name, pid`

// statusRow holds the nullable columns of statusSQL.
type statusRow struct {
	current, walfile, receive, replay *string
	replayedAt                        *time.Time
	receivedTLI, checkpointTLI, minTL int64
	// segmentTL is the newest timeline of a WAL segment in pg_wal: a
	// replica that followed a promotion keeps it after its upstream is
	// gone, when the receiver row and the restartpoint still say older.
	segmentTL int64
	systemID  int64
}

// Status observes the local server in one round trip (two pipelined
// queries) over the persistent connection, re-dialled when broken. When the
// server does not accept connections the error wraps ErrNotRunning and the
// Status is the zero value. Safe for concurrent use.
//
// Timeline: on a primary, parsed from pg_walfile_name(pg_current_wal_lsn())
// (pg_control_checkpoint() lags right after a promote and is only the
// fallback); in recovery, the greatest of pg_stat_wal_receiver.received_tli,
// the last restartpoint's timeline, pg_control_recovery()'s
// min_recovery_end_timeline and the newest WAL segment's timeline.
func (i *Instance) Status(ctx context.Context) (Status, error) {
	var st Status
	var row statusRow
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		st, row = Status{}, statusRow{}
		b := &pgx.Batch{}
		b.Queue(statusSQL).QueryRow(func(r pgx.Row) error {
			return r.Scan(&st.InRecovery, &row.current, &row.walfile, &row.receive, &row.replay,
				&st.ReplayPaused, &row.replayedAt, &st.Streaming, &row.receivedTLI, &row.checkpointTLI,
				&row.minTL, &row.segmentTL, &row.systemID, &st.ServerVersion, &st.PostmasterStart, &st.PendingRestart)
		})
		b.Queue(replicationSQL).Query(func(rows pgx.Rows) error {
			var err error
			st.Replication, err = scanReplicas(rows)
			return err
		})
		return conn.SendBatch(ctx, b).Close()
	})
	if err == nil {
		err = fillStatus(&st, row)
	}
	if err != nil {
		return Status{}, fmt.Errorf("postgres status: %w", err)
	}
	st.Running = true
	return st, nil
}

func fillStatus(st *Status, row statusRow) error {
	var err error
	parse := func(s *string) LSN {
		if s == nil || err != nil {
			return 0
		}
		var l LSN
		l, err = ParseLSN(*s)
		return l
	}
	st.CurrentLSN, st.ReceiveLSN, st.ReplayLSN = parse(row.current), parse(row.receive), parse(row.replay)
	if err != nil {
		return err
	}
	if row.replayedAt != nil {
		st.ReplayedAt = *row.replayedAt
	}
	st.SystemID = uint64(row.systemID)
	if st.InRecovery {
		st.Timeline = uint32(max(row.receivedTLI, row.checkpointTLI, row.minTL, row.segmentTL))
		return nil
	}
	st.Timeline = uint32(row.checkpointTLI)
	if row.walfile != nil {
		tl, err := timelineFromWALFile(*row.walfile)
		if err != nil {
			return err
		}
		st.Timeline = tl
	}
	return nil
}

// timelineFromWALFile parses the timeline (first 8 hex digits) of a WAL
// segment file name.
func timelineFromWALFile(name string) (uint32, error) {
	if len(name) < 8 {
		return 0, fmt.Errorf("bad wal file name %q", name)
	}
	tl, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad wal file name %q: %w", name, err)
	}
	return uint32(tl), nil
}

func scanReplicas(rows pgx.Rows) ([]Replica, error) {
	var out []Replica
	for rows.Next() {
		var r Replica
		var sent, write, flush, replay *string
		if err := rows.Scan(&r.PID, &r.Usename, &r.ApplicationName, &r.ClientAddr, &r.State,
			&r.SyncState, &r.SyncPriority, &sent, &write, &flush, &replay); err != nil {
			return nil, err
		}
		for _, p := range []struct {
			s   *string
			dst *LSN
		}{{sent, &r.SentLSN}, {write, &r.WriteLSN}, {flush, &r.FlushLSN}, {replay, &r.ReplayLSN}} {
			if p.s == nil {
				continue
			}
			l, err := ParseLSN(*p.s)
			if err != nil {
				return nil, err
			}
			*p.dst = l
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
