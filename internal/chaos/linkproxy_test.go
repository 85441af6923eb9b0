package chaos

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes every connection on a free loopback port.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func TestLinkProxyShapesAndKeepsOrder(t *testing.T) {
	p, err := newLinkProxy("", "127.0.0.1:0", echoServer(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg []byte) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo through the proxy: got %q, want %q", got, msg)
		}
		return time.Since(start)
	}
	roundTrip([]byte("plain"))

	p.Shape(shaping{Latency: 150 * time.Millisecond})
	if rtt := roundTrip([]byte("slow")); rtt < 300*time.Millisecond {
		t.Errorf("round trip with 150 ms each way took %s, want ≥ 300 ms", rtt)
	}
	// Every chunk lost once: each arrives an RTO late, in order.
	p.Shape(shaping{Loss: 1, RTO: 100 * time.Millisecond})
	for i := range 5 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		if rtt := roundTrip(msg); rtt < 200*time.Millisecond {
			t.Errorf("round trip %d with every chunk lost took %s, want ≥ 2 RTOs", i, rtt)
		}
	}
	p.Shape(shaping{})
	roundTrip([]byte("healed"))
}

func TestLinkProxyCloseEndsConnections(t *testing.T) {
	p, err := newLinkProxy("", "127.0.0.1:0", echoServer(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(c, one); err != nil {
		t.Fatal(err)
	}
	p.Close() // returns only once every pump has ended
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(one); err == nil {
		t.Fatal("connection still open after Close")
	}
}
