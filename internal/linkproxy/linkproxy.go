package linkproxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DialTimeout bounds a link's dial of its upstream (a loopback or
	// bridge address: a stopped etcd refuses at once, a partitioned one
	// is the caller's fault to wait out).
	DialTimeout = 2 * time.Second
	// queueLen bounds the chunks in flight in one direction of one
	// connection: with the latency, what the wire holds.
	queueLen = 256
	// chunkLen is the largest chunk read at once.
	chunkLen = 32 << 10
	// cutSettle bounds how long Cut waits for the chunks being written as
	// it cut (a write to a local socket takes microseconds unless the
	// reader is frozen).
	cutSettle = 2 * time.Second
)

// ErrCut is returned by Cut when the link is already cut; ErrNotCut by
// Heal when it is not.
var (
	ErrCut    = errors.New("link already cut")
	ErrNotCut = errors.New("link not cut")
)

// Shaping is what a link does to the chunks it forwards.
type Shaping struct {
	Latency time.Duration // added to every chunk, each direction
	Loss    float64       // the share of chunks lost once and retransmitted
	RTO     time.Duration // how late a lost chunk arrives
}

func (s Shaping) String() string {
	switch {
	case s.Loss > 0:
		return fmt.Sprintf("%.0f%% loss, rto %s", 100*s.Loss, s.RTO)
	case s.Latency > 0:
		return fmt.Sprintf("+%s each way", s.Latency)
	}
	return "none"
}

// Dialer opens the upstream side of one proxied connection; ctx carries
// DialTimeout and ends when the proxy is closed.
type Dialer func(ctx context.Context) (net.Conn, error)

// TCP dials addr over TCP where the caller runs.
func TCP(addr string) Dialer {
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
}

// Proxy forwards the connections accepted on its listener. Safe for
// concurrent use.
type Proxy struct {
	ln   net.Listener
	dial Dialer
	ctx  context.Context // ends at Close (or the caller's end): pending dials give up
	stop context.CancelFunc

	cut      atomic.Bool
	inflight atomic.Int64 // chunks past the cut check and being written

	mu     sync.Mutex
	shape  Shaping
	rng    *rand.Rand // the loss draws; under mu
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection's pumps
}

// conn is one proxied connection; up is nil for one accepted while the
// link was cut (it is never forwarded).
type conn struct {
	down, up net.Conn
	held     bool          // caught by a cut: closed at the heal; under Proxy.mu
	done     chan struct{} // closed by close
	once     sync.Once
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.down.Close()
		if c.up != nil {
			_ = c.up.Close()
		}
	})
}

// New forwards every connection accepted on ln to one that dial opens,
// until Close (which closes ln). Dials end with ctx or at Close. seed
// seeds the loss draws, so that a seeded run loses the same chunks.
func New(ctx context.Context, ln net.Listener, dial Dialer, seed uint64) *Proxy {
	ctx, stop := context.WithCancel(ctx)
	p := &Proxy{ln: ln, dial: dial, ctx: ctx, stop: stop,
		rng: rand.New(rand.NewPCG(seed, seed^0x51ed)), conns: map[*conn]struct{}{}}
	p.wg.Go(p.accept)
	return p
}

// Addr is the listener's address.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Shape sets what the link does to chunks read from now on; chunks
// already in flight keep their delay.
func (p *Proxy) Shape(s Shaping) {
	p.mu.Lock()
	p.shape = s
	p.mu.Unlock()
}

// IsCut reports whether the link is cut.
func (p *Proxy) IsCut() bool { return p.cut.Load() }

func (p *Proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if p.cut.Load() && p.hold(down) {
			continue // blackholed: accepted, never read, closed at the heal
		}
		p.wg.Go(func() { p.serve(down) })
	}
}

// hold keeps a connection accepted during a cut; false if the link was
// healed meanwhile (serve it), true if closed (it is closed).
func (p *Proxy) hold(down net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		_ = down.Close()
		return true
	case !p.cut.Load():
		return false
	}
	p.conns[&conn{down: down, held: true, done: make(chan struct{})}] = struct{}{}
	return true
}

// serve dials the upstream for one accepted connection and pumps both
// ways until either side closes, the heal closes a connection the cut
// held, or the proxy is closed.
func (p *Proxy) serve(down net.Conn) {
	ctx, cancel := context.WithTimeout(p.ctx, DialTimeout)
	up, err := p.dial(ctx)
	cancel()
	if err != nil { // upstream stopped or unreachable: the client sees the connection close
		_ = down.Close()
		return
	}
	c := &conn{down: down, up: up, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	c.held = p.cut.Load()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(c, up, down) })
	wg.Go(func() { p.pump(c, down, up) })
	wg.Wait()
}

type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, each chunk at its due time (read time plus its
// delay, order kept), until either side fails or c is closed; it closes c
// when it ends so that the other direction ends too.
func (p *Proxy) pump(c *conn, dst, src net.Conn) {
	queue := make(chan chunk, queueLen)
	go func() { // ends when src fails: at the latest when c is closed
		defer close(queue)
		var last time.Time
		for {
			buf := make([]byte, chunkLen)
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(p.delay())
				if due.Before(last) {
					due = last // a late chunk holds back the ones behind it
				}
				last = due
				queue <- chunk{data: buf[:n], due: due}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		c.close()
		for range queue { // let the reader end
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ch := range queue {
		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C: // the emulated delay itself
			case <-c.done:
				return
			}
		}
		if !p.forward(c, dst, ch.data) {
			return
		}
	}
}

// delay is the delay of the next chunk under the current shaping.
func (p *Proxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.shape.Latency
	if p.shape.Loss > 0 && p.rng.Float64() < p.shape.Loss {
		d += p.shape.RTO
	}
	return d
}

// forward writes one chunk unless the link is cut; cut, it waits for c to
// be closed (by the heal) and reports false. inflight lets Cut wait for
// the writes that passed the check before it.
func (p *Proxy) forward(c *conn, dst net.Conn, data []byte) bool {
	p.inflight.Add(1)
	if p.cut.Load() {
		p.inflight.Add(-1)
		<-c.done
		return false
	}
	_, err := dst.Write(data)
	p.inflight.Add(-1)
	return err == nil
}

// Cut stops all traffic (see the package doc) and returns the time from
// which nothing passes and how many connections it holds: it waits,
// bounded by cutSettle, for the chunks being written as it cut. ErrCut if
// the link is already cut.
func (p *Proxy) Cut() (at time.Time, held int, err error) {
	p.mu.Lock()
	if p.cut.Load() {
		p.mu.Unlock()
		return time.Time{}, 0, ErrCut
	}
	for c := range p.conns {
		c.held = true
	}
	held = len(p.conns)
	p.cut.Store(true)
	p.mu.Unlock()
	settle := time.Now().Add(cutSettle)
	for p.inflight.Load() > 0 {
		if time.Now().After(settle) {
			return time.Time{}, held, fmt.Errorf("a chunk still being written %s after the cut", cutSettle)
		}
		time.Sleep(100 * time.Microsecond) // a write to a local socket: microseconds
	}
	return time.Now(), held, nil
}

// Heal closes every connection the cut held, forwards again and returns
// how many it closed. ErrNotCut if the link is not cut.
func (p *Proxy) Heal() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut.Load() {
		return 0, ErrNotCut
	}
	var held []*conn
	for c := range p.conns {
		if c.held {
			held = append(held, c)
			if c.up == nil { // never served: no pump removes it
				delete(p.conns, c)
			}
		}
	}
	for _, c := range held {
		c.close() // before traffic resumes: nothing held is delivered late
	}
	p.cut.Store(false)
	return len(held), nil
}

// Close stops the proxy: no more connections, every one closed, pending
// dials abandoned, and every goroutine of the proxy ended when it returns.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	p.stop()
	_ = p.ln.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}
