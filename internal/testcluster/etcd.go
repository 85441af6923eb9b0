package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
	"github.com/regent-ha/regent/internal/freeport"
)

// etcdStartTimeout bounds an embedded etcd start (a one-member cluster
// elects itself within a second or two; restart replays its WAL).
const etcdStartTimeout = 30 * time.Second

func (c *Cluster) startEtcd() error {
	clientPort, peerPort, err := twoPorts()
	if err != nil {
		return err
	}
	c.etcdClientURL = fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	w := &lineWriter{log: c.log, prefix: "[etcd]"}
	c.etcdCfg = etcdembed.Config{
		Name:           "etcd0",
		Dir:            filepath.Join(c.base, "etcd"),
		ClientURL:      c.etcdClientURL,
		PeerURL:        peerURL,
		InitialCluster: "etcd0=" + peerURL,
		Logger:         slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if err := c.runEtcd(); err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{c.etcdClientURL},
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	c.cli = cli
	return nil
}

func (c *Cluster) runEtcd() error {
	ctx, cancel := context.WithTimeout(c.ctx, etcdStartTimeout)
	defer cancel()
	if err := c.waitEtcdClosed(ctx); err != nil {
		return err
	}
	c.etcdMu.Lock()
	defer c.etcdMu.Unlock()
	if c.etcd != nil {
		return fmt.Errorf("embedded etcd already running")
	}
	e, err := etcdembed.Start(ctx, c.etcdCfg)
	if err != nil {
		return fmt.Errorf("start embedded etcd: %w", err)
	}
	c.etcd = e
	return nil
}

// waitEtcdClosed waits for a Close started by StopEtcd to finish.
func (c *Cluster) waitEtcdClosed(ctx context.Context) error {
	c.etcdMu.Lock()
	closing := c.etcdClosing
	c.etcdMu.Unlock()
	if closing == nil {
		return nil
	}
	select {
	case <-closing:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded etcd still closing: %w", ctx.Err())
	}
}

// Etcd returns a client of the cluster's etcd for assertions. It outlives
// StopEtcd/StartEtcd (it reconnects) and is closed by the cleanup.
func (c *Cluster) Etcd() *clientv3.Client { return c.cli }

// EtcdEndpoints returns the etcd client URLs the agents use.
func (c *Cluster) EtcdEndpoints() []string { return []string{c.etcdClientURL} }

// StopEtcd stops the embedded etcd and returns as soon as it no longer
// answers clients (checked with a read). etcd's Close itself keeps going
// in the background: it waits up to its request timeout (7 s) for open
// watch streams; StartEtcd and the cleanup wait for it.
func (c *Cluster) StopEtcd(t testing.TB) {
	t.Helper()
	c.etcdMu.Lock()
	e := c.etcd
	c.etcd = nil
	if e != nil {
		closing := make(chan struct{})
		c.etcdClosing = closing
		go func() {
			defer close(closing)
			e.Close()
			c.log.logf("[etcd] closed")
		}()
	}
	c.etcdMu.Unlock()
	if e == nil {
		t.Fatalf("testcluster: StopEtcd: etcd is not running")
	}
	Poll(t, etcdStartTimeout, "etcd to stop answering", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := c.cli.Get(ctx, c.keys.Leader()); err == nil {
			return fmt.Errorf("etcd still answers reads")
		}
		return nil
	})
	c.log.logf("[etcd] stopped serving")
}

// StartEtcd restarts the embedded etcd with the same data directory and
// ports; it returns once etcd serves clients (bounded by etcdStartTimeout).
func (c *Cluster) StartEtcd(t testing.TB) {
	t.Helper()
	if err := c.runEtcd(); err != nil {
		t.Fatalf("testcluster: StartEtcd: %v", err)
	}
	c.log.logf("[etcd] started")
}

// Leader returns the leader key's value (a member name), or ErrNoLeader.
func (c *Cluster) Leader(ctx context.Context) (string, error) {
	return ReadLeader(ctx, c.cli, c.keys)
}

// LeaderNode returns the node the leader key names (see Leader).
func (c *Cluster) LeaderNode(ctx context.Context) (*Node, error) {
	return LeaderOf(ctx, c.cli, c.keys, c.nodes)
}

// ReadLeader returns the value of the leader key of keys (a member name),
// or ErrNoLeader, read with GetKey.
func ReadLeader(ctx context.Context, cli *clientv3.Client, keys dcs.Keys) (string, error) {
	v, err := GetKey(ctx, cli, keys.Leader())
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrNoLeader
	}
	return string(v), nil
}

// LeaderOf returns the node of nodes the leader key names (see
// ReadLeader).
func LeaderOf[N Named](ctx context.Context, cli *clientv3.Client, keys dcs.Keys, nodes []N) (N, error) {
	var none N
	name, err := ReadLeader(ctx, cli, keys)
	if err != nil {
		return none, err
	}
	if n := NodeNamed(nodes, name); n != none {
		return n, nil
	}
	return none, fmt.Errorf("leader key names %q, not a node of this cluster", name)
}

// Member returns the parsed member key of name (numbers as json.Number).
func (c *Cluster) Member(ctx context.Context, name string) (map[string]any, error) {
	v, err := GetKey(ctx, c.cli, c.keys.Member(name))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("member key %s: absent", c.keys.Member(name))
	}
	m, err := decodeObject(v)
	if err != nil {
		return nil, fmt.Errorf("member key %s: %w (value %q)", c.keys.Member(name), err, v)
	}
	return m, nil
}

// Get returns the raw value of key name under the cluster prefix
// ("initialize", "config", "status", …), nil if absent.
func (c *Cluster) Get(ctx context.Context, name string) ([]byte, error) {
	return GetKey(ctx, c.cli, c.keys.Prefix()+name)
}

// GetKey reads one key with cli within 2 s (etcd may be stopped or cut
// off), returning its value, nil if absent; a nil cli (no client yet) is
// an error.
func GetKey(ctx context.Context, cli *clientv3.Client, key string) ([]byte, error) {
	if cli == nil {
		return nil, errors.New("no etcd client")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// twoPorts hands out two distinct free ports (a server's two listeners).
func twoPorts() (int, int, error) {
	ports, err := freeport.PickN(2)
	if err != nil {
		return 0, 0, err
	}
	return ports[0], ports[1], nil
}
