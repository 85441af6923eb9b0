package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/linkproxy"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// The standby cluster of -chaos.standby: drNodes members (dr1, dr2), each
// in a namespace of its own, scope drScope on the same etcd, following
// the primary cluster through a proxy in each member's namespace.
const (
	drScope = "chaos-dr"
	drNodes = 2
	// drOctet+i is dr<i>'s address octet (pg<i> has 10+i, etcd<i> 20+i).
	drOctet = 30
	// drProxyPort is the port of a member's proxy to the primary cluster,
	// on 127.0.0.1 inside its namespace: standby_cluster.port.
	drProxyPort = 15999
	// drCheckEvery and drFall are the proxy's health check: every second,
	// a target that fails twice is down (HAProxy's inter 1s fall 2).
	drCheckEvery = time.Second
	drFall       = 2
	// drProbeEvery is how often each member is probed for writability.
	drProbeEvery = 500 * time.Millisecond
	// drProbeSQL is the probes' table, created on the primary (and so
	// replicated); a row in it on a standby member is a write it accepted.
	drProbeSQL = `CREATE TABLE IF NOT EXISTS chaos_dr_probe (id bigserial PRIMARY KEY, node text NOT NULL)`
)

// StandbyCluster is a standby cluster following the chaos cluster: its
// members, the proxies they replicate through, the probes of their
// writability and the watch of their leader key.
type StandbyCluster struct {
	c     *Cluster // the primary cluster: network, etcd, binaries, clock
	keys  dcs.Keys
	nodes []*Node
	route *drRouter

	probes record[StandbyProbe]
	keyEv  record[KeyEvent]
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// drRouter is the moving address the standby cluster follows, as HAProxy
// gives it (docs/disaster-recovery.md): a health check every drCheckEvery
// finds the primary cluster's primary (the leader key's node answering GET
// /primary 200); new connections go to it, and those open to a target that
// is marked down or replaced are closed (on-marked-down shutdown-sessions),
// so a standby leader streaming from a demoted or cut-off primary
// reconnects at once.
type drRouter struct {
	c       *Cluster
	target  atomic.Pointer[Node]
	proxies []*linkproxy.Proxy
}

// newStandbyCluster creates the standby cluster's members and their proxies (not started).
func (c *Cluster) newStandbyCluster() (*StandbyCluster, error) {
	sc := &StandbyCluster{c: c, keys: dcs.NewKeys(namespace, drScope), route: &drRouter{c: c}}
	for i := 1; i <= drNodes; i++ {
		n, err := c.addNode(fmt.Sprintf("dr%d", i), drOctet+i, c.standbyConfig)
		if err != nil {
			return sc, err
		}
		sc.nodes = append(sc.nodes, n)
		p, err := sc.route.listen(n)
		if err != nil {
			return sc, err
		}
		sc.route.proxies = append(sc.route.proxies, p)
	}
	return sc, nil
}

// standbyConfig is a standby member's regent.yml: a member of the chaos
// cluster's config in scope drScope, with standby_cluster pointing at its
// proxy, and neither the watchdog nor the fence hook (it never writes).
func (c *Cluster) standbyConfig(n *Node) map[string]any {
	cfg := c.nodeConfig(n)
	cfg["scope"] = drScope
	delete(cfg, "watchdog")
	delete(cfg, "fence")
	o := c.opts
	cfg["bootstrap"] = map[string]any{"dcs": map[string]any{
		"ttl": o.TTL, "loop_wait": o.LoopWait, "retry_timeout": o.RetryTimeout,
		"maximum_lag_on_failover": o.MaxLagOnFailover,
		"standby_cluster":         map[string]any{"host": "127.0.0.1", "port": drProxyPort},
	}}
	return cfg
}

// listen opens n's proxy: it listens on 127.0.0.1 and dials the target
// from inside n's namespace, so partitions of n cut its replication too.
func (r *drRouter) listen(n *Node) (*linkproxy.Proxy, error) {
	var ln net.Listener
	addr := fmt.Sprintf("127.0.0.1:%d", drProxyPort)
	err := proc.InNetns(n.Host.Path, func() (err error) {
		ln, err = new(net.ListenConfig).Listen(r.c.ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("primary proxy %s of %s: %w", addr, n.Name, err)
	}
	return linkproxy.New(r.c.ctx, ln, func(ctx context.Context) (net.Conn, error) {
		t := r.target.Load()
		if t == nil {
			return nil, errors.New("no primary")
		}
		return netnsDialer(n.Host.Path, t.PGAddr)(ctx)
	}, 0), nil
}

// run is the health check loop (see drRouter).
func (r *drRouter) run(ctx context.Context) {
	fails := 0
	testcluster.Every(ctx, drCheckEvery, func() { r.check(ctx, &fails) })
}

// check is one health check; fails counts the current target's
// consecutive failures.
func (r *drRouter) check(ctx context.Context, fails *int) {
	cctx, cancel := context.WithTimeout(ctx, drCheckEvery)
	defer cancel()
	n, err := r.c.leaderNode(cctx)
	if err == nil {
		err = n.api().CheckPrimary(cctx)
	}
	cur := r.target.Load()
	switch {
	case err == nil && n == cur:
		*fails = 0
		return
	case err == nil:
		r.c.log.Add(r.c.clock.Now(), "standby proxy: primary is now %s", n.Name)
	case cur == nil:
		return
	default:
		if *fails++; *fails < drFall {
			return
		}
		r.c.log.Add(r.c.clock.Now(), "standby proxy: %s marked down (%v)", cur.Name, err)
		n = nil
	}
	*fails = 0
	r.target.Store(n)
	if cur != nil {
		r.shutdownSessions()
	}
}

// awaitTarget runs checks until one finds the primary (the standby
// members' first copy goes through the proxy), bounded by timeout.
func (r *drRouter) awaitTarget(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fails := 0
	for {
		if r.check(ctx, &fails); r.target.Load() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standby proxy: no primary found within %s", timeout)
		case <-time.After(pollInterval):
		}
	}
}

// shutdownSessions closes every proxied connection.
func (r *drRouter) shutdownSessions() {
	for _, p := range r.proxies {
		if _, _, err := p.Cut(); err == nil {
			_, _ = p.Heal()
		}
	}
}

// Nodes returns dr1, dr2.
func (sc *StandbyCluster) Nodes() []*Node { return append([]*Node(nil), sc.nodes...) }

// Others returns every member but name.
func (sc *StandbyCluster) Others(name string) []*Node { return testcluster.NodesBut(sc.nodes, name) }

// Leader is the standby leader key's node.
func (sc *StandbyCluster) Leader(ctx context.Context) (*Node, error) {
	return testcluster.LeaderOf(ctx, sc.c.cli, sc.keys, sc.nodes)
}

// start starts the proxies' health check, the key watch, the probes and
// the members.
func (sc *StandbyCluster) start() error {
	ctx, cancel := context.WithCancel(sc.c.ctx)
	sc.stop = cancel
	if err := sc.route.awaitTarget(ctx, awaitLeaderWait); err != nil {
		return err
	}
	sc.wg.Go(func() { sc.route.run(ctx) })
	sc.c.watchKey(ctx, sc.keys.Leader(), func(ev *clientv3.Event) {
		e := KeyEvent{At: sc.c.clock.Now(), Rev: ev.Kv.ModRevision}
		if ev.Type == clientv3.EventTypePut {
			e.Holder, e.Created = string(ev.Kv.Value), ev.Kv.CreateRevision == ev.Kv.ModRevision
			sc.c.log.Add(e.At, "etcd: standby leader key → %s", e.Holder)
		} else {
			sc.c.log.Add(e.At, "etcd: standby leader key deleted")
		}
		sc.keyEv.add(e)
	})
	for _, n := range sc.nodes {
		sc.wg.Go(func() { sc.probe(ctx, n) })
	}
	for _, n := range sc.nodes {
		if err := n.Start(); err != nil {
			return err
		}
	}
	return nil
}

// probe asks n every drProbeEvery whether it is in recovery and tries a
// write on it, recording both (CheckStandbyReadOnly judges them).
func (sc *StandbyCluster) probe(ctx context.Context, n *Node) {
	var conn *pgx.Conn
	defer func() { testcluster.CloseConn(ctx, conn) }()
	testcluster.Every(ctx, drProbeEvery, func() {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		p := StandbyProbe{Node: n.Name, At: sc.c.clock.Now()}
		if conn == nil {
			c, err := pgx.ConnectConfig(pctx, n.ConnConfig())
			if err != nil {
				return // down or unreachable: nothing to judge
			}
			conn = c
		}
		if err := conn.QueryRow(pctx, "SELECT pg_is_in_recovery()").Scan(&p.InRecovery); err == nil {
			p.Answered = true
			_, err := conn.Exec(pctx, "INSERT INTO chaos_dr_probe (node) VALUES ($1)", n.Name)
			p.Wrote = err == nil
			if err != nil {
				p.Err = shortErr(err)
			}
		}
		if ctx.Err() == nil && p.Answered {
			sc.probes.add(p)
		}
		if conn.IsClosed() || !p.Answered {
			testcluster.CloseConn(ctx, conn)
			conn = nil
		}
	})
}

// Probes returns the probes in time order.
func (sc *StandbyCluster) Probes() []StandbyProbe {
	return sc.probes.sorted(func(p StandbyProbe) time.Duration { return p.At })
}

// KeyEvents returns the standby leader key's events in revision order
// (the revision stands in for the time record.sorted orders by).
func (sc *StandbyCluster) KeyEvents() []KeyEvent {
	return sc.keyEv.sorted(func(e KeyEvent) time.Duration { return time.Duration(e.Rev) })
}

// cleanup stops the probes and the health check, then the members
// (replica first), their PostgreSQL, links and proxies; a failed run
// keeps their PostgreSQL logs.
func (sc *StandbyCluster) cleanup() {
	if sc.stop != nil {
		sc.stop()
	}
	sc.wg.Wait()
	for _, n := range sc.nodes {
		n.Thaw()
	}
	ctx := context.WithoutCancel(sc.c.ctx)
	leader, _ := testcluster.ReadLeader(ctx, sc.c.cli, sc.keys)
	testcluster.StopLeaderLast(sc.nodes, leader, func(n *Node) {
		if err := n.stop(agentStopTimeout); err != nil {
			sc.c.t.Logf("chaos: stop %s: %v", n.Name, err)
		}
	})
	for _, n := range sc.nodes {
		if err := n.KillPostgres(); err != nil {
			sc.c.t.Errorf("chaos: %v", err)
		}
		n.closeLinks()
	}
	for _, p := range sc.route.proxies {
		p.Close()
	}
	if !sc.c.t.Failed() && !sc.c.opts.KeepLogs {
		return // the cluster's cleanup removes the whole base directory
	}
	for _, n := range sc.nodes {
		if data, err := os.ReadFile(filepath.Join(n.DataDir, "log", "postgresql.log")); err == nil {
			_ = os.WriteFile(filepath.Join(sc.c.base, "logs", n.Name+"-postgresql.log"), data, 0o644)
		}
		_ = os.RemoveAll(n.DataDir)
	}
}
