package dcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PutMember writes members/<name> as JSON with a plain put on the current
// lease: only its owner writes a member key. ErrLeaseLost when there is no
// current lease or etcd no longer knows it.
func (c *Client) PutMember(ctx context.Context, name string, m Member) error {
	id, err := c.currentLease()
	if err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("dcs: put member %s: %w", name, err)
	}
	if _, err := c.cli.Put(ctx, c.keys.Member(name), string(data), clientv3.WithLease(clientv3.LeaseID(id))); err != nil {
		return c.leaseErr("put member "+name, id, err)
	}
	c.touch()
	return nil
}

// PutOnLease writes key with a plain put on the current session lease, for
// keys only their member writes and that must end with it (suspects/<name>).
// ErrLeaseLost when there is no current lease or etcd no longer knows it.
func (c *Client) PutOnLease(ctx context.Context, key string, value []byte) error {
	id, err := c.currentLease()
	if err != nil {
		return err
	}
	if _, err := c.cli.Put(ctx, key, string(value), clientv3.WithLease(clientv3.LeaseID(id))); err != nil {
		return c.leaseErr("put "+key, id, err)
	}
	c.touch()
	return nil
}

// CreateInitialize starts the bootstrap race: it creates the initialize key
// with value "" only if it does not exist. won is false when it exists.
func (c *Client) CreateInitialize(ctx context.Context) (won bool, err error) {
	_, err = c.CAS(ctx, c.keys.Initialize(), []byte{}, 0)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrConflict):
		return false, nil
	}
	return false, err
}

// SetInitialize writes the system identifier with a plain put, as the
// leader does after bootstrap (patroni-compat.md §1.2).
func (c *Client) SetInitialize(ctx context.Context, sysid string) error {
	return c.Put(ctx, c.keys.Initialize(), []byte(sysid))
}

// DeleteInitialize removes the initialize key (a failed bootstrap).
func (c *Client) DeleteInitialize(ctx context.Context) error {
	return c.Delete(ctx, c.keys.Initialize(), 0)
}

// CAS writes value to key only if the key is unchanged since modRev was
// read: modRev 0 means create-only (CreateRevision == 0), otherwise
// ModRevision == modRev. It returns the key's new ModRevision, or
// ErrConflict when the race was lost.
func (c *Client) CAS(ctx context.Context, key string, value []byte, modRev int64) (newRev int64, err error) {
	return c.txn(ctx, "cas "+key, []clientv3.Cmp{unchangedSince(key, modRev)}, clientv3.OpPut(key, string(value)), conflict(key, modRev))
}

// unchangedSince is the precondition of a write on key read at modRev (CAS,
// CASAsLeader): the key is absent (CreateRevision == 0) when modRev is 0,
// else its ModRevision is still modRev.
func unchangedSince(key string, modRev int64) clientv3.Cmp {
	if modRev == 0 {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
}

// conflict is the error of a lost compare-and-swap on key.
func conflict(key string, modRev int64) error {
	return fmt.Errorf("%w: %s changed since revision %d", ErrConflict, key, modRev)
}

// txn runs then if every comparison holds, in one transaction, and returns
// the revision it wrote at; lost when a comparison does not hold.
func (c *Client) txn(ctx context.Context, what string, cmps []clientv3.Cmp, then clientv3.Op, lost error) (int64, error) {
	resp, err := c.cli.Txn(ctx).If(cmps...).Then(then).Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs: %s: %w", what, err)
	}
	c.touch()
	if !resp.Succeeded {
		return 0, lost
	}
	return resp.Header.Revision, nil
}

// Put writes key with a plain put, for keys only the caller writes (config
// at bootstrap, the initialize key). Leader-only keys (status, history,
// sync, failover) go through PutAsLeader or CASAsLeader instead, so that a
// deposed leader cannot overwrite them.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	if _, err := c.cli.Put(ctx, key, string(value)); err != nil {
		return fmt.Errorf("dcs: put %s: %w", key, err)
	}
	c.touch()
	return nil
}

// Delete deletes key if its ModRevision is modRev (ErrConflict otherwise);
// modRev 0 deletes unconditionally. Deleting an absent key unconditionally
// is not an error.
func (c *Client) Delete(ctx context.Context, key string, modRev int64) error {
	if modRev == 0 {
		if _, err := c.cli.Delete(ctx, key); err != nil {
			return fmt.Errorf("dcs: delete %s: %w", key, err)
		}
		c.touch()
		return nil
	}
	unchanged := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
	_, err := c.txn(ctx, "delete "+key, unchanged, clientv3.OpDelete(key), conflict(key, modRev))
	return err
}

// Get reads one key (linearizable). found is false when it does not exist.
func (c *Client) Get(ctx context.Context, key string) (v Value, found bool, err error) {
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return Value{}, false, fmt.Errorf("dcs: get %s: %w", key, err)
	}
	c.touch()
	if len(resp.Kvs) == 0 {
		return Value{}, false, nil
	}
	kv := resp.Kvs[0]
	return Value{Data: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}, true, nil
}

// DeleteCluster deletes every key under the cluster's prefix (regentctl
// remove, Patroni's delete_cluster) and returns how many it deleted. It
// is the operator's explicit wipe: unconditional by design.
func (c *Client) DeleteCluster(ctx context.Context) (int64, error) {
	resp, err := c.cli.Delete(ctx, c.keys.Prefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("dcs: delete %s*: %w", c.keys.Prefix(), err)
	}
	c.touch()
	return resp.Deleted, nil
}
