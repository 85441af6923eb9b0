package testcluster

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/linkproxy"
)

// Each agent reaches etcd through its own link (internal/linkproxy): a
// TCP proxy on 127.0.0.1 run by the test process, the only etcd endpoint
// in the node's config. The test's own client (Cluster.Etcd) and the
// operators' tools (EtcdEndpoints) talk to etcd directly. A link lets a
// test cut ONE agent off from etcd while the others still reach it, which
// stopping etcd cannot do. Cut, a link is a blackhole (the agent's etcd
// calls hang until their own deadlines, the harder case: a refused
// connection tells the agent at once); healed, the connections the cut
// held are closed and traffic flows again.

// openLink starts the node's link to etcd.
func (c *Cluster) openLink(n *Node) error {
	ln, err := new(net.ListenConfig).Listen(c.ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("etcd link of %s: %w", n.Name, err)
	}
	n.link = linkproxy.New(c.ctx, ln, linkproxy.TCP(hostPort(c.etcdClientURL)), 0)
	return nil
}

// EtcdEndpoint is the etcd endpoint in the node's config: its link.
func (n *Node) EtcdEndpoint() string { return "http://" + n.link.Addr().String() }

// CutEtcd cuts the node's agent off from etcd, as a partition between
// them would, while every other node and the test still reach etcd: from
// the returned time on, nothing the agent sends reaches etcd and nothing
// from etcd reaches the agent; its calls hang until their own deadlines
// (connections are not closed; new ones are accepted and never
// forwarded). The node's PostgreSQL and REST API stay reachable. It fails
// the test if the link is already cut.
func (n *Node) CutEtcd(t testing.TB) time.Time {
	t.Helper()
	at, held, err := n.link.Cut()
	if err != nil {
		t.Fatalf("testcluster: etcd link of %s: %v", n.Name, err)
	}
	n.c.log.logf("[%s] etcd link cut: %d connections blackholed", n.Name, held)
	return at
}

// HealEtcd ends a CutEtcd: the connections the cut held are closed (the
// agent reconnects) and traffic flows again. It fails the test if the
// link is not cut.
func (n *Node) HealEtcd(t testing.TB) {
	t.Helper()
	if err := n.healLink(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

func (n *Node) healLink() error {
	closed, err := n.link.Heal()
	if err != nil {
		return fmt.Errorf("etcd link of %s: %w", n.Name, err)
	}
	n.c.log.logf("[%s] etcd link healed: %d held connections closed", n.Name, closed)
	return nil
}

// SetEtcdLatency delays every chunk of the node's etcd traffic by d in
// each direction (order kept) from now on; 0 restores a plain copy.
// Chunks already in flight keep their delay.
func (n *Node) SetEtcdLatency(d time.Duration) {
	n.link.Shape(linkproxy.Shaping{Latency: d})
	n.c.log.logf("[%s] etcd link latency set to %s each way", n.Name, d)
}

// CutEtcdAll cuts every node's agent off from etcd (CutEtcd on each, the
// test's own client still reaches it) and returns the time the last link
// was cut.
func (c *Cluster) CutEtcdAll(t testing.TB) time.Time {
	t.Helper()
	var at time.Time
	for _, n := range c.nodes {
		at = n.CutEtcd(t)
	}
	return at
}

// HealEtcdAll heals every node's link that is cut.
func (c *Cluster) HealEtcdAll(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		if n.link.IsCut() {
			n.HealEtcd(t)
		}
	}
}

// healLinks heals every cut link (for the cleanup: agents stop faster,
// and release their keys, when they reach etcd); a failure there only
// means the link was healed meanwhile.
func (c *Cluster) healLinks() {
	for _, n := range c.nodes {
		if n.link != nil && n.link.IsCut() {
			_ = n.healLink()
		}
	}
}

// closeLinks closes every node's link; call it once the agents are gone.
func (c *Cluster) closeLinks() {
	for _, n := range c.nodes {
		if n.link != nil {
			n.link.Close()
		}
	}
}

// hostPort strips the scheme of an http:// URL.
func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }
