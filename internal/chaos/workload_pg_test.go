package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/postgres"
)

// TestWorkloadReadsAgainstAStuckSynchronousWait runs the workload's own
// operations on a real PostgreSQL whose synchronous standby never answers
// (synchronous_standby_names names a standby that does not exist), as on
// a primary cut from its standbys. It pins down the PostgreSQL behaviour
// the linearizability check rests on:
//   - a write times out (unknown), and the client's cancel request ends
//     its synchronous wait: the commit becomes visible locally;
//   - a plain read then returns it, acknowledged, although no standby has
//     it (what the long runs found, and why plain reads do not gate);
//   - a durable read never acknowledges it while the standby is missing,
//     and does in a session that does not wait for standbys
//     (synchronous_commit = local): the wait is what holds it back.
func TestWorkloadReadsAgainstAStuckSynchronousWait(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL; not run with -short")
	}
	inst := standalonePostgres(t, "nosuch")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	connect := func(params map[string]string) *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(inst.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range params {
			cfg.RuntimeParams[k] = v
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testcluster.CloseConn(ctx, conn) })
		return conn
	}
	local := connect(map[string]string{"synchronous_commit": "local"})
	if _, err := local.Exec(ctx, schemaSQL); err != nil {
		t.Fatal(err)
	}
	w := &Workload{clock: NewClock()}
	var conn *pgx.Conn
	run := func(op Op) Op { // on a session that waits for the standby
		t.Helper()
		if conn == nil || conn.IsClosed() {
			conn = connect(nil)
		}
		return w.do(ctx, conn, op)
	}

	if op := w.do(ctx, local, Op{Kind: OpWrite, Key: 1, Value: 10}); op.Outcome != OK || op.Timeline != 1 {
		t.Fatalf("write not waiting for a standby: %s", op)
	}
	if op := run(Op{Kind: OpWrite, Key: 1, Value: 20}); op.Outcome != Unknown {
		t.Fatalf("write with a missing synchronous standby: %s, want unknown after the %s timeout", op, opTimeout)
	}
	// pgx sends the cancel request as it closes the timed-out connection:
	// wait until no backend waits for the standby any more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := local.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still wait for the synchronous standby 10 s after the client's timeout", waiting)
		}
		time.Sleep(20 * time.Millisecond) // polling pg_stat_activity
	}
	if op := run(Op{Kind: OpRead, Plain: true, Key: 1}); op.Outcome != OK || op.Value != 20 || op.Timeline != 1 {
		t.Fatalf("plain read after the cancelled wait: %s, want v=20 acknowledged; if PostgreSQL no longer exposes a cancelled wait's commit, revisit the plain-read check", op)
	}
	if op := run(Op{Kind: OpRead, Key: 1}); op.Outcome == OK {
		t.Fatalf("durable read acknowledged with no synchronous standby: %s", op)
	}
	if op := w.do(ctx, local, Op{Kind: OpRead, Key: 1}); op.Outcome != OK || op.Value != 20 {
		t.Fatalf("durable read in a session not waiting for a standby: %s, want v=20", op)
	}
	// An absent row leaves a durable read nothing to lock: it answers 0 at
	// once (no commit of the row can be pending on this server).
	if op := run(Op{Kind: OpRead, Key: 2}); op.Outcome != OK || op.Value != 0 {
		t.Fatalf("durable read of an absent row: %s, want 0", op)
	}
}

// standalonePostgres initializes and starts one PostgreSQL (as the
// postgres OS user when root) on a free loopback port, with
// synchronous_standby_names ssn from the start.
func standalonePostgres(t *testing.T, ssn string) *postgres.Instance {
	t.Helper()
	if _, err := os.Stat(filepath.Join(postgres.DefaultBinDir, "initdb")); err != nil {
		t.Fatalf("PostgreSQL binaries not found: %v", err)
	}
	user, err := testcluster.LookupOSUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := testcluster.OpenTempDir(t)
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	cfg := postgres.Config{
		DataDir:     filepath.Join(dir, "data"),
		Listen:      fmt.Sprintf("127.0.0.1:%d", port),
		Superuser:   postgres.Credentials{Username: superuser, Password: "chaos"},
		Replication: postgres.Credentials{Username: "replicator", Password: "chaos"},
		Parameters:  map[string]any{"shared_buffers": "16MB", "fsync": false, "max_connections": 20},
		StopTimeout: 10 * time.Second,
	}
	var attr *syscall.SysProcAttr
	if cred := user.Credential(); cred != nil {
		attr = &syscall.SysProcAttr{Credential: cred}
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil)).With("member", "pg")
	inst, err := postgres.New(postgres.Options{Config: cfg, Name: "pg", Logger: log, SysProcAttr: attr, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if _, err := inst.Stop(ctx, postgres.StopImmediate, 5*time.Second); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
		if t.Failed() {
			t.Logf("postgresql.log tail:\n%s", inst.LogTail(4000))
		}
		inst.Close()
	})
	if err := inst.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.SetSynchronousStandbyNames(ssn); err != nil {
		t.Fatal(err)
	}
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return inst
}
