package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Timings of the load writer: a row every writeEvery; each connect,
// statement and /primary probe bounded short, so that a fenced or stopped
// node costs at most a fraction of a second of measured unavailability.
const (
	writeEvery     = 10 * time.Millisecond
	writeTimeout   = 500 * time.Millisecond
	routerTimeout  = 300 * time.Millisecond
	writerStopWait = 5 * time.Second
)

// loadWriter inserts numbered rows into a table (id bigint PRIMARY KEY,
// node text) on whichever node answers GET /primary with 200, as a client
// behind a health-checking router would, and records every acknowledged
// id. It keeps its connection until a statement fails, then asks the
// routers again.
type loadWriter struct {
	c     *testcluster.Cluster
	table string

	mu       sync.Mutex
	acked    []ack
	attempts int
	errs     int
	lastErr  error

	cancel context.CancelFunc
	done   chan struct{}
}

// ack is one acknowledged write.
type ack struct {
	id   int64
	node string
	at   time.Time
}

// startWriter starts a loadWriter on table; it stops at the test's end at
// the latest.
func startWriter(t *testing.T, c *testcluster.Cluster, table string) *loadWriter {
	ctx, cancel := context.WithCancel(t.Context())
	w := &loadWriter{c: c, table: table, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	t.Cleanup(w.stop)
	return w
}

func (w *loadWriter) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	var conn *pgx.Conn
	var node string
	defer func() {
		if conn != nil {
			closeQuietly(ctx, conn)
		}
	}()
	for id := int64(1); ; id++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			var err error
			if conn, node, err = w.connect(ctx); err != nil {
				w.note(err)
				continue
			}
		}
		sctx, cancel := context.WithTimeout(ctx, writeTimeout)
		_, err := conn.Exec(sctx, "INSERT INTO "+w.table+" (id, node) VALUES ($1, $2)", id, node)
		cancel()
		if err != nil {
			w.note(fmt.Errorf("insert %d on %s: %w", id, node, err))
			closeQuietly(ctx, conn)
			conn = nil
			continue
		}
		w.mu.Lock()
		w.attempts++
		w.acked = append(w.acked, ack{id: id, node: node, at: time.Now()})
		w.mu.Unlock()
	}
}

// connect asks every node's GET /primary and connects to the first that
// answers 200.
func (w *loadWriter) connect(ctx context.Context) (*pgx.Conn, string, error) {
	for _, n := range w.c.Nodes() {
		rctx, cancel := context.WithTimeout(ctx, routerTimeout)
		code, _, err := n.Get(rctx, "/primary")
		cancel()
		if err != nil || code != http.StatusOK {
			continue
		}
		cfg := n.ConnConfig()
		cfg.ConnectTimeout = writeTimeout
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(writeTimeout.Milliseconds())
		cfg.RuntimeParams["application_name"] = "e2e-writer"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, "", fmt.Errorf("connect to %s: %w", n.Name, err)
		}
		return conn, n.Name, nil
	}
	return nil, "", fmt.Errorf("no node answers GET /primary with 200")
}

func (w *loadWriter) note(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	w.errs++
	w.lastErr = err
}

func closeQuietly(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// stop ends the writer and waits for it; idempotent.
func (w *loadWriter) stop() {
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(writerStopWait):
	}
}

// snapshot returns the acknowledged writes so far.
func (w *loadWriter) snapshot() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// waitAcked waits until n writes were acknowledged by node (any node when
// "") after since.
func (w *loadWriter) waitAcked(t *testing.T, node string, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	what := fmt.Sprintf("the writer to get %d writes acknowledged", n)
	if node != "" {
		what += " by " + node
	}
	testcluster.Poll(t, timeout, what, func(context.Context) error {
		got := 0
		for _, a := range w.snapshot() {
			if (node == "" || a.node == node) && a.at.After(since) {
				got++
			}
		}
		if got < n {
			w.mu.Lock()
			defer w.mu.Unlock()
			return fmt.Errorf("%d so far; %d attempts, %d failed, last error: %v", got, w.attempts, w.errs, w.lastErr)
		}
		return nil
	})
}

// gap is the longest time between two consecutive acknowledged writes.
type gap struct {
	d        time.Duration
	from, to ack
}

func longestGap(acks []ack) gap {
	var g gap
	for i := 1; i < len(acks); i++ {
		if d := acks[i].at.Sub(acks[i-1].at); d > g.d {
			g = gap{d: d, from: acks[i-1], to: acks[i]}
		}
	}
	return g
}

// checkAcked fails the test unless every acknowledged id is in n's table.
func checkAcked(t *testing.T, n *testcluster.Node, table string, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	ids, err := n.QueryInts(ctx, "SELECT id FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[int64]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	var lost []ack
	for _, a := range acks {
		if !have[a.id] {
			lost = append(lost, a)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on %s: %v", len(lost), len(acks), n.Name, describeAcks(lost, 20))
	}
	t.Logf("writer: %d writes acknowledged, %d missing on %s (%d rows there)", len(acks), len(lost), n.Name, len(ids))
}

func describeAcks(acks []ack, limit int) string {
	var out []string
	for i, a := range acks {
		if i == limit {
			out = append(out, fmt.Sprintf("… %d more", len(acks)-limit))
			break
		}
		out = append(out, fmt.Sprintf("%d@%s %s", a.id, a.node, a.at.Format("15:04:05.000")))
	}
	return fmt.Sprint(out)
}
