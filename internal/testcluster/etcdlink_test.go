package testcluster

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echoServer answers every line with the same line, on 127.0.0.1, until
// the test ends.
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

func newTestLink(t *testing.T) *etcdLink {
	t.Helper()
	log := &testLog{t: t}
	l, err := newEtcdLink("pg1", echoServer(t), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		log.close()
	})
	return l
}

func dialLink(t *testing.T, l *etcdLink) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", hostPort(l.URL()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads the answer within wait.
func roundTrip(c net.Conn, r *bufio.Reader, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestEtcdLinkCutBlackholesAndHealCloses(t *testing.T) {
	l := newTestLink(t)
	old, oldR := dialLink(t, l)
	if got, err := roundTrip(old, oldR, time.Second); err != nil || got != "ping\n" {
		t.Fatalf("healthy link: %q, %v", got, err)
	}

	if _, err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Cut(); err == nil {
		t.Errorf("a second Cut succeeded")
	}
	// A blackhole: no answer, and no error either, on the old connection
	// and on one opened during the cut (the dial itself succeeds).
	if got, err := roundTrip(old, oldR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("cut link, open connection: %q, %v; want a timeout", got, err)
	}
	during, duringR := dialLink(t, l)
	if got, err := roundTrip(during, duringR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("cut link, new connection: %q, %v; want a timeout", got, err)
	}

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		name string
		conn net.Conn
		r    *bufio.Reader
	}{{"open at the cut", old, oldR}, {"opened during the cut", during, duringR}} {
		// Nothing held is delivered: the connection ends.
		_ = h.conn.SetDeadline(time.Now().Add(time.Second))
		if got, err := h.r.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %s after the heal: %q, %v; want it closed", h.name, got, err)
		}
	}
	after, afterR := dialLink(t, l)
	if got, err := roundTrip(after, afterR, time.Second); err != nil || got != "ping\n" {
		t.Fatalf("healed link: %q, %v", got, err)
	}
	if err := l.Heal(); err == nil {
		t.Errorf("Heal of a healthy link succeeded")
	}
}

func TestEtcdLinkLatency(t *testing.T) {
	l := newTestLink(t)
	c, r := dialLink(t, l)
	const latency = 50 * time.Millisecond
	l.latency.Store(int64(latency))
	start := time.Now()
	if got, err := roundTrip(c, r, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("%q, %v", got, err)
	}
	if took := time.Since(start); took < 2*latency {
		t.Errorf("round trip took %s, want ≥ %s (latency each way)", took, 2*latency)
	}
}

// TestEtcdLinkCloseEndsEverything: Close returns (every goroutine of the
// link ended) with live, cut and held connections.
func TestEtcdLinkCloseEndsEverything(t *testing.T) {
	log := &testLog{t: t}
	defer log.close()
	l, err := newEtcdLink("pg1", echoServer(t), log)
	if err != nil {
		t.Fatal(err)
	}
	live, liveR := dialLink(t, l)
	if _, err := roundTrip(live, liveR, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	held, _ := dialLink(t, l)
	_, _ = held.Write([]byte("lost\n"))
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	_ = live.SetDeadline(time.Now().Add(time.Second))
	if _, err := liveR.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection outlived Close: %v", err)
	}
}
