package dcs

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leader-guarded writes are for the keys only the leader writes: status,
// history, sync and the failover key when the leader writes it. Each is ONE
// etcd transaction
//
//	If   Value(leader) == name AND LeaseValue(leader) == current lease
//	Then [Txn If <revision compare> Then <write>]   (revision compare optional)
//	Else Get(leader)
//
// so a deposed leader (its lease expired or revoked, its leader key gone,
// taken by another member or left on an older lease) can never overwrite
// them, even when its own clock has not yet told it to step down. The
// outcome comes from one round trip: the outer compare failing is
// ErrNotLeader (leadership is checked first, so a stale revision from a
// deposed leader is ErrNotLeader too), the nested compare failing is
// ErrConflict. The written key itself is not attached to any lease: it
// outlives the leader's session, as Patroni's keys do.
//
// Without a current lease they return ErrNotLeader without asking etcd.
// They refuse to write the leader key itself (only AcquireLeader,
// ReattachLeader and ReleaseLeader write it, on the lease), with an error
// that wraps no sentinel. Like every method they block until etcd answers
// or ctx ends, and never retry.

// PutAsLeader writes value to key whatever the key's revision, only while
// the leader key holds name on our current lease; ErrNotLeader otherwise,
// and then the key is unchanged.
func (c *Client) PutAsLeader(ctx context.Context, name, key string, value []byte) error {
	_, err := c.asLeader(ctx, "put as leader", name, key, nil, 0, clientv3.OpPut(key, string(value)))
	return err
}

// CASAsLeader writes value to key only while the leader key holds name on
// our current lease (ErrNotLeader otherwise) and only if the key is
// unchanged since modRev was read, as CAS: modRev 0 means create-only
// (CreateRevision == 0), otherwise ModRevision == modRev (ErrConflict
// otherwise). It returns the key's new ModRevision. On any error the key is
// unchanged.
func (c *Client) CASAsLeader(ctx context.Context, name, key string, value []byte, modRev int64) (newRev int64, err error) {
	return c.asLeader(ctx, "cas as leader", name, key, []clientv3.Cmp{unchangedSince(key, modRev)}, modRev, clientv3.OpPut(key, string(value)))
}

// DeleteAsLeader deletes key only while the leader key holds name on our
// current lease (ErrNotLeader otherwise) and, when modRev is not 0, only if
// its ModRevision is modRev (ErrConflict otherwise). modRev 0 deletes
// whatever the revision; deleting an absent key that way is not an error.
func (c *Client) DeleteAsLeader(ctx context.Context, name, key string, modRev int64) error {
	var cmps []clientv3.Cmp
	if modRev != 0 {
		cmps = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
	}
	_, err := c.asLeader(ctx, "delete as leader", name, key, cmps, modRev, clientv3.OpDelete(key))
	return err
}

// asLeader runs write on key in one transaction behind the leader guard
// and, when cmps is not empty, behind cmps (the revision compare on key,
// made from modRev) in a nested transaction. It returns the store revision
// after the write.
func (c *Client) asLeader(ctx context.Context, op, name, key string, cmps []clientv3.Cmp, modRev int64, write clientv3.Op) (int64, error) {
	leader := c.keys.Leader()
	if key == leader {
		return 0, fmt.Errorf("dcs: %s: %s is the leader key, written only on the lease by AcquireLeader, ReattachLeader and ReleaseLeader", op, key)
	}
	id := c.lease.Load()
	if id == 0 {
		return 0, fmt.Errorf("%w: %s %s: no current lease", ErrNotLeader, op, key)
	}
	then := write
	if len(cmps) > 0 {
		then = clientv3.OpTxn(cmps, []clientv3.Op{write}, nil)
	}
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(leader), "=", name),
			clientv3.Compare(clientv3.LeaseValue(leader), "=", id)).
		Then(then).
		Else(clientv3.OpGet(leader)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("dcs: %s %s: %w", op, key, err)
	}
	c.touch()
	if !resp.Succeeded {
		why := notLeaderReason(resp.Responses[0].GetResponseRange().GetKvs(), id)
		return 0, fmt.Errorf("%w: %s %s as %q: %s", ErrNotLeader, op, key, name, why)
	}
	if len(cmps) > 0 && !resp.Responses[0].GetResponseTxn().GetSucceeded() {
		return 0, fmt.Errorf("%w: %s %s: changed since revision %d", ErrConflict, op, key, modRev)
	}
	return resp.Header.Revision, nil
}

// notLeaderReason says what the leader key held when the guard failed.
func notLeaderReason(kvs []*mvccpb.KeyValue, id int64) string {
	if len(kvs) == 0 {
		return "leader key is absent"
	}
	return fmt.Sprintf("leader key names %q on lease %x, ours is %x", kvs[0].Value, kvs[0].Lease, id)
}
