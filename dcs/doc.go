// Package dcs owns every access to etcd v3, the distributed configuration
// store that holds a Regent cluster's shared state in Patroni's key layout
// (patroni-compat.md §1).
//
// It provides:
//   - the agent's session lease (one lease per agent: its member key and,
//     while it leads, the leader key are attached to it), renewed one
//     KeepAliveOnce at a time so the caller keeps its own deadline;
//   - the leader key (create-only acquire, linearizable check, fenced
//     release), member keys, the initialize key and CAS helpers for every
//     other key;
//   - leader-guarded writes (PutAsLeader, CASAsLeader, DeleteAsLeader) for
//     the keys only the leader writes (status, history, sync, failover):
//     one transaction that also requires the leader key to hold our name on
//     our current lease, so a deposed leader cannot overwrite them;
//   - a cluster-view cache fed by ONE watch on the cluster prefix, published
//     as an immutable *Cluster through an atomic pointer, with coalescing
//     change notifications;
//   - the classification of etcd errors (ErrorClass: unreachable, timeout,
//     no leader, auth, compare failure, lease lost), so the agent can tell
//     an etcd outage from a lost key.
//
// The embedded etcd server for tests and the demo is package
// internal/etcdembed: the agent's binary does not link etcd's server.
//
// dcs never touches PostgreSQL and never decides anything: it reports what
// etcd says and performs the conditional writes it is asked to. Every write
// to a key someone else may own is an etcd transaction on CreateRevision or
// ModRevision; a lost race is ErrConflict and is never retried here.
// The package dcstest holds an in-memory Fake with the same methods for the
// agent's unit tests.
package dcs
