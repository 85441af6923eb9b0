package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/testcluster"
)

// pollInterval is how often recovery is re-checked.
const pollInterval = 200 * time.Millisecond

// errCrashed wraps a process that exited on its own: recovery cannot come.
var errCrashed = errors.New("crashed")

// Leader returns the leader key's value (a node name), or
// testcluster.ErrNoLeader.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	return testcluster.ReadLeader(ctx, c.cli, c.keys)
}

// leaderNode is the node the leader key names.
func (c *Cluster) leaderNode(ctx context.Context) (*Node, error) {
	return testcluster.LeaderOf(ctx, c.cli, c.keys, c.nodes)
}

// checkHealthy returns the leader if the cluster is whole: every etcd
// member serving, the leader key naming a node whose GET /primary is 200,
// every other node a running replica, the leader streaming to all of them.
func (c *Cluster) checkHealthy(ctx context.Context) (*Node, error) {
	for _, m := range c.etcd {
		if err := m.Crashed(); err != nil {
			return nil, fmt.Errorf("%w: %w", errCrashed, err)
		}
		if _, _, err := m.status(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.Crashed(); err != nil {
			return nil, fmt.Errorf("%w: %w", errCrashed, err)
		}
	}
	leader, err := c.leaderNode(ctx)
	if err != nil {
		return nil, err
	}
	name := leader.Name
	if err := leader.api().CheckPrimary(ctx); err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	// The leader has renewed its lease since the heal: a fault injected
	// right after must not inherit the renewals the previous one cost it
	// (a 3.5 s partition, then an isolation 40 ms after the heal, had the
	// lease expire 6 s into the second fault).
	if left := c.leaseLeft(ctx, name); left < c.TTL()-leaseFreshSlack {
		return nil, fmt.Errorf("leader %s: its lease expires in %s, not renewed since the heal", name, left.Round(time.Millisecond))
	}
	// A ttl changed by a round's action is restored at its heal: the next
	// round starts once the leader's key is on a lease of the base ttl.
	if s := c.readLeaderLease(ctx); s.Holder == name && s.Granted != c.TTL() {
		return nil, fmt.Errorf("leader %s: its key is on a lease of ttl %s, want %s", name, s.Granted, c.TTL())
	}
	for _, n := range c.Others(name) {
		st, err := n.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Role != "replica" || st.State != "running" {
			return nil, fmt.Errorf("%s: role=%s state=%s, want replica/running", n.Name, st.Role, st.State)
		}
	}
	// Its own members only: a standby cluster's leader streams from it too
	// (-chaos.standby).
	var members []string
	for _, n := range c.Others(name) {
		members = append(members, n.Name)
	}
	streaming, err := queryInt(ctx, leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = ANY($1)", members)
	if err != nil {
		return nil, err
	}
	if streaming < int64(len(c.nodes)-1) {
		return nil, fmt.Errorf("leader %s: %d streaming walsenders, want %d", name, streaming, len(c.nodes)-1)
	}
	if c.opts.Sync {
		if err := c.checkSync(ctx, leader); err != nil {
			return nil, err
		}
	}
	return leader, nil
}

// checkSync: in synchronous mode a whole cluster also has a synchronous
// standby again, named by the sync key and streaming as sync. Until then
// no replica may be promoted (by design), so the next fault must wait.
func (c *Cluster) checkSync(ctx context.Context, leader *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := testcluster.GetKey(ctx, c.cli, c.keys.Sync())
	if err != nil {
		return err
	}
	var sync dcs.Sync
	if v != nil {
		if err := json.Unmarshal(v, &sync); err != nil {
			return fmt.Errorf("sync key %q: %w", v, err)
		}
	}
	if sync.Leader != leader.Name || len(sync.Standbys()) == 0 {
		return fmt.Errorf("sync key: leader %q, standbys %v; want leader %s and a standby", sync.Leader, sync.Standbys(), leader.Name)
	}
	state := "sync"
	if c.opts.Quorum {
		// Quorum commit is whole when the key's set holds every standby.
		if len(sync.Standbys()) != len(c.nodes)-1 {
			return fmt.Errorf("sync key: quorum set %v (quorum %d); want every standby", sync.Standbys(), sync.QuorumValue())
		}
		state = "quorum"
	}
	n, err := queryInt(ctx, leader, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = $2 AND application_name = ANY($1)", sync.Standbys(), state)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("leader %s: sync key names %v but none streams as sync", leader.Name, sync.Standbys())
	}
	return nil
}

// syncStandby is a node the sync key names as a standby of leader, drawn
// with rng (nil if etcd does not say).
func (c *Cluster) syncStandby(ctx context.Context, leader string, rng *rand.Rand) *Node {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.Sync())
	var sync dcs.Sync
	if err != nil || len(resp.Kvs) == 0 || json.Unmarshal(resp.Kvs[0].Value, &sync) != nil || sync.Leader != leader {
		return nil
	}
	var out []*Node
	for _, name := range sync.Standbys() {
		if n := c.Node(name); n != nil && name != leader {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out[rng.IntN(len(out))]
}

// WaitRecovered waits until the cluster is whole (checkHealthy) and its
// leader has acknowledged a workload write invoked after since: "a leader
// accepting writes and all nodes healthy". It gives up after timeout, or
// at once when a process crashed, returning the last state seen.
func (c *Cluster) WaitRecovered(ctx context.Context, hist *History, since, timeout time.Duration) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		leader, err := c.checkHealthy(cctx)
		ccancel()
		if err == nil && !ackedSince(hist, leader.Name, since) {
			err = fmt.Errorf("leader %s has acknowledged no write since %s", leader.Name, fmtDur(since))
		}
		if err == nil {
			return leader, nil
		}
		if errors.Is(err, errCrashed) {
			return nil, err
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not recovered within %s; last state: %w", timeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// ackedSince reports whether node acknowledged an insert or a write
// invoked at or after since.
func ackedSince(hist *History, node string, since time.Duration) bool {
	return hist.ops.anyLatest(func(o Op) bool {
		return o.Node == node && o.Outcome == OK && o.Kind != OpRead && o.Invoke >= since
	})
}

// queryInt runs a one-integer query on a fresh superuser connection.
func queryInt(ctx context.Context, n *Node, sql string, args ...any) (int64, error) {
	return testcluster.QueryInt(ctx, n.Name, n.ConnConfig(), sql, args...)
}

// LeaderChange is one observed value of the leader key ("" = deleted).
type LeaderChange struct {
	At     time.Duration
	Leader string
}

// LeaderWatch records every change of the leader key as the test process
// sees it (receive time: an upper bound of when it happened).
type LeaderWatch struct {
	mu      sync.Mutex
	changes []LeaderChange
}

// WatchLeader watches the leader key until ctx ends, logging changes to
// the timeline. The etcd client resumes the watch across member loss.
func (c *Cluster) WatchLeader(ctx context.Context) *LeaderWatch {
	lw := &LeaderWatch{}
	c.watchKey(ctx, c.keys.Leader(), func(ev *clientv3.Event) {
		name := ""
		if ev.Type == clientv3.EventTypePut {
			name = string(ev.Kv.Value)
		}
		lw.add(c.clock.Now(), name, c.log)
	})
	return lw
}

// watchKey calls fn with every event on key until ctx ends, resuming
// after the last revision seen when the watch breaks (no leader at etcd);
// after a compaction past it, from now on.
func (c *Cluster) watchKey(ctx context.Context, key string, fn func(*clientv3.Event)) {
	ctx = clientv3.WithRequireLeader(ctx)
	go func() {
		var rev int64 // the last revision seen: a new watch resumes after it
		for ctx.Err() == nil {
			opts := []clientv3.OpOption{}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev+1))
			}
			for resp := range c.cli.Watch(ctx, key, opts...) {
				if resp.CompactRevision > 0 {
					rev = 0 // compacted past us: resume from now
				}
				for _, ev := range resp.Events {
					rev = ev.Kv.ModRevision
					fn(ev)
				}
			}
			select { // the watch ended (no leader at etcd): start another
			case <-ctx.Done():
			case <-time.After(pollInterval):
			}
		}
	}()
}

func (lw *LeaderWatch) add(at time.Duration, name string, log *Timeline) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if n := len(lw.changes); n > 0 && lw.changes[n-1].Leader == name {
		return
	}
	lw.changes = append(lw.changes, LeaderChange{At: at, Leader: name})
	if name == "" {
		log.Add(at, "etcd: leader key deleted")
	} else {
		log.Add(at, "etcd: leader key → %s", name)
	}
}

// Between returns the changes seen in [from, to].
func (lw *LeaderWatch) Between(from, to time.Duration) []LeaderChange {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	var out []LeaderChange
	for _, ch := range lw.changes {
		if ch.At >= from && ch.At <= to {
			out = append(out, ch)
		}
	}
	return out
}

// connect opens a superuser connection to n; the caller closes it.
func connect(ctx context.Context, n *Node) (*pgx.Conn, error) {
	return testcluster.Connect(ctx, n.Name, n.ConnConfig())
}

// leaseFreshSlack: a leader renews every loop_wait, and etcd reports whole
// seconds; a lease with less than ttl − leaseFreshSlack left was not
// renewed lately.
const leaseFreshSlack = 3 * time.Second

// leaseLeft is how long the leader key's lease has left at least, if it is
// held by name (0 otherwise).
func (c *Cluster) leaseLeft(ctx context.Context, name string) time.Duration {
	s := c.readLeaderLease(ctx)
	if s.Holder != name || s.Bound == 0 {
		return 0
	}
	return s.Bound - c.clock.Now()
}
