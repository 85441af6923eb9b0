package dcs

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AcquireLeader races for the leader key: it creates the key with value
// name on the current lease only if it does not exist
// (Txn If CreateRevision(leader)==0 Then Put). won is false when another
// holder exists. When the key already names us on our current lease (a
// retried acquire whose first answer was lost) it reports won. Without a
// current lease it returns ErrLeaseLost and writes nothing.
func (c *Client) AcquireLeader(ctx context.Context, name string) (won bool, err error) {
	id, err := c.currentLease()
	if err != nil {
		return false, err
	}
	key := c.keys.Leader()
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, name, clientv3.WithLease(clientv3.LeaseID(id)))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, c.leaseErr("acquire leader", id, err)
	}
	c.touch()
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	return len(kvs) == 1 && string(kvs[0].Value) == name && kvs[0].Lease == id, nil
}

// CheckLeader confirms, with a linearizable read, that the leader key holds
// name on our current lease; ErrNotLeader otherwise (absent, another name,
// another lease, or no current lease). It never writes.
func (c *Client) CheckLeader(ctx context.Context, name string) error {
	id := c.lease.Load()
	resp, err := c.cli.Get(ctx, c.keys.Leader())
	if err != nil {
		return fmt.Errorf("dcs: check leader: %w", err)
	}
	c.touch()
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%w: leader key is absent", ErrNotLeader)
	}
	kv := resp.Kvs[0]
	if string(kv.Value) != name {
		return fmt.Errorf("%w: leader key names %q", ErrNotLeader, kv.Value)
	}
	if id == 0 || kv.Lease != id {
		return fmt.Errorf("%w: leader key is on lease %x, ours is %x", ErrNotLeader, kv.Lease, id)
	}
	return nil
}

// ReleaseLeader deletes the leader key only if it holds name on our current
// lease (Txn If Value==name AND LeaseValue==lease Then Delete); ErrNotLeader
// when it does not. The lease itself stays current.
func (c *Client) ReleaseLeader(ctx context.Context, name string) error {
	id := c.lease.Load()
	if id == 0 {
		return fmt.Errorf("%w: no current lease", ErrNotLeader)
	}
	return c.ifLeaderOn(ctx, "release leader", name, id, clientv3.OpDelete(c.keys.Leader()))
}

// ReattachLeader moves the leader key from lease oldLease to the current
// lease (after GrantLease, e.g. because ttl changed), guarded by the key
// still naming us on the old lease: it never creates the key.
func (c *Client) ReattachLeader(ctx context.Context, name string, oldLease int64) error {
	id := c.lease.Load()
	if id == 0 || oldLease == 0 {
		return fmt.Errorf("%w: no lease to move the key between", ErrNotLeader)
	}
	return c.ifLeaderOn(ctx, "reattach leader", name, oldLease,
		clientv3.OpPut(c.keys.Leader(), name, clientv3.WithLease(clientv3.LeaseID(id))))
}

// ifLeaderOn runs then in one transaction if the leader key holds name on
// lease; ErrNotLeader when it does not.
func (c *Client) ifLeaderOn(ctx context.Context, op, name string, lease int64, then clientv3.Op) error {
	key := c.keys.Leader()
	held := []clientv3.Cmp{clientv3.Compare(clientv3.Value(key), "=", name), clientv3.Compare(clientv3.LeaseValue(key), "=", lease)}
	_, err := c.txn(ctx, op, held, then, fmt.Errorf("%w: leader key does not hold %q on lease %x", ErrNotLeader, name, lease))
	return err
}
