package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs that mean the server exists but does not take connections yet
// (starting up, shutting down, in crash recovery).
const (
	sqlstateCannotConnectNow = "57P03"
	sqlstateAdminShutdown    = "57P01"
	sqlstateCrashShutdown    = "57P02"
	sqlstateDuplicateObject  = "42710"
	sqlstateUndefinedObject  = "42704"
	sqlstateObjectInUse      = "55006"
	sqlstateUndefinedFile    = "58P01" // e.g. a WAL segment already removed
)

// withConn runs fn on the persistent superuser connection, dialling it when
// there is none. A connection that fails for a reason other than an SQL
// error is dropped; if it was an old one (the server may have restarted
// since), fn runs once more on a fresh connection, so callers pass only
// idempotent work. Calls are serialized.
func (i *Instance) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	i.connMu.Lock()
	defer i.connMu.Unlock()
	for attempt := 0; ; attempt++ {
		if i.conn != nil && i.conn.IsClosed() {
			i.conn = nil
		}
		reused := i.conn != nil
		if !reused {
			conn, err := i.dial(ctx)
			if err != nil {
				return err
			}
			i.conn = conn
		}
		err := fn(i.conn)
		if err == nil || (isSQLError(err) && !i.conn.IsClosed()) {
			return err
		}
		i.dropConnLocked(ctx)
		if reused && attempt == 0 && ctx.Err() == nil {
			i.log.Debug("postgres connection broken; re-dialling", "err", err)
			continue
		}
		if isNotRunning(err) {
			return fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return err
	}
}

// dropConnLocked closes the persistent connection, saying goodbye
// (Terminate) bounded by ctx; connMu must be held.
func (i *Instance) dropConnLocked(ctx context.Context) {
	if i.conn == nil {
		return
	}
	_ = i.conn.Close(ctx)
	i.conn = nil
}

// dial opens a superuser connection to the local server. Failing to reach
// it (refused, timeout, starting up, shutting down) is ErrNotRunning; other
// failures (e.g. a wrong password) are returned as they are.
func (i *Instance) dial(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(i.ConnString())
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if isNotRunning(err) {
			return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return conn, nil
}

// dialUpstream opens a short-lived superuser connection to another member.
func (i *Instance) dialUpstream(ctx context.Context, up Upstream) (*pgx.Conn, error) {
	dsn := connString(
		"host", up.Host,
		"port", fmt.Sprint(up.Port),
		"user", i.cfg.Superuser.Username,
		"password", i.cfg.Superuser.Password.Reveal(),
		"dbname", "postgres",
		"application_name", "regent",
		"connect_timeout", "3",
	)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", up.Member, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", up.Member, err)
	}
	return conn, nil
}

// isSQLError reports whether err is an error the server sent for a
// statement while the session stays usable.
func isSQLError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return !strings.HasPrefix(pgErr.Code, "57P") && !strings.HasPrefix(pgErr.Code, "08")
}

// isNotRunning classifies connection failures that mean the server does
// not accept connections.
func isNotRunning(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateCannotConnectNow, sqlstateAdminShutdown, sqlstateCrashShutdown:
			return true
		}
		return false
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.As(err, &netErr) || pgconn.Timeout(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr)
}
