package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The switchover writer: a numbered INSERT every writeEvery.
const (
	writeEvery = 10 * time.Millisecond
	// writeTimeout bounds one try on one node, connect included.
	writeTimeout = 250 * time.Millisecond
)

// ack is one acknowledged write of the writer.
type ack struct {
	id   int64
	node string
	at   time.Time
}

// writer inserts id 1, 2, 3… (one per tick) into its table. It sticks to
// the node that acknowledged its last write; when that fails it tries
// every node at once with the next id, and sticks to the one that
// accepts. It keeps one connection per node. Two nodes accepting the same
// id is a split brain: counted in dual.
type writer struct {
	nodes []*testcluster.Node
	table string

	mu   sync.Mutex
	acks []ack
	errs int
	last error
	dual int

	cancel context.CancelFunc
	done   chan struct{}
}

// writerConn is one node's connection, used by one goroutine at a time.
type writerConn struct {
	node *testcluster.Node
	conn *pgx.Conn
}

func startWriter(ctx context.Context, nodes []*testcluster.Node, table string) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{nodes: nodes, table: table, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// stop ends the writer and waits for its last try.
func (w *writer) stop() {
	w.cancel()
	<-w.done
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	conns := make([]*writerConn, len(w.nodes))
	for i, n := range w.nodes {
		conns[i] = &writerConn{node: n}
	}
	defer func() {
		for _, c := range conns {
			closeConn(ctx, c.conn)
		}
	}()
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	sticky := -1
	for id := int64(1); ; id++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if sticky >= 0 {
			if err := w.try(ctx, conns[sticky], id); err != nil {
				w.fail(err)
				sticky = -1
			}
			continue
		}
		sticky = w.tryAll(ctx, conns, id)
	}
}

// tryAll tries id on every node concurrently and returns the index of
// the first that acknowledged, -1 if none did.
func (w *writer) tryAll(ctx context.Context, conns []*writerConn, id int64) int {
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
	if first < 0 {
		w.fail(fmt.Errorf("id %d: no node accepted it; %v", id, errs))
	}
	if oks > 1 {
		w.mu.Lock()
		w.dual++
		w.mu.Unlock()
	}
	return first
}

// try inserts id on c's node and records the ack.
func (w *writer) try(ctx context.Context, c *writerConn, id int64) error {
	tctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if c.conn == nil {
		conn, err := connect(tctx, c.node, "regent-bench-writer")
		if err != nil {
			return err
		}
		c.conn = conn
	}
	if _, err := c.conn.Exec(tctx, "INSERT INTO "+w.table+" (id, node) VALUES ($1, $2)", id, c.node.Name); err != nil {
		if c.conn.IsClosed() {
			c.conn = nil
		}
		return fmt.Errorf("insert %d on %s: %w", id, c.node.Name, err)
	}
	w.mu.Lock()
	w.acks = append(w.acks, ack{id: id, node: c.node.Name, at: time.Now()})
	w.mu.Unlock()
	return nil
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs++
	w.last = err
}

// snapshot returns the acks so far (in acknowledgement order), the
// number of failed tries, the last failure and the dual acks.
func (w *writer) snapshot() ([]ack, int, error, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	acks := slices.Clone(w.acks)
	// Concurrent tries append in lock order, not always in time order.
	slices.SortStableFunc(acks, func(a, b ack) int { return a.at.Compare(b.at) })
	return acks, w.errs, w.last, w.dual
}

// waitAcks waits until n writes acknowledged by node at or after since
// (node "" = any) or until timeout.
func (w *writer) waitAcks(ctx context.Context, node string, since time.Time, n int, timeout time.Duration) error {
	return pollUntil(ctx, timeout, 20*time.Millisecond, func() error {
		acks, errs, last, _ := w.snapshot()
		got := 0
		for _, a := range acks {
			if (node == "" || a.node == node) && !a.at.Before(since) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d writes acknowledged by %q; %d tries failed, last: %v", got, n, node, errs, last)
		}
		return nil
	})
}

// gap is the longest stretch without an acknowledged write: from the
// last ack before it to the first after it.
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

// pollUntil calls check every `every` until it returns nil, and returns
// its last error if that does not happen within timeout.
func pollUntil(ctx context.Context, timeout, every time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
