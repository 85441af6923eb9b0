package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdStartTimeout bounds a member's start: a quorum at the first start,
// a WAL replay at a restart.
const etcdStartTimeout = 60 * time.Second

// EtcdMember is one etcd member, a chaos-etcd process in its namespace.
type EtcdMember struct {
	Name      string
	Host      *netns.Host
	Dir       string
	LogPath   string
	ClientURL string
	args      []string
	c         *Cluster

	run proc.Handle // the member process's runs
	mu  sync.Mutex
	id  uint64 // raft member id, learnt from Status
}

// startEtcd starts the three members together (each waits for a quorum)
// and waits until every one answers Status.
func (c *Cluster) startEtcd() error {
	var peers []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("etcd%d", i)
		h, err := c.net.AddHost(c.ctx, name, 20+i)
		if err != nil {
			return err
		}
		m := &EtcdMember{
			Name: name, Host: h, c: c,
			run:       proc.Handle{Name: "etcd member " + name, Launch: proc.Netns(h.Path)},
			Dir:       filepath.Join(c.base, name),
			LogPath:   filepath.Join(c.base, "logs", name+".log"),
			ClientURL: fmt.Sprintf("http://%s:%d", h.IP, etcdClientPort),
		}
		m.run.Log = m.LogPath
		peers = append(peers, fmt.Sprintf("%s=http://%s:%d", name, h.IP, etcdPeerPort))
		c.etcd = append(c.etcd, m)
	}
	if err := os.MkdirAll(filepath.Join(c.base, "logs"), 0o755); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	for _, m := range c.etcd {
		m.args = []string{
			"-name", m.Name, "-dir", m.Dir, "-client-url", m.ClientURL,
			"-peer-url", fmt.Sprintf("http://%s:%d", m.Host.IP, etcdPeerPort),
			"-initial-cluster", strings.Join(peers, ","),
		}
		if err := m.start(); err != nil {
			return err
		}
	}
	// No DialTimeout: New must not block on members still electing.
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.EtcdEndpoints(), Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	c.cli = cli
	for _, m := range c.etcd {
		if err := m.waitServing(c.ctx); err != nil {
			return err
		}
	}
	return nil
}

// EtcdEndpoints are the client URLs of the three members.
func (c *Cluster) EtcdEndpoints() []string {
	var eps []string
	for _, m := range c.etcd {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// EtcdMembers returns the members.
func (c *Cluster) EtcdMembers() []*EtcdMember { return append([]*EtcdMember(nil), c.etcd...) }

func (m *EtcdMember) start() error {
	cmd := exec.CommandContext(m.c.ctx, m.c.bins.etcd, m.args...)
	return m.c.startLogged(&m.run, cmd, false)
}

// Running reports whether the member's process is alive.
func (m *EtcdMember) Running() bool { return m.run.Running() }

// Crashed names the exit of a member that ended on its own.
func (m *EtcdMember) Crashed() error { return m.run.Crashed() }

// kill SIGKILLs the member (member loss) and waits until it is gone.
func (m *EtcdMember) kill() error { return m.run.Kill() }

// waitServing waits until the member answers Status (its raft id is then
// known) and reports a leader.
func (m *EtcdMember) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, etcdStartTimeout)
	defer cancel()
	var last error
	for {
		if err := m.Crashed(); err != nil {
			return err
		}
		_, leader, err := m.status(ctx)
		if err == nil && leader != 0 {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = errors.New("no raft leader yet")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd member %s not serving within %s: %w", m.Name, etcdStartTimeout, last)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// status asks the member itself for its raft id and the leader it knows.
func (m *EtcdMember) status(ctx context.Context) (id, leader uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := m.c.cli.Status(ctx, m.ClientURL)
	if err != nil {
		return 0, 0, fmt.Errorf("status of %s: %w", m.Name, err)
	}
	m.mu.Lock()
	m.id = resp.Header.MemberId
	m.mu.Unlock()
	return resp.Header.MemberId, resp.Leader, nil
}

// EtcdLeader returns the member the running members agree is the raft
// leader.
func (c *Cluster) EtcdLeader(ctx context.Context) (*EtcdMember, error) {
	var leader uint64
	for _, m := range c.etcd {
		if !m.Running() {
			continue
		}
		if _, l, err := m.status(ctx); err == nil && l != 0 {
			leader = l
		}
	}
	for _, m := range c.etcd {
		m.mu.Lock()
		id := m.id
		m.mu.Unlock()
		if leader != 0 && id == leader {
			return m, nil
		}
	}
	return nil, errors.New("no etcd leader known")
}
