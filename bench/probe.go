package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The RTO client: it knows every node and has no router. Each node gets
// its own loop so that a frozen node (whose connects and statements hang
// until their bound) cannot slow down the others.
const (
	// probeEvery is how often each node is tried.
	probeEvery = 50 * time.Millisecond
	// probeTimeout bounds one try, connect included: short, as a client
	// with a tight connect timeout.
	probeTimeout = 250 * time.Millisecond
	// probeTable is the table the probes insert into.
	probeTable = "bench_probe"
)

// probeAck is one acknowledged probe write.
type probeAck struct {
	node  string
	start time.Time // the try began (connect included)
	at    time.Time // the INSERT was acknowledged
}

// prober inserts into probeTable on every node every probeEvery, keeping
// one connection per node (reconnecting when it breaks), and records
// every acknowledgement. A replica's connection survives its promotion,
// so the first write after it is seen within probeEvery.
type prober struct {
	mu     sync.Mutex
	acks   []probeAck
	notify chan struct{} // signalled after each ack
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startProber(ctx context.Context, nodes []*testcluster.Node) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{notify: make(chan struct{}, 1), cancel: cancel}
	for _, n := range nodes {
		p.wg.Go(func() { p.loop(ctx, n) })
	}
	return p
}

// stop ends every loop and waits for them.
func (p *prober) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *prober) loop(ctx context.Context, n *testcluster.Node) {
	var conn *pgx.Conn
	defer func() { testcluster.CloseConn(ctx, conn) }()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		start := time.Now()
		conn = p.try(ctx, n, conn, start)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// try makes one attempt on n and returns the connection to keep (nil
// after a failure that broke it).
func (p *prober) try(ctx context.Context, n *testcluster.Node, conn *pgx.Conn, start time.Time) *pgx.Conn {
	tctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if conn == nil {
		var err error
		if conn, err = connect(tctx, n, "regent-bench-probe"); err != nil {
			return nil
		}
	}
	if _, err := conn.Exec(tctx, "INSERT INTO "+probeTable+" (node) VALUES ($1)", n.Name); err != nil {
		if conn.IsClosed() {
			return nil
		}
		return conn // e.g. read-only: a replica, kept for after its promotion
	}
	p.mu.Lock()
	p.acks = append(p.acks, probeAck{node: n.Name, start: start, at: time.Now()})
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return conn
}

// first waits up to timeout for the first ack of a try that began at or
// after since, on any node but exclude ("" excludes none).
func (p *prober) first(ctx context.Context, since time.Time, exclude string, timeout time.Duration) (probeAck, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for _, a := range p.acks {
			if !a.start.Before(since) && a.node != exclude {
				p.mu.Unlock()
				return a, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return probeAck{}, ctx.Err()
		case <-timer.C:
			return probeAck{}, fmt.Errorf("no write acknowledged within %s (on any node but %q)", timeout, exclude)
		case <-p.notify:
		}
	}
}

// connect opens a superuser connection to n with every wait bounded by
// ctx (the connect timeout is ctx's deadline).
func connect(ctx context.Context, n *testcluster.Node, app string) (*pgx.Conn, error) {
	cfg := n.ConnConfig()
	cfg.ConnectTimeout = 0 // ctx bounds it
	cfg.RuntimeParams["application_name"] = app
	return testcluster.Connect(ctx, n.Name, cfg)
}
