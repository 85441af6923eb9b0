package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/routerproc"
	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/routing"
)

// pgbouncerProc is a PgBouncer run as the postgres OS user in front of a
// test cluster: clients on port, its admin console (database pgbouncer,
// admin_users postgres, trust) on the same port.
type pgbouncerProc struct {
	*daemon // set by start
	port    int
	dir     string // its ini, auth file and the include file Regent writes
	include string
}

// pgbouncerDatabase is the [databases] entry the tests route: it points
// at the primary's database of the same name.
const pgbouncerDatabase = "postgres"

// newPgBouncer prepares PgBouncer's directory (owned by postgres, so the
// agents can write the include file) and a free port; start runs it.
func newPgBouncer(t *testing.T) *pgbouncerProc {
	t.Helper()
	if _, err := routerproc.Find("pgbouncer"); err != nil {
		t.Fatalf("%v (.ci/run installs it)", err)
	}
	dir := testcluster.OpenTempDir(t)
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	chownToAgents(t, dir)
	return &pgbouncerProc{port: port, dir: dir, include: filepath.Join(dir, "regent-databases.ini")}
}

// agentsUser is the OS user agents and PostgreSQL run as; its
// credential is nil when the tests do not run as root.
func agentsUser(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := testcluster.LookupOSUser()
	if err != nil {
		t.Fatal(err)
	}
	return u.Credential()
}

// chownToAgents gives path to the agents' user (nothing to do when the
// tests run as that user).
func chownToAgents(t *testing.T, path string) {
	t.Helper()
	if cred := agentsUser(t); cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// routingConfig is the routing section every node gets: this PgBouncer,
// with pauseTimeout.
func (p *pgbouncerProc) routingConfig(pauseTimeout time.Duration) map[string]any {
	return map[string]any{
		"admin":     p.adminConnString(),
		"databases": []string{pgbouncerDatabase},
		// PgBouncer authenticates clients itself (trust); towards
		// PostgreSQL it logs in with the superuser's password.
		"connect_options": fmt.Sprintf("user=%s password=%s", testcluster.SuperuserName, testcluster.SuperuserPassword),
		"include_file":    p.include,
		"pause_timeout":   pauseTimeout.String(),
	}
}

func (p *pgbouncerProc) adminConnString() string { return p.settings().AdminConnString() }

func (p *pgbouncerProc) settings() routerproc.PgBouncer {
	return routerproc.PgBouncer{Port: p.port, Dir: p.dir, AdminUser: testcluster.SuperuserName, IncludeFile: p.include}
}

// start writes the ini (its last line %includes the file Regent manages,
// first written here naming the current primary, as an operator does at
// setup) and runs PgBouncer until the test ends.
func (p *pgbouncerProc) start(t *testing.T, primary *testcluster.Node) {
	t.Helper()
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		chownToAgents(t, path)
	}
	cfg := routing.PgBouncer{Databases: []string{pgbouncerDatabase},
		ConnectOptions: fmt.Sprintf("user=%s password=%s", testcluster.SuperuserName, testcluster.SuperuserPassword)}
	write(p.include, string(routing.IncludeFile(cfg, "setup", routing.Target{Leader: primary.Name, Host: "127.0.0.1", Port: primary.PGPort}, time.Now())))
	bouncer := p.settings()
	write(bouncer.UserListPath(), bouncer.UserList())
	ini := filepath.Join(p.dir, "pgbouncer.ini")
	write(ini, bouncer.INI())
	cmd := exec.CommandContext(t.Context(), "pgbouncer", ini)
	if cred := agentsUser(t); cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred} // PgBouncer refuses to run as root
	}
	p.daemon = startDaemon(t, "pgbouncer", cmd, syscall.SIGINT) // SIGINT: immediate shutdown
	testcluster.Poll(t, replicateTimeout, "a query through PgBouncer", func(ctx context.Context) error {
		p.alive(t)
		conn, err := p.connect(ctx)
		if err != nil {
			return err
		}
		defer closeQuietly(ctx, conn)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	})
	t.Logf("pgbouncer (pid %d) on 127.0.0.1:%d, include file %s", cmd.Process.Pid, p.port, p.include)
}

// connect opens a client connection through PgBouncer. Transaction
// pooling hands each transaction any server connection, so the client
// must not use named prepared statements: the simple protocol.
func (p *pgbouncerProc) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable connect_timeout=5",
		p.port, testcluster.SuperuserName, pgbouncerDatabase))
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

// paused reads SHOW DATABASES on the admin console: whether the routed
// database is paused, and the host it points at.
func (p *pgbouncerProc) paused(ctx context.Context) (paused bool, host string, port int, err error) {
	cfg, err := pgx.ParseConfig(p.adminConnString())
	if err != nil {
		return false, "", 0, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, "", 0, err
	}
	defer closeQuietly(ctx, conn)
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return false, "", 0, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return false, "", 0, err
		}
		cols := rows.FieldDescriptions()
		row := map[string]any{}
		for i, c := range cols {
			row[c.Name] = vals[i]
		}
		if fmt.Sprint(row["name"]) != pgbouncerDatabase {
			continue
		}
		found = true
		paused = fmt.Sprint(row["paused"]) == "1"
		host = fmt.Sprint(row["host"])
		port, _ = strconv.Atoi(fmt.Sprint(row["port"]))
	}
	if err := rows.Err(); err != nil {
		return false, "", 0, err
	}
	if !found {
		return false, "", 0, errors.New("SHOW DATABASES lists no " + pgbouncerDatabase)
	}
	return paused, host, port, nil
}

// txClients run transactions through PgBouncer, each on its own
// connection, and count what they saw.
type txClients struct {
	mu       sync.Mutex
	acked    []int64 // ids whose COMMIT succeeded
	failed   []string
	longest  time.Duration
	longestA time.Time
	done     sync.WaitGroup
	stop     context.CancelFunc
}

// txTimeout bounds one client transaction: far above a switchover's
// pause, so a transaction that waits in PgBouncer is latency, not a
// failure.
const txTimeout = 30 * time.Second

// startTxClients starts n clients writing to table through p, one
// transaction (BEGIN; INSERT; COMMIT) every 10 ms each.
func startTxClients(t *testing.T, p *pgbouncerProc, table string, n int) *txClients {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	tc := &txClients{stop: cancel}
	var next sync.Mutex
	id := int64(0)
	for i := range n {
		conn, err := p.connect(ctx)
		if err != nil {
			cancel()
			t.Fatalf("client %d: %v", i, err)
		}
		tc.done.Add(1)
		go func() {
			defer tc.done.Done()
			defer closeQuietly(ctx, conn)
			testcluster.Every(ctx, 10*time.Millisecond, func() {
				next.Lock()
				id++
				mine := id
				next.Unlock()
				tc.run(ctx, conn, table, i, mine)
			})
		}()
	}
	t.Cleanup(tc.Stop)
	return tc
}

// run is one transaction; its latency is BEGIN to COMMIT's answer.
func (tc *txClients) run(ctx context.Context, conn *pgx.Conn, table string, client int, id int64) {
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	err := pgx.BeginFunc(tctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(tctx, fmt.Sprintf("INSERT INTO %s (id, client) VALUES ($1, $2)", table), id, client)
		return err
	})
	took := time.Since(start)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if ctx.Err() != nil {
		return // stopping: the outcome is unknown, neither acked nor failed
	}
	if err != nil {
		tc.failed = append(tc.failed, fmt.Sprintf("client %d id %d after %s: %v", client, id, took.Round(time.Millisecond), err))
		return
	}
	tc.acked = append(tc.acked, id)
	if took > tc.longest {
		tc.longest, tc.longestA = took, start
	}
}

// Stop ends the clients and waits for them.
func (tc *txClients) Stop() {
	tc.stop()
	tc.done.Wait()
}

// counts returns acked and failed so far.
func (tc *txClients) counts() (acked int, failed []string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return len(tc.acked), slices.Clone(tc.failed)
}

// waitProgress waits until n more transactions were acknowledged.
func (tc *txClients) waitProgress(t *testing.T, n int, what string) {
	t.Helper()
	base, _ := tc.counts()
	testcluster.Poll(t, replicateTimeout, what, func(context.Context) error {
		if got, _ := tc.counts(); got < base+n {
			return fmt.Errorf("%d of %d transactions acknowledged", got-base, n)
		}
		return nil
	})
}

// missing lists acknowledged ids not in table on n.
func (tc *txClients) missing(t *testing.T, n *testcluster.Node, table string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	conn := n.DB(t, ctx)
	defer closeQuietly(ctx, conn)
	return tc.missingOn(t, ctx, conn, table)
}

// missingOn lists acknowledged ids not in table on conn's server.
func (tc *txClients) missingOn(t *testing.T, ctx context.Context, conn *pgx.Conn, table string) []int64 {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT id FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	have := map[int64]bool{}
	for _, id := range ids {
		have[id] = true
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var lost []int64
	for _, id := range tc.acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	return lost
}

// startQualifiedSwitchover starts a switchover once a dry run says the
// candidate qualifies: right after a burst of writes its published lag
// can exceed maximum_lag_on_failover for a moment (a legitimate 412).
func startQualifiedSwitchover(t *testing.T, n *testcluster.Node, req switchoverReq) string {
	t.Helper()
	dry := req
	dry.DryRun = true
	testcluster.Poll(t, replicateTimeout, "a dry run of the switchover to "+req.To+" passing", func(context.Context) error {
		if code, body := patchSwitchover(t, n, dry); code != http.StatusOK {
			return fmt.Errorf("dry run: %d %s", code, body)
		}
		return nil
	})
	return startSwitchover(t, n, req)
}
