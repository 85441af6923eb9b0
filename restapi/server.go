package restapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
)

const (
	// DefaultBackendTimeout bounds one Backend call: patronictl and peers
	// give up after 2 s, so a slower answer is useless to them.
	DefaultBackendTimeout = 2 * time.Second
	// readHeaderTimeout stops slow-header clients from holding connections.
	readHeaderTimeout = 5 * time.Second
	// idleTimeout closes idle keep-alive connections (HAProxy reconnects).
	idleTimeout = 60 * time.Second
	// shutdownTimeout bounds the graceful shutdown; then connections are closed.
	shutdownTimeout = 3 * time.Second
	// bodyReadTimeout bounds reading a request body, so a client that
	// declares a body and never sends it cannot hold a goroutine forever.
	bodyReadTimeout = 10 * time.Second
	maxHeaderBytes  = 64 << 10
)

// Options configure a Server.
type Options struct {
	Config  Config
	Backend Backend // may be nil: /cluster, /history and /config then answer 503
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject a fake.
	Now func() time.Time
	// BackendTimeout bounds each Backend call; 0 means DefaultBackendTimeout.
	BackendTimeout time.Duration
	// Switchovers serves the switchover endpoints (PATCH/GET/DELETE
	// /switchover…, GET /switchovers, Patroni's POST /switchover and
	// /failover); nil makes them answer 503.
	Switchovers Switchovers
	// Commands serves PATCH/PUT /config, POST/DELETE /restart, POST
	// /reload and POST /reinitialize; nil makes them answer 503.
	Commands Commands
	// CommandTimeout bounds each Commands call except Restart (0:
	// DefaultCommandTimeout); RestartTimeout bounds Restart (0:
	// DefaultRestartTimeout), plus the request's own timeout filter.
	CommandTimeout, RestartTimeout time.Duration
	// Failsafe serves POST and GET /failsafe; nil makes them answer 503.
	Failsafe Failsafe
	// Members gives the members' api_url hosts for
	// restapi.allowlist_include_members; nil: only restapi.allowlist counts.
	Members Members
	// KeyPair is the TLS certificate and key (restapi.certfile, keyfile),
	// shared with the peers' client (Config.PeerTLSConfigWith) so that
	// ReloadTLS renews both; nil: the server loads its own in Run.
	KeyPair *KeyPair
}

// Server is the REST API. Publish may be called from any goroutine at any
// time; Mount only before the handler serves its first request.
type Server struct {
	cfg            Config
	backend        Backend
	log            *slog.Logger
	now            func() time.Time
	backendTimeout time.Duration
	bodyTimeout    time.Duration
	switchovers    Switchovers
	failsafe       Failsafe
	// commandTimeout bounds StartSwitchover and AbortSwitchover.
	commandTimeout time.Duration
	// keepAlive is the interval of the event streams' comment pings.
	keepAlive time.Duration
	// commands serves the operator endpoints (restart, reload, …);
	// opTimeout bounds its calls but Restart, which restartTimeout bounds.
	commands                  Commands
	opTimeout, restartTimeout time.Duration
	// creds, allow and throttle guard the write endpoints (checkAccess);
	// members feeds allowlist_include_members.
	creds    credentials
	allow    allowlist
	members  Members
	throttle *loginThrottle
	// streams counts open event streams, capped at cfg.MaxStreams.
	streams atomic.Int64
	// keyPair serves the TLS certificate; set by New or Run.
	keyPair atomic.Pointer[KeyPair]

	state  atomic.Pointer[published]
	router *chi.Mux
}

// published is a Snapshot with its Status JSON encoded once, with and
// without cluster_unlocked, so a health check only picks and writes bytes.
// When the snapshot carries a lease deadline, each encoding is kept split
// around lease_remaining_ms, whose value is written per request.
type published struct {
	snap               *Snapshot
	locked, unlocked   []byte
	lockedLen, unlkLen []string // Content-Length header values
	encErr             error
	// lockedTail and unlkTail follow lease_remaining_ms's value; locked and
	// unlocked then end just before it. Nil when no lease is reported.
	lockedTail, unlkTail []byte
}

// body returns the status document as of now (cluster_unlocked and
// lease_remaining_ms recomputed).
func (p *published) body(now time.Time) ([]byte, []string) {
	head, tail, n := p.locked, p.lockedTail, p.lockedLen
	if p.snap.Unlocked || !now.Before(p.snap.ViewFreshUntil) {
		head, tail, n = p.unlocked, p.unlkTail, p.unlkLen
	}
	if tail == nil {
		return head, n
	}
	ms := max(0, p.snap.LeaseDeadline.Sub(now).Milliseconds())
	b := make([]byte, 0, len(head)+len(tail)+20)
	b = strconv.AppendInt(append(b, head...), ms, 10)
	b = append(b, tail...)
	return b, []string{strconv.Itoa(len(b))}
}

// New returns a Server. Unset Config fields take their defaults.
func New(opts Options) *Server {
	s := &Server{
		cfg:            opts.Config,
		backend:        opts.Backend,
		log:            opts.Logger,
		now:            opts.Now,
		backendTimeout: opts.BackendTimeout,
		bodyTimeout:    bodyReadTimeout,
		switchovers:    opts.Switchovers,
		failsafe:       opts.Failsafe,
		commandTimeout: switchoverCommandTimeout,
		keepAlive:      sseKeepAlive,
		commands:       opts.Commands,
		opTimeout:      opts.CommandTimeout,
		restartTimeout: opts.RestartTimeout,
		creds:          newCredentials(opts.Config.Authentication),
		members:        opts.Members,
		throttle:       newLoginThrottle(maxThrottled),
	}
	// Validate refused a bad entry already; what parses is what is used.
	prefixes, _ := parseAllowlist(opts.Config.Allowlist)
	s.allow = allowlist{prefixes: prefixes, members: opts.Config.AllowlistIncludeMembers}
	if opts.KeyPair != nil {
		s.keyPair.Store(opts.KeyPair)
	}
	if s.opTimeout <= 0 {
		s.opTimeout = DefaultCommandTimeout
	}
	if s.restartTimeout <= 0 {
		s.restartTimeout = DefaultRestartTimeout
	}
	s.cfg.SetDefaults()
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.backendTimeout <= 0 {
		s.backendTimeout = DefaultBackendTimeout
	}
	s.router = s.routes()
	return s
}

func (s *Server) routes() *chi.Mux {
	r := chi.NewRouter()
	// Every GET that no route takes is a health check (§2.1); other methods
	// on unrouted paths are 405.
	r.NotFound(closeOnBody(s.unrouted))
	r.MethodNotAllowed(closeOnBody(s.unrouted))
	// Patroni routes by the first path segment: /patroni/x is /patroni.
	for path, h := range map[string]http.HandlerFunc{
		"/patroni":   s.getPatroni,
		"/liveness":  s.getLiveness,
		"/readiness": s.getReadiness,
		"/cluster":   s.getCluster,
		"/history":   s.getHistory,
		"/config":    s.getConfig,
		"/decisions": s.getDecisions,
	} {
		r.Get(path, closeOnBody(h))
		r.Get(path+"/*", closeOnBody(h))
	}
	s.switchoverRoutes(r)
	s.commandRoutes(r)
	s.failsafeRoutes(r)
	return r
}

// Publish makes snap the state every health check and GET /patroni answer
// from. snap must not be modified afterwards. Publish(nil) returns the
// server to its "starting" state (503 everywhere).
func (s *Server) Publish(snap *Snapshot) {
	if snap == nil {
		s.state.Store(nil)
		return
	}
	p := &published{snap: snap}
	st := snap.Status
	if !snap.LeaseDeadline.IsZero() && st.Regent != nil {
		regent := *st.Regent
		regent.LeaseRemainingMs = leaseSentinel
		st.Regent = &regent
	}
	p.locked, p.encErr = encodeStatus(st, false)
	if p.encErr == nil {
		p.unlocked, p.encErr = encodeStatus(st, true)
	}
	if p.encErr == nil && st.Regent != nil && st.Regent.LeaseRemainingMs == leaseSentinel {
		p.locked, p.lockedTail = splitAtSentinel(p.locked)
		p.unlocked, p.unlkTail = splitAtSentinel(p.unlocked)
	}
	if p.encErr != nil {
		if prev := s.state.Load(); prev == nil || prev.encErr == nil { // once per failure, not per tick
			s.log.Error("encoding the status document failed", "err", p.encErr)
		}
		p.locked = []byte(`{"error":"encoding the status document failed"}` + "\n")
		p.unlocked = p.locked
	}
	p.lockedLen = []string{strconv.Itoa(len(p.locked))}
	p.unlkLen = []string{strconv.Itoa(len(p.unlocked))}
	s.state.Store(p)
}

// leaseSentinel stands for lease_remaining_ms in the encoded document: no
// lease is this long (about 285,000 years), so it occurs nowhere else.
const leaseSentinel int64 = 1<<53 - 1

// splitAtSentinel splits an encoded document around the sentinel's digits.
func splitAtSentinel(doc []byte) (head, tail []byte) {
	head, tail, found := bytes.Cut(doc, []byte(`"lease_remaining_ms":`+strconv.FormatInt(leaseSentinel, 10)))
	if !found {
		return doc, nil
	}
	return append(head, `"lease_remaining_ms":`...), tail
}

// encodeStatus encodes st with cluster_unlocked set as given.
func encodeStatus(st Status, unlocked bool) ([]byte, error) {
	st.ClusterUnlocked = unlocked
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return append(b, '\n'), nil
}

// Handler returns the server's HTTP handler: panic recovery, then HEAD and
// OPTIONS as health checks on every path, then the router.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer s.recoverPanic(tw, r)
	r = s.boundBodyRead(w, r)
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		// Patroni runs the generic health check for HEAD and OPTIONS on
		// any path (HAProxy's default check is OPTIONS /).
		closeOnBody(s.health)(tw, r)
		return
	}
	if !s.checkAccess(tw, r) {
		return
	}
	s.router.ServeHTTP(tw, r)
}

// Mount routes pattern to h. pattern is either "/path", and h then serves
// every method on /path and below (chi's Mount), or "METHOD /path", and h
// serves that method on exactly /path, beside the routes the path already
// has (use this form for "PATCH /config"). HEAD and OPTIONS never reach h:
// they are health checks on every path. GET requests that h's own router
// does not take still fall back to the health check when h is a *chi.Mux.
// Mount must be called before the handler serves its first request; like
// chi, it panics on a conflicting pattern.
func (s *Server) Mount(pattern string, h http.Handler) {
	if method, path, found := strings.Cut(pattern, " "); found {
		s.router.Method(method, strings.TrimSpace(path), h)
		return
	}
	s.router.Mount(pattern, h)
}

// Run listens on Config.Listen and serves until ctx ends, then shuts down
// gracefully within a few seconds. It returns nil after a shutdown caused
// by ctx, or the error that stopped the listener. Request contexts derive
// from ctx, so long-lived handlers end with it.
func (s *Server) Run(ctx context.Context) error {
	tlsCfg, err := s.serverTLSConfig()
	if err != nil {
		return fmt.Errorf("restapi: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("restapi: listen on %s: %w", s.cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:                      s.Handler(),
		ReadHeaderTimeout:            readHeaderTimeout,
		IdleTimeout:                  idleTimeout,
		MaxHeaderBytes:               maxHeaderBytes,
		DisableGeneralOptionsHandler: true, // OPTIONS * is a health check too
		ErrorLog:                     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:                  func(net.Listener) context.Context { return ctx },
	}
	s.log.Info("REST API listening", "addr", ln.Addr().String(), "api_url", s.cfg.APIURL(),
		"tls", tlsCfg != nil, "verify_client", s.cfg.verifyClient(), "authentication", s.creds.enabled,
		"allowlist", len(s.allow.prefixes), "allowlist_include_members", s.allow.members)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("restapi: serve on %s: %w", s.cfg.Listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("REST API graceful shutdown timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("restapi: serve on %s: %w", s.cfg.Listen, err)
	}
	s.log.Info("REST API stopped")
	return nil
}
