package testcluster

import (
	"context"
	"fmt"
	"time"
)

// Helpers the e2e tests share with the other harnesses' users.

// LeaderNode returns the node the leader key names; ErrNoLeader when
// there is no leader key. It does not ask the node whether it serves as
// primary: callers check what they need (GET /primary, recovery).
func (c *Cluster) LeaderNode(ctx context.Context) (*Node, error) {
	name, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	n := c.Node(name)
	if n == nil {
		return nil, fmt.Errorf("leader key names %q, not a node of this cluster", name)
	}
	return n, nil
}

// Eventually is Poll for checks whose failure should not stop the test:
// it returns nil once check does, or check's last error after timeout.
func Eventually(ctx context.Context, timeout time.Duration, check func(ctx context.Context) error) error {
	return poll(ctx, timeout, check)
}
