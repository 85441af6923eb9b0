package testcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
	"github.com/regent-ha/regent/internal/proc"
)

// Bounds of the teardown and of the signals-based helpers. They are upper
// bounds on how long we wait for an event, never sleeps.
const (
	// agentStopTimeout bounds a clean agent shutdown (SIGTERM): the agent
	// stops PostgreSQL (fast, then immediate) and releases its keys.
	agentStopTimeout = 30 * time.Second
)

// ErrNoLeader is returned by Leader when the leader key does not exist.
var ErrNoLeader = errors.New("no leader key")

// Cluster is one running test cluster. Its methods may be called from any
// goroutine, except the ones that take a testing.TB and fail the test
// (those follow the testing package's rule: the test goroutine only).
type Cluster struct {
	t     testing.TB
	opts  Options
	user  runAs
	bin   string
	base  string
	log   *testLog
	keys  dcs.Keys
	nodes []*Node

	// ctx lives until the end of the cleanup; it bounds child processes
	// (exec.CommandContext) as a last resort. It is not t.Context(): that
	// one is cancelled before cleanups run, which would SIGKILL the agents
	// before their graceful stop.
	ctx    context.Context
	cancel context.CancelFunc
	reaped chan struct{} // closed when reapLoop has returned

	etcdCfg       etcdembed.Config
	etcdClientURL string
	etcdMu        sync.Mutex
	etcd          *etcdembed.Server // nil while stopped
	etcdClosing   chan struct{}     // closed when the last StopEtcd's Close is done
	cli           *clientv3.Client
}

// New starts an embedded etcd (in-process) and every node's agent, and
// returns without waiting for a leader (use WaitLeader / WaitHealthy).
// It registers a t.Cleanup that stops the agents (SIGTERM, SIGKILL after
// agentStopTimeout), kills any PostgreSQL still alive (the postmaster
// named by postmaster.pid and its children), closes etcd and, if the test
// failed, logs the tail of every node's PostgreSQL log. Directories live
// in t.TempDir().
//
// New skips the test under -short: it builds the agent and runs real
// PostgreSQL servers.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("testcluster: end-to-end test skipped with -short")
	}
	bin := ""
	if !everyNodeHasBinary(opts) {
		bin = AgentBinary(t)
	}
	c := setup(t, opts, bin)
	for _, n := range c.nodes {
		n.Start(t)
	}
	return c
}

// everyNodeHasBinary reports whether Options.Binary names a binary for
// every node, so that the default one need not be built.
func everyNodeHasBinary(opts Options) bool {
	if opts.Binary == nil {
		return false
	}
	for i := 1; i <= cmp.Or(opts.Nodes, 3); i++ {
		if opts.Binary(fmt.Sprintf("pg%d", i)) == "" {
			return false
		}
	}
	return true
}

// setup prepares a cluster whose agents run binary bin (unless
// Options.Binary names another) without starting any agent: directories,
// cleanup, etcd, and each node's config file.
func setup(t testing.TB, opts Options, bin string) *Cluster {
	t.Helper()
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	if err := proc.BecomeSubreaper(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	user, err := postgresUser()
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	c := &Cluster{t: t, opts: opts, user: user, bin: bin, log: &testLog{t: t}, keys: dcs.NewKeys(Namespace, opts.Scope)}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(t.Context()))
	c.base = OpenTempDir(t)
	c.reaped = make(chan struct{})
	go proc.ReapLoop(c.ctx, c.reaped)
	t.Cleanup(c.cleanup)
	if err := c.startEtcd(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		if _, err := c.newNode(fmt.Sprintf("pg%d", i)); err != nil {
			t.Fatalf("testcluster: %v", err)
		}
	}
	return c
}

func (c *Cluster) newNode(name string) (*Node, error) {
	pgPort, apiPort, err := twoPorts()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.base, name)
	n := &Node{
		Name: name, Dir: dir, DataDir: filepath.Join(dir, "data"),
		ConfigPath: filepath.Join(dir, "regent.yml"),
		PGPort:     pgPort, APIPort: apiPort,
		APIURL: fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		c:      c,
		agent:  proc.Handle{Name: "agent of " + name, DataDir: filepath.Join(dir, "data"), Launch: proc.Plain},
	}
	bin := c.bin
	if c.opts.Binary != nil {
		bin = cmp.Or(c.opts.Binary(name), bin)
	}
	n.bin.Store(&bin)
	if err := c.user.mkdirOwned(dir); err != nil {
		return nil, err
	}
	if err := c.openLink(n); err != nil {
		return nil, err
	}
	c.nodes = append(c.nodes, n) // before anything else can fail: the cleanup closes its link
	if err := c.writeConfig(n); err != nil {
		return nil, err
	}
	return n, nil
}

// Node returns the node called name (pg1…pgN), or nil.
func (c *Cluster) Node(name string) *Node { return NodeNamed(c.nodes, name) }

// Nodes returns every node, in name order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Others returns every node but the one called name.
func (c *Cluster) Others(name string) []*Node { return NodesBut(c.nodes, name) }

// Scope is the cluster's scope; Keys its etcd key layout.
func (c *Cluster) Scope() string  { return c.opts.Scope }
func (c *Cluster) Keys() dcs.Keys { return c.keys }

// TTL is the configured leader lease TTL.
func (c *Cluster) TTL() time.Duration { return time.Duration(c.opts.TTL) * time.Second }

// Dir is the cluster's base directory (one subdirectory per node, etcd's).
func (c *Cluster) Dir() string { return c.base }

// cleanup tears everything down; see New.
func (c *Cluster) cleanup() {
	defer func() {
		c.cancel()
		<-c.reaped
		proc.ReapOrphans()
	}()
	failed := c.t.Failed()
	for _, n := range c.nodes {
		n.agent.Thaw()
	}
	c.healLinks()
	c.stopAgents()
	c.closeLinks()
	for _, n := range c.nodes {
		if err := n.killPostgres(); err != nil {
			c.t.Errorf("testcluster: %v", err)
		}
	}
	if failed {
		for _, n := range c.nodes {
			c.t.Logf("testcluster: PostgreSQL log of %s:\n%s", n.Name, postgresLogTails(n.Dir, 3, 60))
		}
	}
	c.log.close()
	if c.cli != nil {
		_ = c.cli.Close()
	}
	c.etcdMu.Lock()
	if c.etcd != nil {
		c.etcd.Close()
		c.etcd = nil
	}
	closing := c.etcdClosing
	c.etcdMu.Unlock()
	if closing != nil {
		<-closing
	}
}

// stopAgents stops the replicas first (concurrently), then the leader, so
// that teardown does not make replicas race for a released leader key.
func (c *Cluster) stopAgents() {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	leader, _ := c.Leader(ctx)
	cancel()
	StopLeaderLast(c.nodes, leader, func(n *Node) {
		if err := n.stop(agentStopTimeout); err != nil {
			c.t.Errorf("testcluster: %v", err)
		}
	})
}
