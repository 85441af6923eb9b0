package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// connectTimeout: short, so a stalled or fenced node shows up as an error
// inside a Poll rather than as a hung test.
const connectTimeout = 2 * time.Second

// ConnConfig returns a superuser connection config for the node's
// PostgreSQL (connect timeout 2 s; no statement timeout: bound it by ctx).
func (n *Node) ConnConfig() *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(fmt.Sprintf(
		"host=127.0.0.1 port=%d user=%s password=%s dbname=postgres sslmode=disable",
		n.PGPort, SuperuserName, SuperuserPassword))
	if err != nil { // the string above is constant but for the port
		panic(fmt.Sprintf("testcluster: bad connection string: %v", err))
	}
	cfg.ConnectTimeout = connectTimeout
	cfg.RuntimeParams["application_name"] = "testcluster"
	return cfg
}

// Connect opens a superuser connection; the caller closes it.
func (n *Node) Connect(ctx context.Context) (*pgx.Conn, error) {
	return Connect(ctx, n.Name, n.ConnConfig())
}

// Connect opens a connection with cfg to the server called name (in the
// error); the caller closes it (CloseConn). internal/chaos connects to its
// own nodes through it.
func Connect(ctx context.Context, name string, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", name, err)
	}
	return conn, nil
}

// DB opens a superuser connection that is closed at the test's cleanup
// (before the cluster stops). It fails the test if it cannot connect.
func (n *Node) DB(t testing.TB, ctx context.Context) *pgx.Conn {
	t.Helper()
	conn, err := n.Connect(ctx)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	t.Cleanup(func() { CloseConn(ctx, conn) })
	return conn
}

// Exec runs sql on a fresh superuser connection (so it works across
// restarts and role changes) and closes it. Bound it with ctx.
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := n.Connect(ctx)
	if err != nil {
		return err
	}
	defer CloseConn(ctx, conn)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("exec on %s: %w", n.Name, err)
	}
	return nil
}

// QueryInt runs a query returning one integer (e.g. count(*)) on a fresh
// connection.
func (n *Node) QueryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	return QueryInt(ctx, n.Name, n.ConnConfig(), sql, args...)
}

// QueryInt runs a query returning one integer on a fresh connection with
// cfg to the server called name (see Connect), and closes it.
func QueryInt(ctx context.Context, name string, cfg *pgx.ConnConfig, sql string, args ...any) (int64, error) {
	conn, err := Connect(ctx, name, cfg)
	if err != nil {
		return 0, err
	}
	defer CloseConn(ctx, conn)
	var v int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		return 0, fmt.Errorf("query on %s: %w", name, err)
	}
	return v, nil
}

// CloseConn closes conn (a nil one is no connection) even when ctx is
// done, bounded by connectTimeout (the server may be frozen).
func CloseConn(ctx context.Context, conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), connectTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// Status returns the node's GET /patroni document (numbers as json.Number).
func (n *Node) Status(ctx context.Context) (map[string]any, error) {
	code, body, err := n.Get(ctx, "/patroni")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /patroni on %s: status %d: %s", n.Name, code, body)
	}
	st, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("GET /patroni on %s: %w (body %q)", n.Name, err, body)
	}
	return st, nil
}

// decodeObject parses a JSON object keeping numbers exact (json.Number):
// system identifiers and LSNs do not fit a float64.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
