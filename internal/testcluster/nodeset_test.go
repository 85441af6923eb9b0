package testcluster

import (
	"slices"
	"sync"
	"testing"
)

// namedNode is a Named node of the node-set tests: only a name.
type namedNode struct{ name string }

func (n *namedNode) NodeName() string { return n.name }

func namedNodes(names ...string) []*namedNode {
	var out []*namedNode
	for _, name := range names {
		out = append(out, &namedNode{name})
	}
	return out
}

func nodeNames(nodes []*namedNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.name)
	}
	return out
}

func TestNodeNamedAndNodesBut(t *testing.T) {
	nodes := namedNodes("pg1", "pg2", "pg3")
	if n := NodeNamed(nodes, "pg2"); n != nodes[1] {
		t.Errorf("NodeNamed(pg2) = %v, want the second node", n)
	}
	if n := NodeNamed(nodes, "pg9"); n != nil {
		t.Errorf("NodeNamed(pg9) = %v, want nil", n)
	}
	if got := nodeNames(NodesBut(nodes, "pg2")); !slices.Equal(got, []string{"pg1", "pg3"}) {
		t.Errorf("NodesBut(pg2) = %v, want pg1, pg3", got)
	}
	if got := nodeNames(NodesBut(nodes, "")); !slices.Equal(got, []string{"pg1", "pg2", "pg3"}) {
		t.Errorf("NodesBut(\"\") = %v, want every node", got)
	}
}

// TestStopLeaderLast: the leader is stopped after every other node's stop
// has returned; without a leader every node is stopped.
func TestStopLeaderLast(t *testing.T) {
	for _, leader := range []string{"pg2", ""} {
		var mu sync.Mutex
		var stopped []*namedNode
		StopLeaderLast(namedNodes("pg1", "pg2", "pg3"), leader, func(n *namedNode) {
			mu.Lock()
			defer mu.Unlock()
			stopped = append(stopped, n)
		})
		got := nodeNames(stopped)
		if len(got) != 3 {
			t.Fatalf("leader %q: stopped %v, want every node", leader, got)
		}
		if leader != "" && got[2] != leader {
			t.Errorf("leader %q: stopped in the order %v, want the leader last", leader, got)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"pg1", "pg2", "pg3"}) {
			t.Errorf("leader %q: stopped %v, want pg1, pg2, pg3 once each", leader, got)
		}
	}
}
