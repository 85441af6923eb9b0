package chaos

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Fixed addresses inside the namespaces: every node and member has an IP
// of its own, so the ports can be the same everywhere.
const (
	pgPort         = 15432
	apiPort        = 18008
	etcdClientPort = 12379
	etcdPeerPort   = 12380
	scope          = "chaos"
	namespace      = "/service/"
	superuser      = "postgres"
	superPassword  = "supersecret"
	replUser       = "replicator"
	replPassword   = "replsecret"
	// safetyMargin is the agent's default watchdog.safety_margin.
	safetyMargin = 3 * time.Second
	// journalFile is the journal watchdog device's file in a node directory.
	journalFile = "watchdog.journal"
	// agentStopTimeout bounds a clean agent stop at teardown.
	agentStopTimeout = 20 * time.Second
)

// Options describe a chaos cluster: 3 nodes (or Nodes) and 3 etcd members.
type Options struct {
	// Nodes is the number of PostgreSQL nodes (default 3; 4 for quorum
	// commit ANY 2 of 3).
	Nodes int
	// Sync turns on synchronous_mode and synchronous_mode_strict.
	Sync bool
	// Quorum (with Sync) makes it synchronous_mode: quorum, ANY n−1 of
	// the n standbys (ANY 1 of 2 with 3 nodes, ANY 2 of 3 with 4):
	// acknowledged writes must survive as in sync mode.
	Quorum bool
	// TTL, LoopWait, RetryTimeout in seconds; default 10, 1, 3.
	TTL, LoopWait, RetryTimeout int
	// MaxLagOnFailover is maximum_lag_on_failover in bytes; default 1 MiB.
	MaxLagOnFailover int64
	// BuildTags are the agent's build tags ("regent_unsafe_nofence" for
	// the self-test's deliberately broken agent).
	BuildTags string
	// KeepLogs keeps the logs directory even when the test passes.
	KeepLogs bool
	// Watchdog gives every agent a required watchdog on the journal device
	// (fencing.JournalPrefix) in its node directory: the agent arms, pings
	// and disarms it exactly as it would a hardware device, and the suite
	// resets the node when a real device would have fired. Without it the
	// config has no watchdog section (the default: mode off). A run
	// switches it between rounds (Cluster.SetAgentConfig).
	Watchdog bool
	// Fence configures the harness's fence hook (fencehook.go) as
	// fence.command, with fence.fast_failover on: the fence kinds' rounds
	// run with it, every other round without (switched like Watchdog).
	Fence bool
	// Routing runs one PgBouncer in front of the cluster (router.go) and
	// gives every agent a routing: section naming it.
	Routing bool
}

func (o Options) withDefaults() Options {
	o.Nodes = cmp.Or(o.Nodes, 3)
	o.TTL = cmp.Or(o.TTL, 10)
	o.LoopWait = cmp.Or(o.LoopWait, 1)
	o.RetryTimeout = cmp.Or(o.RetryTimeout, 3)
	o.MaxLagOnFailover = cmp.Or(o.MaxLagOnFailover, 1<<20)
	return o
}

// Cluster is a running chaos cluster. Methods taking a testing.TB run on
// the test goroutine; the others are safe for concurrent use.
type Cluster struct {
	t     testing.TB
	opts  Options
	clock *Clock
	log   *Timeline
	net   *netns.Network
	bins  binaries
	user  testcluster.OSUser
	base  string
	pgBin string
	keys  dcs.Keys
	etcd  []*EtcdMember
	nodes []*Node
	cli   *clientv3.Client
	// fence is the harness's fence hook, written at setup whether or not
	// Options.Fence configures it.
	fence *FenceHook
	// router is the routing mode's PgBouncer (nil without it).
	router *Router
	// dr is the standby cluster following this one (-chaos.standby), or
	// nil; the standby kinds' faults reach it through here.
	dr *StandbyCluster

	// ctx lives until the end of the cleanup (not t.Context(), cancelled
	// before cleanups run); it bounds child processes as a last resort.
	ctx    context.Context
	cancel context.CancelFunc
	reaped chan struct{}
}

// New builds the binaries, creates the network, starts the three etcd
// members and the three agents, and returns without waiting for a leader.
// Everything is torn down by a t.Cleanup. It skips the test under -short,
// when not root, or without iproute2.
func New(t testing.TB, opts Options, clock *Clock, log *Timeline) *Cluster {
	t.Helper()
	requireEnvironment(t)
	c := &Cluster{t: t, opts: opts.withDefaults(), clock: clock, log: log, keys: dcs.NewKeys(namespace, scope)}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(t.Context()))
	var err error
	if c.bins, err = build(c.ctx, c.opts.BuildTags); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if err := proc.BecomeSubreaper(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if c.user, err = testcluster.LookupOSUser(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if c.pgBin, err = testcluster.PGBinDir(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if c.base, err = tempDir("run"); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	c.reaped = make(chan struct{})
	go proc.ReapLoop(c.ctx, c.reaped)
	t.Cleanup(c.cleanup)
	if err := c.setup(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	return c
}

func requireEnvironment(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos: real-process fault-injection suite skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("chaos: needs root (network namespaces)")
	}
	if _, err := os.Stat("/usr/sbin/ip"); err != nil {
		if _, err := os.Stat("/sbin/ip"); err != nil {
			t.Skip("chaos: needs iproute2 (ip)")
		}
	}
}

func (c *Cluster) setup() error {
	if err := testcluster.OpenPath(c.base); err != nil {
		return err
	}
	sweepDirs(c.t.Logf)
	var err error
	if c.net, err = netns.New(c.ctx, c.t.Logf); err != nil {
		return err
	}
	c.log.Add(c.clock.Now(), "network: bridge %s, subnet %s0/24, base dir %s", c.net.Bridge(), c.net.Addr(0)[:len(c.net.Addr(0))-1], c.base)
	if err := c.startEtcd(); err != nil {
		return err
	}
	if c.fence, err = WriteFenceHook(filepath.Join(c.base, "fence"), c.user.MkdirOwned); err != nil {
		return err
	}
	if c.opts.Routing {
		if c.router, err = c.newRouter(); err != nil {
			return err
		}
	}
	for i := 1; i <= c.opts.Nodes; i++ {
		n, err := c.newNode(i)
		if err != nil {
			return err
		}
		if err := c.fence.SetTarget(n.Name, FenceTarget{Config: n.ConfigPath, DataDir: n.DataDir}); err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := n.Start(); err != nil {
			return err
		}
	}
	return nil
}

// binaries are the programs a cluster runs: the agent (built with the
// given tags: the self-test's is regent_unsafe_nofence) and the etcd
// member helper, built once per test process (proc.Build).
type binaries struct {
	regent string
	etcd   string
}

func build(ctx context.Context, tags string) (binaries, error) {
	regent, err := proc.Build(ctx, "./cmd/regent", tags, nil)
	if err != nil {
		return binaries{}, err
	}
	etcd, err := proc.Build(ctx, "./internal/chaos/cmd/chaos-etcd", "", nil)
	return binaries{regent: regent, etcd: etcd}, err
}

// Nodes returns the nodes pg1, pg2, pg3 (pg4 …).
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns the node called name, or nil.
func (c *Cluster) Node(name string) *Node { return testcluster.NodeNamed(c.nodes, name) }

// Others returns every node but name.
func (c *Cluster) Others(name string) []*Node { return testcluster.NodesBut(c.nodes, name) }

// TTL is the leader lease TTL.
func (c *Cluster) TTL() time.Duration { return time.Duration(c.opts.TTL) * time.Second }

// Watchdog reports whether agents start with the watchdog.
func (c *Cluster) Watchdog() bool { return c.opts.Watchdog }

// Fenced reports whether agents start with the fence hook and the fast
// path.
func (c *Cluster) Fenced() bool { return c.opts.Fence }

// FenceHook is the harness's fence hook.
func (c *Cluster) FenceHook() *FenceHook { return c.fence }

// SetAgentConfig rewrites every node's config file for agents with or
// without the watchdog and the fence hook; running agents read it at
// their next start (see Run.switchConfig). Test goroutine only.
func (c *Cluster) SetAgentConfig(watchdog, fence bool) error {
	c.opts.Watchdog, c.opts.Fence = watchdog, fence
	for _, n := range c.nodes {
		if err := n.writeConfig(); err != nil {
			return err
		}
	}
	return nil
}

// Router is the routing mode's PgBouncer (nil without it).
func (c *Cluster) Router() *Router { return c.router }

// Dir is the base directory (logs under logs/).
func (c *Cluster) Dir() string { return c.base }

// Etcd is a client of the three members, for observation.
func (c *Cluster) Etcd() *clientv3.Client { return c.cli }

// cleanup tears everything down in dependency order: agents (replicas
// first, so teardown makes no one race), PostgreSQL, etcd, the network.
// Logs are kept when the test failed.
func (c *Cluster) cleanup() {
	ctx := context.WithoutCancel(c.ctx)
	for _, n := range c.nodes {
		n.Thaw()
	}
	if c.net != nil {
		c.net.HealAll(ctx)
	}
	c.stopAgents(ctx)
	if err := c.router.stop(); err != nil {
		c.t.Errorf("chaos: %v", err)
	}
	for _, n := range c.nodes {
		if err := n.KillPostgres(); err != nil {
			c.t.Errorf("chaos: %v", err)
		}
		n.closeLinks()
	}
	for _, m := range c.etcd {
		if err := m.kill(); err != nil {
			c.t.Errorf("chaos: %v", err)
		}
	}
	if c.cli != nil {
		_ = c.cli.Close()
	}
	if c.net != nil {
		c.net.Close(ctx)
	}
	c.cancel()
	<-c.reaped
	c.removeDirs()
}

func (c *Cluster) stopAgents(ctx context.Context) {
	leader, _ := c.Leader(ctx)
	testcluster.StopLeaderLast(c.nodes, leader, func(n *Node) {
		if err := n.stop(agentStopTimeout); err != nil {
			c.t.Logf("chaos: stop %s: %v", n.Name, err)
		}
	})
}

// removeDirs deletes the data directories; the logs go too unless the
// test failed, in which case their path is printed.
func (c *Cluster) removeDirs() {
	if !c.t.Failed() && !c.opts.KeepLogs {
		_ = os.RemoveAll(c.base)
		return
	}
	for _, n := range c.nodes {
		// PostgreSQL's log lives in the data directory: keep it.
		if data, err := os.ReadFile(filepath.Join(n.DataDir, "log", "postgresql.log")); err == nil {
			_ = os.WriteFile(filepath.Join(c.base, "logs", n.Name+"-postgresql.log"), data, 0o644)
		}
		_ = os.RemoveAll(n.DataDir)
	}
	for _, m := range c.etcd {
		_ = os.RemoveAll(m.Dir)
	}
	c.t.Logf("chaos: logs kept in %s", filepath.Join(c.base, "logs"))
}

func (c *Cluster) pgBinDir() string { return c.pgBin }
