package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/sdnotify"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// errAgentStopped ends the errgroup once the HA loop has shut down, so the
// watch and the REST server stop with it.
var errAgentStopped = errors.New("agent stopped")

func runAgent(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, _, ok := loadConfig("regent", args, stderr)
	if !ok {
		return exitUsage
	}
	log := cfg.Log.NewLogger(os.Stderr)
	if os.Geteuid() == 0 {
		log.Error("refusing to run as root: PostgreSQL refuses root; run regent as the postgres OS user (see examples/systemd)")
		return exitFailed
	}
	// Before anything starts: FromEnv also clears NOTIFY_SOCKET and
	// WATCHDOG_* so PostgreSQL does not inherit them.
	notifier, err := sdnotify.FromEnv()
	if err != nil {
		log.Error("systemd notification socket", "err", err)
		return exitFailed
	}
	if notifier != nil {
		defer func() { _ = notifier.Close() }()
		log.Info("systemd notification socket found: READY=1 after the first tick", "watchdog_interval", notifier.WatchdogInterval())
	}
	if err := serve(ctx, cfg, log, notifier); err != nil {
		log.Error("regent stopped", "err", err)
		return exitFailed
	}
	return exitOK
}

// serve wires the parts and runs them until ctx ends or the agent stops.
// A watchdog left armed on the way out resets the host: a failed disarm
// fails the run.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, notifier *sdnotify.Notifier) (err error) {
	client, err := connectDCS(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		// The agent has stopped: an etcd client that does not close
		// cleanly has nothing left to lose, but the log says so.
		if err := client.Close(); err != nil {
			log.Warn("close the etcd client", "err", err)
		}
	}()
	pg, err := postgres.New(postgres.Options{Config: cfg.Postgres, Name: cfg.Name, Scope: cfg.Scope, InitDBOptions: cfg.Bootstrap.InitDB,
		NoStream: cfg.Tags.NoStream(), Logger: log.With("component", "postgres")})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pg.Close()

	wd := fencing.NewWatchdog(cfg.Watchdog, fencing.OpenDevice, log.With("component", "watchdog"), time.Now)
	defer func() { err = errors.Join(err, wd.Disarm()) }()
	// One key pair for the server and the peers' client: SIGHUP renews both.
	keyPair, err := restapi.LoadKeyPair(cfg.RestAPI)
	if err != nil {
		return fmt.Errorf("restapi TLS: %w", err)
	}
	peerTLS, err := cfg.RestAPI.PeerTLSConfigWith(keyPair)
	if err != nil {
		return fmt.Errorf("restapi TLS: %w", err)
	}
	// One registry of our own: no global state (STYLE habit 11).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var srv *restapi.Server
	peers := agent.NewHTTPPeers(peerTLS)
	peers.Auth = cfg.RestAPI.Authentication // POST /failsafe is a write: the members ask for it
	opts := agent.Options{
		Config: cfg, DCS: client, Postgres: pg, Peers: peers, Failsafe: peers, Logger: log, Watchdog: wd,
		Metrics:   agent.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"scope": cfg.Scope}, reg)),
		Publisher: publisherFunc(func(s *restapi.Snapshot) { srv.Publish(s) }),
	}
	if notifier != nil {
		// Not a typed nil: the agent checks for a missing notifier.
		opts.Notifier = notifier
	}
	ag, err := agent.New(opts)
	if err != nil {
		return err
	}
	srv = restapi.New(restapi.Options{Config: cfg.RestAPI, Backend: ag, Switchovers: ag, Commands: ag, Members: ag, Failsafe: ag,
		KeyPair: keyPair, Logger: log.With("component", "restapi")})
	reg.MustRegister(restapi.NewPatroniCollector(srv, cfg.Scope))
	srv.Mount("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { reloadOnHUP(gctx, ag, srv, log); return nil })
	g.Go(func() error { return client.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		if err := ag.Run(gctx); err != nil {
			return err
		}
		return errAgentStopped
	})
	if err := g.Wait(); err != nil && !errors.Is(err, errAgentStopped) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// connectDCS retries until etcd answers: an agent started before etcd
// waits for it rather than exiting.
func connectDCS(ctx context.Context, cfg *config.Config, log *slog.Logger) (*dcs.Client, error) {
	keys := dcs.NewKeys(cfg.Namespace, cfg.Scope)
	for {
		client, err := dcs.Connect(ctx, cfg.Etcd, keys, log.With("component", "dcs"))
		if err == nil {
			return client, nil
		}
		log.Warn("cannot connect to etcd; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

type publisherFunc func(*restapi.Snapshot)

func (f publisherFunc) Publish(s *restapi.Snapshot) { f(s) }

// reloadOnHUP makes SIGHUP do what POST /reload does, as operators expect
// of a daemon, instead of ending the agent, and reload the REST API's TLS
// certificate and key (a renewed certificate needs no restart; a pair
// that does not load keeps the current one, and the log says why).
func reloadOnHUP(ctx context.Context, ag *agent.Agent, srv *restapi.Server, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = srv.ReloadTLS() // logs its outcome
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			code, text := ag.Reload(rctx)
			cancel()
			log.Info("SIGHUP: reload", "code", code, "result", text)
		}
	}
}
