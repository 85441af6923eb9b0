package testcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// WriterRoute is how a Writer picks the node of its next write.
type WriterRoute int

const (
	// RoutePrimaryEndpoint writes on the first node whose GET /primary
	// answers 200, as a client behind a health-checking router would. It
	// keeps that connection until a write fails, then asks the routers
	// again on a fresh connection.
	RoutePrimaryEndpoint WriterRoute = iota
	// RouteTryAll needs no router: it sticks to the node that acknowledged
	// the last write, and when that fails tries the next id on every node
	// at once (one connection per node, kept across failures), then sticks
	// to the first that accepted. An id accepted by two nodes or more is a
	// split brain, counted in WriterStats.Dual.
	RouteTryAll
)

// Writer defaults: a row every 10 ms; every connect, statement and
// /primary probe bounded short, so that a fenced or stopped node costs at
// most a fraction of a second of measured unavailability.
const (
	defaultWriteEvery    = 10 * time.Millisecond
	defaultWriteTimeout  = 500 * time.Millisecond
	defaultRouterTimeout = 300 * time.Millisecond
	defaultWriterApp     = "testcluster-writer"
	// writerStopWait bounds Stop beyond one try's own bound: closing the
	// connections (each bounded by connectTimeout) after the last try.
	writerStopWait = 5 * time.Second
)

// errNoRoute: no node answered GET /primary with 200.
var errNoRoute = errors.New("no node answers GET /primary with 200")

// WriterOptions configure a Writer; only Table is required.
type WriterOptions struct {
	// Table receives the rows; it has columns (id bigint PRIMARY KEY,
	// node text) and exists on the primary before the Writer starts.
	Table string
	// Route picks the node of each write (default RoutePrimaryEndpoint).
	Route WriterRoute
	// Nodes are the nodes written to (default every node of the cluster,
	// in name order: the routing order).
	Nodes []*Node
	// Every is the pace: one id per tick (default 10 ms). A try that
	// outlasts a tick delays the next id; missed ticks are dropped.
	Every time.Duration
	// Timeout bounds one try on one node, connecting included, on the
	// client side (default 500 ms).
	Timeout time.Duration
	// ConnectTimeout bounds a connection's setup within the try (default
	// Timeout).
	ConnectTimeout time.Duration
	// ServerTimeout also sets the sessions' statement_timeout to Timeout,
	// so that the server gives up on a statement the client abandoned.
	// Leave it off in synchronous mode: a statement_timeout that cancels
	// a commit's wait for the synchronous standby commits locally and
	// returns success (recorded in SyncCancelled, not Acked).
	ServerTimeout bool
	// RouterTimeout bounds one GET /primary (default 300 ms).
	RouterTimeout time.Duration
	// AppName is the connections' application_name (default
	// "testcluster-writer").
	AppName string
}

func (o WriterOptions) withDefaults(c *Cluster) WriterOptions {
	if o.Nodes == nil {
		o.Nodes = c.Nodes()
	}
	o.Every = cmp.Or(o.Every, defaultWriteEvery)
	o.Timeout = cmp.Or(o.Timeout, defaultWriteTimeout)
	o.ConnectTimeout = cmp.Or(o.ConnectTimeout, o.Timeout)
	o.RouterTimeout = cmp.Or(o.RouterTimeout, defaultRouterTimeout)
	o.AppName = cmp.Or(o.AppName, defaultWriterApp)
	return o
}

// Ack is one write whose INSERT (an implicit COMMIT) returned success.
type Ack struct {
	ID   int64
	Node string // the node that acknowledged it
	At   time.Time
}

// WriterStats is what a Writer saw so far.
type WriterStats struct {
	// Acked are the acknowledged writes, sorted by At.
	Acked []Ack
	// SyncCancelled are commits that returned success with PostgreSQL's
	// "canceling wait for synchronous replication" warning: committed
	// locally but not confirmed by a synchronous standby; sorted by At.
	SyncCancelled []Ack
	// Attempts counts the ids tried (one per tick), Errors those no node
	// acknowledged, LastErr the last such failure.
	Attempts, Errors int
	LastErr          error
	// Dual counts ids acknowledged by more than one node (RouteTryAll).
	Dual int
}

// Writer inserts id 1, 2, 3… (one per tick) with the node's name into a
// table and records every acknowledged id. Start it with StartWriter. Its
// methods are safe for concurrent use.
type Writer struct {
	opts WriterOptions

	mu    sync.Mutex
	stats WriterStats

	cancel context.CancelFunc
	done   chan struct{}
}

// writerConn is one node's connection, used by one goroutine at a time.
type writerConn struct {
	node *Node
	conn *pgx.Conn
	// syncCancelled is set by a notice of a cancelled synchronous wait
	// during the current statement.
	syncCancelled atomic.Bool
}

// StartWriter starts a Writer that writes until ctx is done or Stop.
func (c *Cluster) StartWriter(ctx context.Context, opts WriterOptions) *Writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{opts: opts.withDefaults(c), cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// Stop ends the writer and waits (bounded) for its last try to finish
// and its connections to close; idempotent.
func (w *Writer) Stop() {
	w.cancel()
	timer := time.NewTimer(w.opts.Timeout + writerStopWait)
	defer timer.Stop()
	select {
	case <-w.done:
	case <-timer.C:
	}
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	conns := make([]*writerConn, len(w.opts.Nodes))
	for i, n := range w.opts.Nodes {
		conns[i] = &writerConn{node: n}
	}
	defer func() {
		for _, c := range conns {
			c.close(ctx)
		}
	}()
	tick := time.NewTicker(w.opts.Every)
	defer tick.Stop()
	cur := -1 // the connection of the next write; -1: pick one
	for id := int64(1); ; id++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var err error
		cur, err = w.write(ctx, conns, cur, id)
		if ctx.Err() != nil {
			return // a try cut by Stop is no failure of the cluster
		}
		w.count(err)
	}
}

// write tries id and returns the connection for the next id (-1: pick
// again) and an error when no node acknowledged id.
func (w *Writer) write(ctx context.Context, conns []*writerConn, cur int, id int64) (int, error) {
	if cur < 0 && w.opts.Route == RouteTryAll {
		return w.tryAll(ctx, conns, id)
	}
	if cur < 0 {
		if cur = w.route(ctx, conns); cur < 0 {
			return -1, errNoRoute
		}
	}
	if err := w.try(ctx, conns[cur], id); err != nil {
		if w.opts.Route == RoutePrimaryEndpoint {
			conns[cur].close(ctx) // ask the routers again, on a fresh connection
		}
		return -1, err
	}
	return cur, nil
}

// route returns the index of the first node whose GET /primary answers
// 200, -1 if none does.
func (w *Writer) route(ctx context.Context, conns []*writerConn) int {
	for i, c := range conns {
		rctx, cancel := context.WithTimeout(ctx, w.opts.RouterTimeout)
		code, _, err := c.node.Get(rctx, "/primary")
		cancel()
		if err == nil && code == http.StatusOK {
			return i
		}
	}
	return -1
}

// tryAll tries id on every node concurrently and returns the index of
// the first that acknowledged it, -1 if none did.
func (w *Writer) tryAll(ctx context.Context, conns []*writerConn, id int64) (int, error) {
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { errs[i] = w.try(ctx, c, id) })
	}
	wg.Wait()
	first, oks := -1, 0
	for i, err := range errs {
		if err != nil {
			continue
		}
		oks++
		if first < 0 {
			first = i
		}
	}
	if oks > 1 {
		w.mu.Lock()
		w.stats.Dual++
		w.mu.Unlock()
	}
	if oks == 0 {
		return -1, fmt.Errorf("id %d: no node accepted it: %w", id, errors.Join(errs...))
	}
	return first, nil
}

// try inserts id on c's node, connecting first when needed, and records
// the ack. It keeps the connection unless it broke.
func (w *Writer) try(ctx context.Context, c *writerConn, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	if c.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, w.connConfig(c))
		if err != nil {
			return fmt.Errorf("connect to %s: %w", c.node.Name, err)
		}
		c.conn = conn
	}
	c.syncCancelled.Store(false)
	if _, err := c.conn.Exec(ctx, "INSERT INTO "+w.opts.Table+" (id, node) VALUES ($1, $2)", id, c.node.Name); err != nil {
		if c.conn.IsClosed() {
			c.conn = nil
		}
		return fmt.Errorf("insert %d on %s: %w", id, c.node.Name, err)
	}
	a := Ack{ID: id, Node: c.node.Name, At: time.Now()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.syncCancelled.Load() {
		w.stats.SyncCancelled = append(w.stats.SyncCancelled, a)
	} else {
		w.stats.Acked = append(w.stats.Acked, a)
	}
	return nil
}

func (w *Writer) connConfig(c *writerConn) *pgx.ConnConfig {
	cfg := c.node.ConnConfig()
	cfg.ConnectTimeout = w.opts.ConnectTimeout
	cfg.RuntimeParams["application_name"] = w.opts.AppName
	if w.opts.ServerTimeout {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(w.opts.Timeout.Milliseconds())
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "synchronous replication") {
			c.syncCancelled.Store(true)
		}
	}
	return cfg
}

func (c *writerConn) close(ctx context.Context) {
	if c.conn != nil {
		CloseConn(ctx, c.conn)
		c.conn = nil
	}
}

// count records one id's outcome.
func (w *Writer) count(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Attempts++
	if err != nil {
		w.stats.Errors++
		w.stats.LastErr = err
	}
}

// Snapshot returns a copy of the stats so far.
func (w *Writer) Snapshot() WriterStats {
	w.mu.Lock()
	s := w.stats
	s.Acked = slices.Clone(s.Acked)
	s.SyncCancelled = slices.Clone(s.SyncCancelled)
	w.mu.Unlock()
	// Concurrent tries append in lock order, not always in time order.
	byTime := func(a, b Ack) int { return a.At.Compare(b.At) }
	slices.SortStableFunc(s.Acked, byTime)
	slices.SortStableFunc(s.SyncCancelled, byTime)
	return s
}

// WaitAcked waits up to timeout until node ("" = any node) acknowledged
// n writes at or after since, and returns when the first of them was
// acknowledged. Its error names how far the writer got.
func (w *Writer) WaitAcked(ctx context.Context, node string, since time.Time, n int, timeout time.Duration) (time.Time, error) {
	var first time.Time
	err := poll(ctx, timeout, func(context.Context) error {
		s := w.Snapshot()
		got := 0
		for _, a := range s.Acked {
			if (node == "" || a.Node == node) && !a.At.Before(since) {
				if got == 0 {
					first = a.At
				}
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d so far; %d attempts, %d failed, last error: %w", got, s.Attempts, s.Errors, s.LastErr)
		}
		return nil
	})
	if err != nil {
		by := cmp.Or(node, "any node")
		return time.Time{}, fmt.Errorf("writer: %d writes acknowledged by %s not seen within %s: %w", n, by, timeout, err)
	}
	return first, nil
}

// Gap is the longest stretch without an acknowledged write: from the
// last ack before it to the first after it.
type Gap struct {
	Duration time.Duration
	From, To Ack
}

// LongestGap returns the longest time between two consecutive acks
// (sorted by At); zero for fewer than two.
func LongestGap(acks []Ack) Gap {
	var g Gap
	for i := 1; i < len(acks); i++ {
		if d := acks[i].At.Sub(acks[i-1].At); d > g.Duration {
			g = Gap{Duration: d, From: acks[i-1], To: acks[i]}
		}
	}
	return g
}

// MissingAcks reads table's ids on n and returns the acknowledged ids
// absent there (each id once, at its first ack: RouteTryAll may record an
// id twice) and how many rows n has.
func MissingAcks(ctx context.Context, n *Node, table string, acks []Ack) (lost []Ack, rows int, err error) {
	ids, err := n.QueryInts(ctx, "SELECT id FROM "+table)
	if err != nil {
		return nil, 0, err
	}
	return missingFrom(acks, ids), len(ids), nil
}

// missingFrom returns the acks whose id is not in ids, each id once.
func missingFrom(acks []Ack, ids []int64) []Ack {
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	var lost []Ack
	for _, a := range acks {
		if !seen[a.ID] {
			lost = append(lost, a)
			seen[a.ID] = true
		}
	}
	return lost
}

// DescribeAcks lists up to limit acks as id@node hh:mm:ss.mmm, and how
// many more there are.
func DescribeAcks(acks []Ack, limit int) string {
	var out []string
	for i, a := range acks {
		if i == limit {
			out = append(out, fmt.Sprintf("… %d more", len(acks)-limit))
			break
		}
		out = append(out, fmt.Sprintf("%d@%s %s", a.ID, a.Node, a.At.Format("15:04:05.000")))
	}
	return fmt.Sprint(out)
}
