package linkproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its last test:
// Close must end every goroutine of a proxy.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer echoes every connection on a free loopback port until the
// test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// newProxy starts a proxy to an echo server; the test closes it.
func newProxy(t *testing.T) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return New(t.Context(), ln, TCP(echoServer(t)), 1)
}

// client is one connection through a proxy.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) client {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return client{c, bufio.NewReader(c)}
}

// roundTrip sends msg and reads its echo within wait.
func (c client) roundTrip(msg []byte, wait time.Duration) ([]byte, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	n, err := io.ReadFull(c.r, got)
	return got[:n], err
}

// timedEcho fails the test unless msg comes back within 10s, and returns
// how long that took.
func (c client) timedEcho(t *testing.T, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	got, err := c.roundTrip(msg, 10*time.Second)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: got %q, %v; want %q", got, err, msg)
	}
	return time.Since(start)
}

func TestShapeDelaysAndKeepsOrder(t *testing.T) {
	p := newProxy(t)
	defer p.Close()
	c := dial(t, p)
	c.timedEcho(t, []byte("plain"))

	p.Shape(Shaping{Latency: 150 * time.Millisecond})
	if rtt := c.timedEcho(t, []byte("slow")); rtt < 300*time.Millisecond {
		t.Errorf("round trip with 150 ms each way took %s, want ≥ 300 ms", rtt)
	}
	// Every chunk lost once: each arrives an RTO late, in order.
	p.Shape(Shaping{Loss: 1, RTO: 100 * time.Millisecond})
	for i := range 5 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		if rtt := c.timedEcho(t, msg); rtt < 200*time.Millisecond {
			t.Errorf("round trip %d with every chunk lost took %s, want ≥ 2 RTOs", i, rtt)
		}
	}
	p.Shape(Shaping{})
	c.timedEcho(t, []byte("healed"))
}

func TestCutBlackholesAndHealCloses(t *testing.T) {
	p := newProxy(t)
	defer p.Close()
	ping := []byte("ping\n")
	old := dial(t, p)
	old.timedEcho(t, ping)

	if _, held, err := p.Cut(); err != nil || held != 1 {
		t.Fatalf("Cut: %d held, %v; want 1, nil", held, err)
	}
	if _, _, err := p.Cut(); !errors.Is(err, ErrCut) {
		t.Errorf("a second Cut: %v, want ErrCut", err)
	}
	if !p.IsCut() {
		t.Errorf("IsCut false after a Cut")
	}
	// A blackhole: no answer, and no error either, on the old connection
	// and on one opened during the cut (the dial itself succeeds).
	if got, err := old.roundTrip(ping, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("cut link, open connection: %q, %v; want a timeout", got, err)
	}
	during := dial(t, p)
	if got, err := during.roundTrip(ping, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("cut link, new connection: %q, %v; want a timeout", got, err)
	}

	if closed, err := p.Heal(); err != nil || closed != 2 {
		t.Fatalf("Heal: %d closed, %v; want 2, nil", closed, err)
	}
	for _, h := range []struct {
		name string
		c    client
	}{{"open at the cut", old}, {"opened during the cut", during}} {
		// Nothing held is delivered: the connection ends.
		_ = h.c.SetDeadline(time.Now().Add(time.Second))
		if got, err := h.c.r.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %s after the heal: %q, %v; want it closed", h.name, got, err)
		}
	}
	dial(t, p).timedEcho(t, ping)
	if _, err := p.Heal(); !errors.Is(err, ErrNotCut) {
		t.Errorf("Heal of a healthy link: %v, want ErrNotCut", err)
	}
}

// TestCloseEndsEverything: Close returns (every goroutine of the proxy
// ended, which TestMain checks) with live, cut and held connections, and
// the clients see their connections end.
func TestCloseEndsEverything(t *testing.T) {
	p := newProxy(t)
	live := dial(t, p)
	live.timedEcho(t, []byte("x"))
	if _, _, err := p.Cut(); err != nil {
		t.Fatal(err)
	}
	held := dial(t, p)
	_, _ = held.Write([]byte("lost\n"))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	for _, c := range []client{live, held} {
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a connection outlived Close: %v", err)
		}
	}
}
