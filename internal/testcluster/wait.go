package testcluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

const (
	// pollInterval is how often Wait helpers re-check: fast enough to
	// time failovers to ~0.1 s, slow enough to stay off 2 busy cores.
	pollInterval = 100 * time.Millisecond
	// checkTimeout bounds one check, so that a hung call leaves time for
	// another try and keeps its informative error as the last state.
	checkTimeout = 3 * time.Second
)

// Poll calls check every pollInterval until it returns nil, and fails the
// test if that does not happen within timeout, with what it waited for and
// check's last error (the last observed state). Each call of check gets a
// context bounded by checkTimeout. Call it from the test goroutine.
func Poll(t testing.TB, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	if err := poll(t.Context(), timeout, check); err != nil {
		t.Fatalf("timed out after %s waiting for %s; last state: %v", timeout, what, err)
	}
}

// poll is Poll returning the last error instead of failing.
func poll(ctx context.Context, timeout time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, checkTimeout)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		// Keep the informative error when the overall deadline cut a check.
		if last == nil || ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

// WaitLeader waits until the leader key names a node whose GET /primary
// answers 200, and returns that node.
func (c *Cluster) WaitLeader(t testing.TB, timeout time.Duration) *Node {
	t.Helper()
	return pollNode(t, timeout, "a leader (leader key + GET /primary 200)", c.checkLeader)
}

// pollNode is Poll for a check that finds a node: it returns the node the
// passing check found.
func pollNode(t testing.TB, timeout time.Duration, what string, check func(ctx context.Context) (*Node, error)) *Node {
	t.Helper()
	var found *Node
	Poll(t, timeout, what, func(ctx context.Context) (err error) {
		found, err = check(ctx)
		return err
	})
	return found
}

func (c *Cluster) checkLeader(ctx context.Context) (*Node, error) {
	n, err := c.LeaderNode(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.API().CheckPrimary(ctx); err != nil {
		return nil, fmt.Errorf("leader key names %s, but: %w", n.Name, err)
	}
	return n, nil
}

// WaitHealthy waits until there is a leader (as WaitLeader) and every other
// node whose agent runs is a running replica (GET /patroni: role replica,
// state running) streaming from it (the leader's pg_stat_replication shows
// that many walsenders in state streaming). It returns the leader. It
// fails at once when an agent has crashed (see Node.Crashed): nodes the
// test stopped or killed are left out, a crashed one is not.
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) *Node {
	t.Helper()
	return pollNode(t, timeout, "a healthy cluster (1 leader, every running node a streaming replica)", func(ctx context.Context) (*Node, error) {
		for _, n := range c.nodes {
			if err := n.Crashed(); err != nil {
				t.Fatalf("testcluster: waiting for a healthy cluster: %v", err)
			}
		}
		return c.checkHealthy(ctx)
	})
}

func (c *Cluster) checkHealthy(ctx context.Context) (*Node, error) {
	leader, err := c.checkLeader(ctx)
	if err != nil {
		return nil, err
	}
	replicas := 0
	for _, n := range c.Others(leader.Name) {
		if !n.Running() {
			continue
		}
		replicas++
		st, err := n.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st["role"] != "replica" || st["state"] != "running" {
			return nil, fmt.Errorf("%s: role=%v state=%v, want replica/running", n.Name, st["role"], st["state"])
		}
	}
	streaming, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil {
		return nil, err
	}
	if int(streaming) < replicas {
		return nil, fmt.Errorf("leader %s: %d streaming walsenders, want %d", leader.Name, streaming, replicas)
	}
	return leader, nil
}

// WaitRole waits until the node's GET /patroni shows role and state
// "running".
func (n *Node) WaitRole(t testing.TB, timeout time.Duration, role string) {
	t.Helper()
	Poll(t, timeout, fmt.Sprintf("%s to run as %s", n.Name, role), func(ctx context.Context) error {
		st, err := n.Status(ctx)
		if err != nil {
			return err
		}
		if st["role"] != role || st["state"] != "running" {
			return fmt.Errorf("role=%v state=%v", st["role"], st["state"])
		}
		return nil
	})
}

// Every calls fn every d until ctx ends, the first time one d from now;
// it returns when ctx ends and does not call fn once ctx has ended (a
// tick and the end can be ready together). Load generators and samplers
// run it on their own goroutine.
func Every(ctx context.Context, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if ctx.Err() != nil {
			return
		}
		fn()
	}
}
