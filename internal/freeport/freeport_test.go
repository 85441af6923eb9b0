package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestEphemeralLow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"32768\t60999\n", 32768},
		{"40000 50000", 40000},
		{"", defaultEphemeralLow},
		{"garbage 1", defaultEphemeralLow},
		{"0 0", defaultEphemeralLow},
	} {
		if got := ephemeralLow(tc.in); got != tc.want {
			t.Errorf("ephemeralLow(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestPickIsBelowEphemeralDistinctAndBindable(t *testing.T) {
	high := ephemeralLow(readRange())
	ports, err := PickN(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if high > lowest+100 && (p < lowest || p >= high) {
			t.Errorf("port %d outside [%d, %d)", p, lowest, high)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		_ = l.Close()
	}
}

func TestPickSkipsABoundPort(t *testing.T) {
	// Hold every port Pick returns and check it never returns a held one
	// (the process-wide set) nor one another listener holds.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 20 {
		p, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("Pick returned %d, which is already bound: %v", p, err)
		}
		held = append(held, l)
	}
}
