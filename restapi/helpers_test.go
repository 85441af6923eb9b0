package restapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/syncbuf"
)

// t0 is the fake clock's start; fresh views and leases run past it.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// clock is an injectable, settable Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func u64(v uint64) *uint64 { return &v }

// primarySnap is a running primary holding the leader lock with a fresh view.
func primarySnap() *Snapshot {
	return &Snapshot{
		Status: Status{
			State:         "running",
			Role:          "master",
			ServerVersion: 150002,
			XLog:          &XLog{Location: u64(50 << 20)},
			Timeline:      3,
			DCSLastSeen:   t0.Unix(),
			Patroni:       Agent{Version: "3.0.2", Scope: "demo"},
		},
		LeaderUntil:    t0.Add(20 * time.Second),
		ViewFreshUntil: t0.Add(30 * time.Second),
		Optime:         50 << 20,
		LivenessUntil:  t0.Add(30 * time.Second),
	}
}

// replicaSnap is a streaming replica, 5 MiB behind optime, with a fresh view.
func replicaSnap() *Snapshot {
	s := primarySnap()
	s.Status.Role = "replica"
	s.Status.XLog = &XLog{ReceivedLocation: u64(45 << 20), ReplayedLocation: u64(45 << 20)}
	s.LeaderUntil = time.Time{}
	return s
}

// fakeBackend answers with the given functions; nil functions return zero values.
type fakeBackend struct {
	cluster   func(ctx context.Context) (ClusterDoc, error)
	history   func(ctx context.Context) (json.RawMessage, error)
	config    func(ctx context.Context) (json.RawMessage, error)
	configRev int64 // the config key's mod revision, returned with config
	decisions func(ctx context.Context) (json.RawMessage, error)
}

func (b *fakeBackend) Decisions(ctx context.Context) (json.RawMessage, error) {
	if b.decisions == nil {
		return nil, nil
	}
	return b.decisions(ctx)
}

func (b *fakeBackend) Cluster(ctx context.Context) (ClusterDoc, error) {
	if b.cluster == nil {
		return ClusterDoc{}, nil
	}
	return b.cluster(ctx)
}

func (b *fakeBackend) History(ctx context.Context) (json.RawMessage, error) {
	if b.history == nil {
		return nil, nil
	}
	return b.history(ctx)
}

func (b *fakeBackend) Config(ctx context.Context) (json.RawMessage, int64, error) {
	if b.config == nil {
		return nil, 0, ErrNotFound
	}
	raw, err := b.config(ctx)
	return raw, b.configRev, err
}

type testServer struct {
	*Server
	clock *clock
	logs  *syncbuf.Buffer // the server's log, for assertions
}

// newTestServer is a test server with backend (may be nil).
func newTestServer(t *testing.T, backend Backend) testServer {
	t.Helper()
	return newServer(t, Options{Backend: backend})
}

// newServer is New(opts) on a fake clock at t0, logging at debug level
// into the returned logs, with a 100 ms backend timeout.
func newServer(t *testing.T, opts Options) testServer {
	t.Helper()
	c := &clock{now: t0}
	logs := &syncbuf.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Now = c.Now
	opts.BackendTimeout = 100 * time.Millisecond
	return testServer{Server: New(opts), clock: c, logs: logs}
}

type response struct {
	code   int
	header http.Header
	body   string
}

// do runs one request through the handler.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader) response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, body)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// errorOf decodes a JSON error body, failing the test if it is not one.
func errorOf(t *testing.T, r response) errorBody {
	t.Helper()
	return strictError(t, r, "JSON error", func(e errorBody) string { return e.Error })
}

// strictError decodes r's body as a T, failing the test unless it is JSON
// (by its Content-Type too) with T's fields only and a non-empty message
// (text); what names T in the failure.
func strictError[T any](t *testing.T, r response, what string, text func(T) string) T {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %q)", ct, r.body)
	}
	var v T
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || text(v) == "" {
		t.Fatalf("body %q is not a %s: %v", r.body, what, err)
	}
	return v
}
