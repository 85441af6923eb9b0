package testcluster

import (
	"slices"
	"sync"
	"testing"
)

// TestStopLeaderLast: the leader is stopped after every other node's stop
// has returned; without a leader every node is stopped.
func TestStopLeaderLast(t *testing.T) {
	for _, leader := range []string{"pg2", ""} {
		var mu sync.Mutex
		var stopped []string
		StopLeaderLast([]string{"pg1", "pg2", "pg3"}, func(n string) bool { return n == leader }, func(n string) {
			mu.Lock()
			defer mu.Unlock()
			stopped = append(stopped, n)
		})
		if len(stopped) != 3 {
			t.Fatalf("leader %q: stopped %v, want every node", leader, stopped)
		}
		if leader != "" && stopped[2] != leader {
			t.Errorf("leader %q: stopped in the order %v, want the leader last", leader, stopped)
		}
		slices.Sort(stopped)
		if !slices.Equal(stopped, []string{"pg1", "pg2", "pg3"}) {
			t.Errorf("leader %q: stopped %v, want pg1, pg2, pg3 once each", leader, stopped)
		}
	}
}
