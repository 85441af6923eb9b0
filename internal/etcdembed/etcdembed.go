package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/zapslog"
)

// Config configures an in-process etcd server.
type Config struct {
	// Name is the member name (default "regent").
	Name string
	// Dir is the data directory (required). Starting again with the same
	// Dir and URLs resumes the data.
	Dir string
	// ClientURL and PeerURL default to http://127.0.0.1:<free port>.
	ClientURL, PeerURL string
	// InitialCluster ("name=peerURL,…") defaults to this member alone.
	InitialCluster string
	// Logger receives etcd's logs at DEBUG; nil discards them.
	Logger *slog.Logger
}

// Server is a running in-process etcd server.
type Server struct {
	cfg   Config
	etcd  *embed.Etcd
	close sync.Once
}

// Start starts an etcd server and waits until it serves clients,
// bounded by ctx (on timeout the server is stopped and an error returned).
// The server lives until Close, not until ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: Dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "regent"
	}
	var err error
	if cfg.ClientURL, err = urlOrFree(cfg.ClientURL); err != nil {
		return nil, err
	}
	if cfg.PeerURL, err = urlOrFree(cfg.PeerURL); err != nil {
		return nil, err
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.Name + "=" + cfg.PeerURL
	}
	ec, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	return start(ctx, ec, cfg)
}

// start starts the server ec describes and waits until it serves clients,
// bounded by ctx.
func start(ctx context.Context, ec *embed.Config, cfg Config) (*Server, error) {
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd %s: %w", cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Server{cfg: cfg, etcd: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd %s: %w", cfg.Name, err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd %s not ready: %w", cfg.Name, ctx.Err())
	}
}

func embedConfig(cfg Config) (*embed.Config, error) {
	curl, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL: %w", err)
	}
	purl, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*curl}, []url.URL{*curl}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*purl}, []url.URL{*purl}
	ec.InitialCluster = cfg.InitialCluster
	ec.InitialClusterToken = "regent"
	var log *slog.Logger
	if cfg.Logger != nil {
		log = cfg.Logger.With("etcd_logger", "server", "etcd_member", cfg.Name)
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapslog.New(log, zapcore.InfoLevel))
	return ec, nil
}

func urlOrFree(u string) (string, error) {
	if u != "" {
		return u, nil
	}
	port, err := freeport.Pick()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port), nil
}

// Config returns the configuration in effect, with the chosen URLs: pass it
// to Start again to restart the same member.
func (e *Server) Config() Config { return e.cfg }

// Endpoints returns the client URLs.
func (e *Server) Endpoints() []string { return []string{e.cfg.ClientURL} }

// Close stops the server and waits for it; it is idempotent.
func (e *Server) Close() { e.close.Do(e.etcd.Close) }
