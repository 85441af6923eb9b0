package chaos

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/proc"
)

// Delay and loss. This kernel has no netem qdisc, so a node's etcd traffic
// goes through a userspace TCP proxy of the test process, one per (node,
// etcd member): the agent's endpoints are the proxies, listening on
// 127.0.0.1 inside the node's namespace, and each proxy dials the member
// from inside that namespace too, so the blackhole routes and the veth
// detaching of the partition faults still cut the traffic as before. With
// no shaping a proxy only copies bytes. A shaping delays every chunk by a
// fixed latency in each direction, and "loses" a share of them the way TCP
// shows a lost segment: it arrives a retransmission timeout late, and
// everything behind it waits (order is kept).

// shaping is what a link does to the chunks it forwards.
type shaping struct {
	Latency time.Duration // added to every chunk, each direction
	Loss    float64       // the share of chunks lost once and retransmitted
	RTO     time.Duration // how late a lost chunk arrives
}

func (s shaping) String() string {
	switch {
	case s.Loss > 0:
		return fmt.Sprintf("%.0f%% loss, rto %s", 100*s.Loss, s.RTO)
	case s.Latency > 0:
		return fmt.Sprintf("+%s each way", s.Latency)
	}
	return "none"
}

// linkProxy forwards connections accepted on a listener inside a node's
// namespace to one upstream address. Safe for concurrent use.
type linkProxy struct {
	ln       net.Listener
	nsPath   string
	upstream string

	mu    sync.Mutex
	shape shaping
	rng   *rand.Rand
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

// linkBuffer bounds the chunks in flight in one direction of a link.
const linkBuffer = 256

// linkDialTimeout bounds a proxy's dial of its etcd member.
const linkDialTimeout = 2 * time.Second

// newLinkProxy listens on addr inside the namespace at nsPath and forwards
// to upstream, dialing from the same namespace.
func newLinkProxy(nsPath, addr, upstream string, seed uint64) (*linkProxy, error) {
	var ln net.Listener
	err := proc.InNetns(nsPath, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("link proxy %s → %s: %w", addr, upstream, err)
	}
	p := &linkProxy{ln: ln, nsPath: nsPath, upstream: upstream,
		rng: rand.New(rand.NewPCG(seed, seed^0x51ed)), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Shape sets what the link does to chunks read from now on.
func (p *linkProxy) Shape(s shaping) {
	p.mu.Lock()
	p.shape = s
	p.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for the pumps.
func (p *linkProxy) Close() {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *linkProxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Go(func() { p.serve(down) })
	}
}

// serve dials the upstream for one accepted connection and pumps both
// ways until either side closes.
func (p *linkProxy) serve(down net.Conn) {
	var up net.Conn
	err := proc.InNetns(p.nsPath, func() (err error) {
		up, err = net.DialTimeout("tcp", p.upstream, linkDialTimeout)
		return err
	})
	if err != nil || !p.track(down, up) {
		_ = down.Close()
		if up != nil {
			_ = up.Close()
		}
		return
	}
	defer p.untrack(down, up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(up, down) })
	wg.Go(func() { p.pump(down, up) })
	wg.Wait()
}

func (p *linkProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *linkProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, each chunk delivered at its due time; it closes
// both when either ends, so the other direction ends too.
func (p *linkProxy) pump(dst, src net.Conn) {
	queue := make(chan chunk, linkBuffer)
	go func() {
		defer close(queue)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
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
		_ = dst.Close()
		_ = src.Close()
		for range queue { // let the reader end
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for c := range queue {
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			<-timer.C // the emulated latency itself
		}
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}

// delay is the delay of the next chunk under the current shaping.
func (p *linkProxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.shape.Latency
	if p.shape.Loss > 0 && p.rng.Float64() < p.shape.Loss {
		d += p.shape.RTO
	}
	return d
}
