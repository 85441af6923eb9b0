package dcs

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease returns the current session lease id, 0 when there is none.
func (c *Client) Lease() int64 { return c.lease.Load() }

// GrantLease grants a new lease of ttl (rounded up to whole seconds, as
// etcd counts them) and makes it the current lease. A previous lease is not
// revoked: its keys stay until it expires.
// etcd may raise a very short ttl to its minimum (about 2s by default).
func (c *Client) GrantLease(ctx context.Context, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("dcs: grant lease: ttl %s is not positive", ttl)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	resp, err := c.cli.Grant(ctx, secs)
	if err != nil {
		return 0, fmt.Errorf("dcs: grant lease: %w", err)
	}
	c.touch()
	c.lease.Store(int64(resp.ID))
	c.log.Debug("etcd lease granted", "lease", fmt.Sprintf("%x", int64(resp.ID)), "ttl_s", resp.TTL)
	return int64(resp.ID), nil
}

// KeepAlive renews the current lease with ONE KeepAliveOnce. The caller
// reads its own clock just before the call: on success etcd cannot expire
// the lease before that instant + ttl, which is the bound the leader fences
// itself by (DESIGN.md §2). It never uses the KeepAlive stream, whose
// channel reports a dead lease only after a full TTL.
//
// When etcd answers that the lease does not exist (or has TTL <= 0) it
// clears the current lease and returns ErrLeaseLost; so it does when there
// is no current lease. Other errors (etcd unreachable, ctx ended) leave the
// lease current: the caller's own deadline decides. It blocks until etcd
// answers or ctx ends.
func (c *Client) KeepAlive(ctx context.Context) error {
	id, err := c.currentLease()
	if err != nil {
		return err
	}
	resp, err := c.cli.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if isLeaseNotFound(err) || (err == nil && resp.TTL <= 0) {
		return c.leaseGone(id)
	}
	if err != nil {
		return fmt.Errorf("dcs: keepalive lease %x: %w", id, err)
	}
	c.touch()
	return nil
}

// leaseErr maps etcd's lease-not-found answer to a write that attached
// lease id onto ErrLeaseLost; other errors are wrapped with op.
func (c *Client) leaseErr(op string, id int64, err error) error {
	if isLeaseNotFound(err) {
		return fmt.Errorf("%s: %w", op, c.leaseGone(id))
	}
	return fmt.Errorf("dcs: %s: %w", op, err)
}
