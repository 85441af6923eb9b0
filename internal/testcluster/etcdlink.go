package testcluster

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Each agent reaches etcd through its own link: a TCP proxy on 127.0.0.1
// run by the test process, the only etcd endpoint in the node's config.
// The test's own client (Cluster.Etcd) and the operators' tools
// (EtcdEndpoints) talk to etcd directly. A link lets a test cut ONE agent
// off from etcd while the others still reach it, which stopping etcd
// cannot do.
//
// Healthy, a link copies bytes both ways, optionally after a fixed
// latency. Cut, it is a blackhole, as a partition is to TCP: nothing is
// closed and nothing passes. Connections open at the cut stop forwarding
// in both directions; new ones are accepted but never forwarded. So the
// agent's etcd calls hang until their own deadlines rather than fail
// fast (the harder case: a refused connection tells the agent at once).
// Healing closes every connection the cut held (the client reconnects, as
// after a partition that outlasted its keepalive; nothing held during the
// cut is delivered late) and forwards again.

const (
	// linkDialTimeout bounds a link's dial of etcd (127.0.0.1: a stopped
	// etcd refuses at once).
	linkDialTimeout = 2 * time.Second
	// linkQueue bounds the chunks in flight in one direction of one
	// connection: with the latency, what the wire holds.
	linkQueue = 64
	// linkChunk is the largest chunk read at once.
	linkChunk = 32 << 10
	// cutSettle bounds how long Cut waits for the chunks being written as
	// it cut (a write to a socket on 127.0.0.1 takes microseconds unless
	// the reader is frozen).
	cutSettle = 2 * time.Second
)

// etcdLink is one node's proxy to etcd. Safe for concurrent use.
type etcdLink struct {
	name     string // the node's, for log lines
	ln       net.Listener
	upstream string // etcd's host:port
	log      *testLog

	cut      atomic.Bool
	inflight atomic.Int64 // chunks past the cut check and being written
	latency  atomic.Int64 // a time.Duration added to every chunk, each way

	mu     sync.Mutex
	conns  map[*linkConn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection's pumps
}

// linkConn is one proxied connection; up is nil for one accepted while
// the link was cut (it is never forwarded).
type linkConn struct {
	down, up net.Conn
	held     bool          // caught by a cut: closed at the heal; under etcdLink.mu
	done     chan struct{} // closed by close
	once     sync.Once
}

func (c *linkConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.down.Close()
		if c.up != nil {
			_ = c.up.Close()
		}
	})
}

// newEtcdLink listens on a free port of 127.0.0.1 and forwards to
// upstream (host:port).
func newEtcdLink(name, upstream string, log *testLog) (*etcdLink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("etcd link of %s: %w", name, err)
	}
	l := &etcdLink{name: name, ln: ln, upstream: upstream, log: log, conns: map[*linkConn]struct{}{}}
	l.wg.Go(l.accept)
	return l, nil
}

// URL is the link's address as an etcd endpoint.
func (l *etcdLink) URL() string { return "http://" + l.ln.Addr().String() }

func (l *etcdLink) accept() {
	for {
		down, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		if l.cut.Load() && l.hold(down) {
			continue // blackholed: accepted, never read, closed at the heal
		}
		l.wg.Go(func() { l.serve(down) })
	}
}

// hold keeps a connection accepted during a cut; false if the link was
// healed meanwhile (serve it) or closed (it is closed).
func (l *etcdLink) hold(down net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		_ = down.Close()
		return true
	case !l.cut.Load():
		return false
	}
	l.conns[&linkConn{down: down, held: true, done: make(chan struct{})}] = struct{}{}
	return true
}

// serve dials etcd for one accepted connection and pumps both ways until
// either side closes, the heal closes a connection the cut held, or the
// link is closed.
func (l *etcdLink) serve(down net.Conn) {
	up, err := net.DialTimeout("tcp", l.upstream, linkDialTimeout)
	if err != nil { // etcd stopped: the client sees the connection close
		_ = down.Close()
		return
	}
	c := &linkConn{down: down, up: up, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.close()
		return
	}
	c.held = l.cut.Load()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	defer func() {
		c.close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { l.pump(c, up, down) })
	wg.Go(func() { l.pump(c, down, up) })
	wg.Wait()
}

type linkChunkDue struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, each chunk at its due time (read time plus the
// latency, order kept), until either side fails or c is closed; it closes
// c when it ends so that the other direction ends too.
func (l *etcdLink) pump(c *linkConn, dst, src net.Conn) {
	queue := make(chan linkChunkDue, linkQueue)
	go func() { // ends when src fails: at the latest when c is closed
		defer close(queue)
		var last time.Time
		for {
			buf := make([]byte, linkChunk)
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(time.Duration(l.latency.Load()))
				if due.Before(last) {
					due = last
				}
				last = due
				queue <- linkChunkDue{data: buf[:n], due: due}
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
			case <-timer.C: // the latency itself
			case <-c.done:
				return
			}
		}
		if !l.forward(c, dst, ch.data) {
			return
		}
	}
}

// forward writes one chunk unless the link is cut; cut, it waits for c to
// be closed (by the heal) and reports false. inflight lets Cut wait for
// the writes that passed the check before it.
func (l *etcdLink) forward(c *linkConn, dst net.Conn, data []byte) bool {
	l.inflight.Add(1)
	if l.cut.Load() {
		l.inflight.Add(-1)
		<-c.done
		return false
	}
	_, err := dst.Write(data)
	l.inflight.Add(-1)
	return err == nil
}

// Cut stops all traffic (see the comment at the top) and returns the
// time from which nothing passes: it waits, bounded by cutSettle, for
// the chunks being written as it cut.
func (l *etcdLink) Cut() (time.Time, error) {
	l.mu.Lock()
	if l.cut.Load() {
		l.mu.Unlock()
		return time.Time{}, fmt.Errorf("etcd link of %s is already cut", l.name)
	}
	for c := range l.conns {
		c.held = true
	}
	held := len(l.conns)
	l.cut.Store(true)
	l.mu.Unlock()
	settle := time.Now().Add(cutSettle)
	for l.inflight.Load() > 0 {
		if time.Now().After(settle) {
			return time.Time{}, fmt.Errorf("etcd link of %s: a chunk still being written %s after the cut", l.name, cutSettle)
		}
		time.Sleep(100 * time.Microsecond) // a write to 127.0.0.1: microseconds
	}
	at := time.Now()
	l.log.logf("[%s] etcd link cut: %d connections blackholed", l.name, held)
	return at, nil
}

// Heal closes every connection the cut held and forwards again.
func (l *etcdLink) Heal() error {
	l.mu.Lock()
	if !l.cut.Load() {
		l.mu.Unlock()
		return fmt.Errorf("etcd link of %s is not cut", l.name)
	}
	var held []*linkConn
	for c := range l.conns {
		if c.held {
			held = append(held, c)
			if c.up == nil { // never served: no pump removes it
				delete(l.conns, c)
			}
		}
	}
	for _, c := range held {
		c.close() // before traffic resumes: nothing held is delivered late
	}
	l.cut.Store(false)
	l.mu.Unlock()
	l.log.logf("[%s] etcd link healed: %d held connections closed", l.name, len(held))
	return nil
}

// Close stops the link: no more connections, every one closed, and every
// goroutine of the link ended when it returns.
func (l *etcdLink) Close() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	_ = l.ln.Close()
	for _, c := range conns {
		c.close()
	}
	l.wg.Wait()
}

// EtcdEndpoint is the etcd endpoint in the node's config: its link.
func (n *Node) EtcdEndpoint() string { return n.link.URL() }

// CutEtcd cuts the node's agent off from etcd, as a partition between
// them would, while every other node and the test still reach etcd: from
// the returned time on, nothing the agent sends reaches etcd and nothing
// from etcd reaches the agent; its calls hang until their own deadlines
// (connections are not closed; new ones are accepted and never
// forwarded). The node's PostgreSQL and REST API stay reachable. It fails
// the test if the link is already cut.
func (n *Node) CutEtcd(t testing.TB) time.Time {
	t.Helper()
	at, err := n.link.Cut()
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return at
}

// HealEtcd ends a CutEtcd: the connections the cut held are closed (the
// agent reconnects) and traffic flows again. It fails the test if the
// link is not cut.
func (n *Node) HealEtcd(t testing.TB) {
	t.Helper()
	if err := n.link.Heal(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// SetEtcdLatency delays every chunk of the node's etcd traffic by d in
// each direction (order kept) from now on; 0 restores a plain copy.
// Chunks already in flight keep their delay.
func (n *Node) SetEtcdLatency(d time.Duration) {
	n.link.latency.Store(int64(d))
	n.c.log.logf("[%s] etcd link latency set to %s each way", n.Name, d)
}

// CutEtcdAll cuts every node's agent off from etcd (CutEtcd on each, the
// test's own client still reaches it) and returns the time the last link
// was cut.
func (c *Cluster) CutEtcdAll(t testing.TB) time.Time {
	t.Helper()
	var at time.Time
	for _, n := range c.nodes {
		at = n.CutEtcd(t)
	}
	return at
}

// HealEtcdAll heals every node's link that is cut.
func (c *Cluster) HealEtcdAll(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		if n.link.cut.Load() {
			n.HealEtcd(t)
		}
	}
}

// healLinks heals every cut link and reports the errors (for the cleanup:
// agents stop faster, and release their keys, when they reach etcd).
func (c *Cluster) healLinks() {
	for _, n := range c.nodes {
		if n.link != nil && n.link.cut.Load() {
			_ = n.link.Heal()
		}
	}
}

// closeLinks closes every node's link; call it once the agents are gone.
func (c *Cluster) closeLinks() {
	for _, n := range c.nodes {
		if n.link != nil {
			n.link.Close()
		}
	}
}

// hostPort strips the scheme of an http:// URL.
func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }
