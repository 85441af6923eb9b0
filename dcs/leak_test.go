package dcs

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// peerLinger bounds how long a closed multi-member embedded etcd may keep a
// peer HTTP connection: embed.Etcd.Close gives its peer servers 1 s, drops
// the Shutdown error and leaves an active connection to its I/O deadline
// (etcd-io/etcd#22389); the quorum-loss test's goroutines end within 3 s.
const peerLinger = 10 * time.Second

// TestMain fails the package when a goroutine outlives its last test: every
// goroutine has an owner and a way out (house style 7). Like
// goleak.VerifyTestMain, but a goroutine gets peerLinger to end.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := findLeaks(peerLinger); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines still running %s after the last test: %v\n", peerLinger, err)
			code = 1
		}
	}
	os.Exit(code)
}

// findLeaks returns goleak's report of the goroutines still running at the
// deadline, or nil once there are none. goleak.Find itself retries with a
// backoff for about a second before it reports.
func findLeaks(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
