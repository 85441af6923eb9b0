package dcs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/regent-ha/regent/internal/zapslog"
)

// Sentinel errors for the agent's decisions. Test with errors.Is.
var (
	// ErrConflict: a conditional write lost its race (the key was created,
	// changed or deleted by someone else). Retry on the next tick.
	ErrConflict = errors.New("dcs: conflict")
	// ErrNotLeader: the leader key is absent, names another member, or is
	// not on our current lease.
	ErrNotLeader = errors.New("dcs: not the leader")
	// ErrLeaseLost: etcd says our lease does not exist (expired or revoked),
	// or there is no current lease. Grant a new one.
	ErrLeaseLost = errors.New("dcs: lease lost")
)

// Timing of the gRPC keepalive pings on the connection: they detect a dead
// or black-holed TCP connection (a stuck watch) without waiting for the
// kernel. etcd rejects pings more frequent than 5s (GRPCKeepAliveMinTime).
const keepAlivePing = 5 * time.Second

// Reconnect back-off of the gRPC connection. gRPC's default grows to 120s,
// far longer than a ttl: an agent must see a recovered etcd within about a
// loop_wait, so retries start at 100ms and stay at most 1s apart.
var reconnect = backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// Client is Regent's etcd access: the session lease, the leader key, member
// keys, CAS helpers and the watch-fed cluster view. It is safe for
// concurrent use. Every method that talks to etcd blocks until etcd answers
// or ctx ends; callers bound ctx (retry_timeout). Run must be called at most
// once.
type Client struct {
	cli  *clientv3.Client
	keys Keys
	log  *slog.Logger

	lease atomic.Int64 // current lease id, 0 when none

	view    atomic.Pointer[Cluster]
	changes atomic.Uint32
	notify  chan struct{}
	subs    subscribers

	contactMu sync.Mutex
	contact   time.Time
}

// Connect dials etcd and checks with one linearizable read, bounded by ctx
// and cfg.DialTimeout, that the cluster answers: it returns an error rather
// than hang when etcd is down. The client itself lives until Close, not
// until ctx ends.
func Connect(ctx context.Context, cfg Config, keys Keys, logger *slog.Logger) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAlivePing,
		DialKeepAliveTimeout: cfg.DialTimeout,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password.Reveal(),
		Logger:               zapslog.New(logger.With("etcd_logger", "client"), zapcore.InfoLevel),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: reconnect, MinConnectTimeout: cfg.DialTimeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("dcs: connect %v: %w", cfg.Endpoints, err)
	}
	c := &Client{cli: cli, keys: keys, log: logger, notify: make(chan struct{}, 1)}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(pctx, keys.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("dcs: connect %v: %w", cfg.Endpoints, err)
	}
	c.touch()
	return c, nil
}

// Close closes the connection. Cancel Run's ctx first. It does not revoke
// the lease: the keys on it stay until it expires, so release the leader
// key (ReleaseLeader) before a clean shutdown.
func (c *Client) Close() error { return c.cli.Close() }

// Keys returns the cluster's key layout.
func (c *Client) Keys() Keys { return c.keys }

// Raw returns the underlying etcd client, for tests and tools.
func (c *Client) Raw() *clientv3.Client { return c.cli }

// LastContact returns the local (monotonic) time of the last successful
// etcd response of any kind: keepalive, read, write or watch event.
func (c *Client) LastContact() time.Time {
	c.contactMu.Lock()
	defer c.contactMu.Unlock()
	return c.contact
}

// touch records a successful etcd response now.
func (c *Client) touch() {
	now := time.Now()
	c.contactMu.Lock()
	if now.After(c.contact) {
		c.contact = now
	}
	c.contactMu.Unlock()
}

// isLeaseNotFound reports etcd's answer for an expired or revoked lease.
func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound)
}

// leaseGone clears the current lease if it is still id, and returns
// ErrLeaseLost for it.
func (c *Client) leaseGone(id int64) error {
	if c.lease.CompareAndSwap(id, 0) {
		c.log.Info("etcd lease lost", "lease", fmt.Sprintf("%x", id))
	}
	c.touch() // etcd answered
	return fmt.Errorf("%w: lease %x not found", ErrLeaseLost, id)
}

// currentLease returns the current lease or ErrLeaseLost when there is none.
func (c *Client) currentLease() (int64, error) {
	id := c.lease.Load()
	if id == 0 {
		return 0, fmt.Errorf("%w: no current lease", ErrLeaseLost)
	}
	return id, nil
}
