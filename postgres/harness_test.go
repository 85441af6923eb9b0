package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regent-ha/regent/internal/freeport"
)

// Passwords with quotes, backslashes and spaces prove the quoting of
// postgresql.conf, conninfo strings and SQL literals end to end.
const (
	testSuperPassword = `su'per\"pw x`
	testReplPassword  = `re'p\l pw`
)

// pgSysProcAttr runs PostgreSQL as the postgres OS user when the tests run
// as root (PostgreSQL refuses root); otherwise as the current user.
func pgSysProcAttr(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs a postgres OS user to run PostgreSQL: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// requirePostgres fails (never silently skips) when PostgreSQL 15 is absent;
// -short skips the integration tests explicitly.
func requirePostgres(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test with real PostgreSQL; not run with -short")
	}
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "initdb")); err != nil {
		t.Fatalf("PostgreSQL binaries not found: %v", err)
	}
}

// freePort picks a free TCP port on 127.0.0.1, below the ephemeral range.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// testDir returns a temporary directory the PostgreSQL user can traverse
// (t.TempDir and its parent are 0700 and owned by the test's user).
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newTestInstance builds an Instance with a data dir under a fresh
// temporary directory, listening on a free loopback port, tuned small and
// fast for tests. Cleanup stops the server and prints its log on failure.
func newTestInstance(t *testing.T, name string) *Instance {
	t.Helper()
	requirePostgres(t)
	cfg := Config{
		DataDir:     filepath.Join(testDir(t), "data"),
		Listen:      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Superuser:   Credentials{Username: "postgres", Password: testSuperPassword},
		Replication: Credentials{Username: "replicator", Password: testReplPassword},
		Parameters: map[string]any{
			"shared_buffers":  "16MB",
			"fsync":           false,
			"max_connections": 20,
			"log_line_prefix": "%m [%p] ",
		},
		StopTimeout: 10 * time.Second,
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", name)
	inst, err := New(Options{Config: cfg, Name: name, Logger: log, SysProcAttr: pgSysProcAttr(t), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled here.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 15*time.Second)
		defer cancel()
		if _, err := inst.Stop(ctx, StopImmediate, 5*time.Second); err != nil {
			t.Errorf("cleanup: stop %s: %v", name, err)
		}
		inst.Close()
		if t.Failed() {
			t.Logf("%s postgresql.log tail:\n%s", name, inst.LogTail(8000))
		}
	})
	return inst
}

// upstreamOf is how other members reach inst.
func upstreamOf(inst *Instance) Upstream {
	host, port := splitHostPort(inst.Config().ConnectAddress)
	return Upstream{Member: inst.name, Host: host, Port: port}
}

// execSQL runs one statement on inst.
func execSQL(t *testing.T, inst *Instance, sql string, args ...any) {
	t.Helper()
	onConn(t, inst, sql, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	})
}

// queryInt runs a query returning one integer on inst.
func queryInt(t *testing.T, inst *Instance, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	onConn(t, inst, sql, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql, args...).Scan(&n)
	})
	return n
}

// onConn runs fn on a fresh superuser connection to inst, bounded by 10 s;
// an error fails the test naming sql.
func onConn(t *testing.T, inst *Instance, sql string, fn func(ctx context.Context, conn *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, inst.ConnString())
	if err != nil {
		t.Fatalf("connect to %s: %v", inst.name, err)
	}
	defer conn.Close(ctx)
	if err := fn(ctx, conn); err != nil {
		t.Fatalf("%s on %s: %v", sql, inst.name, err)
	}
}

// waitFor polls cond until it reports true or the timeout passes; cond's
// string says what it last saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if seen != "" {
			last = seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// statusOf is Status with a short deadline, failing the test on errors
// other than ErrNotRunning.
func statusOf(t *testing.T, inst *Instance) (Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := inst.Status(ctx)
	if err != nil && !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status of %s: %v", inst.name, err)
	}
	return st, err
}

// ownedByPG checks path belongs to the user PostgreSQL runs as.
func ownedByPG(t *testing.T, inst *Instance, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := os.Geteuid()
	if inst.uid >= 0 {
		want = inst.uid
	}
	if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid != want {
		t.Errorf("%s is owned by uid %d, want %d", path, uid, want)
	}
}
