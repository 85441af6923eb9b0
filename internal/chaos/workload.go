package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/postgres"
)

// Workload pacing and bounds.
const (
	// clientsPerNode: two, so that register operations are concurrent on
	// the primary (what makes a linearizability check meaningful).
	clientsPerNode = 2
	// clientPace is each client's interval between operations: ~60 ops/s
	// in all, enough to time a failover to ~0.1 s, light on 2 cores.
	clientPace = 100 * time.Millisecond
	// opTimeout bounds one operation; past it the outcome is unknown.
	opTimeout = 3 * time.Second
	// routerClients write through PgBouncer in routing mode, beside the
	// clients of every node.
	routerClients = 2
)

const (
	schemaSQL = `CREATE TABLE IF NOT EXISTS chaos_writes (id bigint PRIMARY KEY, node text NOT NULL);
CREATE TABLE IF NOT EXISTS chaos_reg (k bigint PRIMARY KEY, v bigint NOT NULL);
CREATE TABLE IF NOT EXISTS chaos_route_probe (id bigserial PRIMARY KEY, round int NOT NULL)`
	insertSQL = `INSERT INTO chaos_writes (id, node) VALUES ($1, $2)
RETURNING pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_insert_lsn())`
	// insertViaSQL is insertSQL through PgBouncer: the server's address
	// says which node took the write (its tenure is that node's).
	insertViaSQL = `INSERT INTO chaos_writes (id, node) VALUES ($1, $2)
RETURNING pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_insert_lsn()), host(inet_server_addr())`
	writeSQL = `INSERT INTO chaos_reg (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v
RETURNING pg_current_wal_insert_lsn()::text, pg_walfile_name(pg_current_wal_insert_lsn())`
	// readSQL is a durable read: FOR KEY SHARE gives the transaction an
	// xid and a WAL record, so its commit waits for the synchronous
	// standby like a write's, and it is acknowledged only once everything
	// it saw is flushed there. plainReadSQL reads without that wait: it can
	// return a commit whose synchronous wait was cancelled (PostgreSQL makes
	// it visible at once, replicated or not), which a failover then loses.
	// Both report the timeline of a primary ('' on a replica, where the
	// durable read fails as read-only).
	readSQL = `SELECT coalesce((SELECT v FROM chaos_reg WHERE k = $1 FOR KEY SHARE), 0), pg_is_in_recovery(),
CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END`
	plainReadSQL = `SELECT coalesce((SELECT v FROM chaos_reg WHERE k = $1), 0), pg_is_in_recovery(),
CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END`
)

// Workload runs clientsPerNode clients against every node's PostgreSQL.
// Each client keeps one connection (reopened after a failure) and, every
// clientPace, inserts a row with a unique id (3 in 8), writes the register
// of the current round (2 in 8), reads it durably (2 in 8) or plainly (1 in
// 8), recording every operation in the history. In routing mode
// routerClients more clients insert through PgBouncer (inserts only: what
// routing must not lose or misdirect is writes; the register stays with
// the nodes' clients, whose reads judge it).
type Workload struct {
	clock  *Clock
	hist   *History
	key    atomic.Int64 // the register row of the current round
	nextID atomic.Int64 // insert ids and register values, unique
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartWorkload starts the clients (with router's when router is not
// nil); Stop ends them.
func StartWorkload(ctx context.Context, nodes []*Node, router *Router, clock *Clock, hist *History, seed uint64) *Workload {
	ctx, cancel := context.WithCancel(ctx)
	w := &Workload{clock: clock, hist: hist, cancel: cancel}
	for i, n := range nodes {
		for j := range clientsPerNode {
			id := i*clientsPerNode + j
			rng := rand.New(rand.NewPCG(seed, uint64(id)+1))
			w.wg.Go(func() { w.client(ctx, id, endpoint{name: n.Name, cfg: n.ConnConfig()}, rng) })
		}
	}
	if router != nil {
		for j := range routerClients {
			// After the nodes' clients and the final reads' (finalReads).
			id := len(nodes)*clientsPerNode + 1 + j
			rng := rand.New(rand.NewPCG(seed, uint64(id)+1))
			w.wg.Go(func() { w.client(ctx, id, endpoint{name: ViaPgBouncer, cfg: router.ConnConfig(), router: router}, rng) })
		}
	}
	return w
}

// ViaPgBouncer is Op.Via (and, until the server's address names the node,
// Op.Node) of an operation sent through PgBouncer.
const ViaPgBouncer = "pgbouncer"

// endpoint is where a client sends its operations: a node's PostgreSQL,
// or PgBouncer (router set).
type endpoint struct {
	name   string
	cfg    *pgx.ConnConfig
	router *Router
}

// SetKey moves the register workload to row k (one row per round keeps
// each linearizability check small).
func (w *Workload) SetKey(k int64) { w.key.Store(k) }

// Stop ends the clients and waits for them (at most one opTimeout).
func (w *Workload) Stop() {
	w.cancel()
	w.wg.Wait()
}

// client is one client's loop; it owns its connection.
func (w *Workload) client(ctx context.Context, id int, e endpoint, rng *rand.Rand) {
	var warned atomic.Bool // a WARNING notice arrived during the current op
	cfg := e.cfg
	cfg.OnNotice = func(_ *pgconn.PgConn, nt *pgconn.Notice) {
		if nt.Severity == "WARNING" {
			warned.Store(true)
		}
	}
	var conn *pgx.Conn
	defer func() { testcluster.CloseConn(ctx, conn) }()
	testcluster.Every(ctx, clientPace, func() {
		if conn == nil {
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return // nothing was sent: not an operation
			}
			conn = c
		}
		op := Op{Node: e.name, Client: id}
		switch r := rng.IntN(8); {
		case e.router != nil:
			op.Kind, op.ID, op.Via = OpInsert, w.nextID.Add(1), ViaPgBouncer
		case r < 3:
			op.Kind, op.ID = OpInsert, w.nextID.Add(1)
		case r < 5:
			op.Kind, op.Key, op.Value = OpWrite, w.key.Load(), w.nextID.Add(1)
		default:
			op.Kind, op.Key, op.Plain = OpRead, w.key.Load(), r == 7
		}
		warned.Store(false)
		op = w.do(ctx, conn, op)
		if e.router != nil {
			op = e.router.resolve(op)
		}
		if op.Outcome == OK && warned.Load() {
			// "canceling the wait for synchronous replication…": committed
			// locally, maybe not replicated. Not an acknowledgement.
			op.Outcome, op.Err = Unknown, "sync-rep warning"
		}
		w.hist.Add(op)
		if conn.IsClosed() {
			testcluster.CloseConn(ctx, conn)
			conn = nil
		}
	})
}

// do runs one operation and classifies its outcome.
func (w *Workload) do(ctx context.Context, conn *pgx.Conn, op Op) Op {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	op.Invoke = w.clock.Now()
	var err error
	var lsn, walfile string
	var inRecovery bool
	switch {
	case op.Kind == OpInsert && op.Via != "":
		err = conn.QueryRow(ctx, insertViaSQL, op.ID, op.Node).Scan(&lsn, &walfile, &op.Server)
	case op.Kind == OpInsert:
		err = conn.QueryRow(ctx, insertSQL, op.ID, op.Node).Scan(&lsn, &walfile)
	case op.Kind == OpWrite:
		err = conn.QueryRow(ctx, writeSQL, op.Key, op.Value).Scan(&lsn, &walfile)
	case op.Kind == OpRead:
		query := readSQL
		if op.Plain {
			query = plainReadSQL
		}
		err = conn.QueryRow(ctx, query, op.Key).Scan(&op.Value, &inRecovery, &walfile)
	}
	op.Complete = w.clock.Now()
	op.Outcome, op.Err = classify(err)
	if op.Via != "" {
		op.Outcome, op.Err = classifyVia(op.Outcome, op.Err, err)
	}
	switch {
	case op.Outcome != OK:
	case op.Kind == OpRead && inRecovery:
		// A replica's read is not part of the register's history.
		op.Outcome, op.Err = Fail, "replica read"
	case op.Kind == OpRead:
		op.Timeline = walfileTimeline(walfile)
	default:
		l, _ := postgres.ParseLSN(lsn)
		op.LSN = uint64(l)
		op.Timeline = walfileTimeline(walfile)
	}
	return op
}

// classify sorts an error into Fail (certainly not applied) or Unknown.
// A server ERROR (not FATAL) rolls the single-statement transaction back;
// an error before anything was sent applies nothing; anything else
// (timeout, lost connection, FATAL termination) may follow a commit.
func classify(err error) (Outcome, string) {
	if err == nil {
		return OK, ""
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Severity == "ERROR" {
			if pgErr.Code == "25006" {
				return Fail, "read-only"
			}
			return Fail, "sqlstate " + pgErr.Code
		}
		return Unknown, pgErr.Severity + " " + pgErr.Code
	}
	if pgconn.SafeToRetry(err) {
		return Fail, "not sent"
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return Unknown, "timeout"
	}
	return Unknown, "conn: " + shortErr(err)
}

// classifyVia narrows classify for an operation sent through PgBouncer: an
// ERROR there may be PgBouncer's own, sent when its server connection
// broke after the statement went out ("server conn crashed?"), when the
// commit may have happened. Only PostgreSQL's read-only refusal proves
// nothing was applied; other ERRORs are unknown.
func classifyVia(o Outcome, reason string, err error) (Outcome, string) {
	var pgErr *pgconn.PgError
	if o == Fail && errors.As(err, &pgErr) && pgErr.Code != "25006" {
		return Unknown, "pgbouncer: " + pgErr.Code + " " + shortErr(err)
	}
	return o, reason
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// walfileTimeline reads the timeline from a WAL file name (its first 8
// hex digits); 0 if malformed.
func walfileTimeline(name string) int {
	if len(name) < 8 {
		return 0
	}
	tl, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil {
		return 0
	}
	return int(tl)
}
