package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultWait is pg_ctl's -t when the ctx has no deadline.
const defaultWait = 60 * time.Second

// pollInterval is how often Promote and Stop look at the server again.
// Short, because failover time is measured in these steps.
const pollInterval = 20 * time.Millisecond

// logFile is PostgreSQL's stderr log, captured by pg_ctl -l.
func (i *Instance) logFile() string {
	return filepath.Join(i.cfg.DataDir, "log", "postgresql.log")
}

// Start runs pg_ctl start -w with the log at <data_dir>/log/postgresql.log,
// waiting as long as the ctx deadline allows (60 s without one). A failure
// carries the tail of the log. A postmaster already running is success.
func (i *Instance) Start(ctx context.Context) error {
	pid, err := i.PostmasterPID()
	switch {
	case err == nil:
		i.log.Info("postgres already running", "pid", pid)
		return nil
	case errors.Is(err, ErrNotRunning):
		// A postmaster.pid naming a live process that is not ours (pid
		// reused after a crash or reboot) would make PostgreSQL refuse to
		// start.
		if removed, err := removeFile(filepath.Join(i.cfg.DataDir, "postmaster.pid")); err != nil {
			return fmt.Errorf("start postgres: %w", err)
		} else if removed {
			i.log.Warn("removed stale postmaster.pid")
		}
	default:
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := i.ensureDir(filepath.Dir(i.logFile()), 0o700); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	i.log.Info("starting postgres", "data_dir", i.cfg.DataDir)
	logStart := i.logSize()
	_, err = i.run(ctx, nil, "pg_ctl", "start", "-w", "-D", i.cfg.DataDir, "-l", i.logFile(),
		"-t", waitSeconds(ctx))
	if err != nil {
		if strings.Contains(i.logSince(logStart, 64<<10), notChildMessage) {
			err = errors.Join(err, ErrDivergedHistory)
		}
		return fmt.Errorf("start postgres: %w\nlog tail:\n%s", err, i.LogTail(4096))
	}
	return nil
}

// ErrDivergedHistory: the standby cannot start because its data directory
// went past the point where the timeline it must follow forked off (it
// replayed WAL its upstream never had, and pg_rewind found nothing to
// undo: a checkpoint exactly at the fork). Only a new copy helps.
var ErrDivergedHistory = errors.New("data directory diverged from the upstream's timeline history")

// notChildMessage is PostgreSQL's FATAL for ErrDivergedHistory
// ("requested timeline %u is not a child of this server's history").
const notChildMessage = "is not a child of this server's history"

// logSize is the log file's size (0 when absent): where a start's lines begin.
func (i *Instance) logSize() int64 {
	st, err := os.Stat(i.logFile())
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince returns at most n bytes of the log written from offset off on.
func (i *Instance) logSince(off int64, n int) string {
	f, err := os.Open(i.logFile())
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only: a failed close loses nothing
	buf := make([]byte, n)
	k, _ := f.ReadAt(buf, off)
	return string(buf[:k])
}

// LogTail returns up to n bytes from the end of PostgreSQL's log file, for
// error messages and test output.
func (i *Instance) LogTail(n int) string {
	f, err := os.Open(i.logFile())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer func() { _ = f.Close() }() // read-only: a failed close loses nothing
	st, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(st.Size()-int64(n), 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(string(buf), n)
}

// waitSeconds turns the ctx deadline into pg_ctl's -t argument.
func waitSeconds(ctx context.Context) string {
	d := defaultWait
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// Promote signals the promotion (pg_promote(wait => false), pg_ctl
// promote -W as the fallback; bounded by ctx) and then waits until
// pg_is_in_recovery() is false.
func (i *Instance) Promote(ctx context.Context) error {
	i.log.Info("promoting postgres")
	// pg_promote(false) on the open connection signals the postmaster as
	// pg_ctl promote -W does, without starting a process (tens of ms on a
	// busy host, inside a switchover's write gap). Neither waits: the loop
	// below sees the end of recovery within promotePoll (one query on the
	// open connection; PostgreSQL 15's own waits poll at 100 ms), and the
	// routers (docs/routing.md) send traffic here from that moment.
	var signalled bool
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&signalled)
	})
	if err != nil || !signalled {
		i.log.Info("pg_promote() did not signal the promotion; promoting with pg_ctl", "err", err)
		if _, err := i.run(ctx, nil, "pg_ctl", "promote", "-W", "-D", i.cfg.DataDir); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
	}
	for {
		var inRecovery bool
		err := i.withConn(ctx, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		})
		if err == nil && !inRecovery {
			return nil
		}
		if err == nil {
			err = errors.New("pg_is_in_recovery() is true")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote: still in recovery (last check: %w): %w", err, ctx.Err())
		case <-time.After(promotePoll):
		}
	}
}

// promotePoll is how often Promote asks whether recovery has ended.
const promotePoll = 5 * time.Millisecond

// Checkpoint runs CHECKPOINT (after a promote, so the old primary can
// rewind against a control file on the new timeline).
func (i *Instance) Checkpoint(ctx context.Context) error {
	return i.exec(ctx, "checkpoint", "CHECKPOINT")
}

// ProbeWrite proves the server accepts writes: assigning a transaction id
// fails on a server in recovery ("cannot assign TransactionIds during
// recovery") and succeeds only on a writable primary. It commits with
// synchronous_commit local: it proves the server writes, and a
// synchronous standby that has not connected yet cannot hold it.
func (i *Instance) ProbeWrite(ctx context.Context) error {
	return i.exec(ctx, "write probe", "BEGIN; SET LOCAL synchronous_commit = local; SELECT txid_current(); COMMIT")
}

// exec runs one statement on the agent's connection; what names it in
// the error.
func (i *Instance) exec(ctx context.Context, what, sql string) error {
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Reload makes the server re-read its configuration (pg_ctl reload).
func (i *Instance) Reload(ctx context.Context) error {
	if _, err := i.PostmasterPID(); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if _, err := i.run(ctx, nil, "pg_ctl", "reload", "-D", i.cfg.DataDir); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// errStopFailed is returned when even SIGKILL did not end the server.
var errStopFailed = errors.New("still alive after SIGKILL")
