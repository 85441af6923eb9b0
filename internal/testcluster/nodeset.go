package testcluster

import "sync"

// Named is a node of a test cluster as the helpers below see it: this
// package's *Node and the chaos suite's, so that both harnesses look up,
// filter and stop their nodes with one piece of code.
type Named interface {
	comparable
	NodeName() string
}

// NodeNamed returns the node of nodes called name, or the zero N (nil).
func NodeNamed[N Named](nodes []N, name string) N {
	for _, n := range nodes {
		if n.NodeName() == name {
			return n
		}
	}
	var none N
	return none
}

// NodesBut returns every node of nodes but the one called name.
func NodesBut[N Named](nodes []N, name string) []N {
	var out []N
	for _, n := range nodes {
		if n.NodeName() != name {
			out = append(out, n)
		}
	}
	return out
}

// StopLeaderLast runs stop concurrently on every node but the one called
// leader and, once they have all returned, on the leader (if there is
// one): teardown then does not make replicas race for a released leader
// key.
func StopLeaderLast[N Named](nodes []N, leader string, stop func(N)) {
	var wg sync.WaitGroup
	for _, n := range NodesBut(nodes, leader) {
		wg.Go(func() { stop(n) })
	}
	wg.Wait()
	var none N
	if n := NodeNamed(nodes, leader); n != none {
		stop(n)
	}
}
