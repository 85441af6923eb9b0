package dcs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/etcdembed"
)

// testLogger writes to the test's output (shown for failing tests or -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// logSpy counts log messages (at INFO and above) and passes them on.
type logSpy struct {
	slog.Handler
	mu     *sync.Mutex
	counts map[string]int
}

func newLogSpy(t testing.TB) (*slog.Logger, *logSpy) {
	s := &logSpy{Handler: testLogger(t).Handler(), mu: new(sync.Mutex), counts: map[string]int{}}
	return slog.New(s), s
}

func (s *logSpy) Handle(ctx context.Context, r slog.Record) error {
	s.mu.Lock()
	s.counts[r.Message]++
	s.mu.Unlock()
	return s.Handler.Handle(ctx, r)
}

func (s *logSpy) WithAttrs(as []slog.Attr) slog.Handler {
	return &logSpy{Handler: s.Handler.WithAttrs(as), mu: s.mu, counts: s.counts}
}

func (s *logSpy) WithGroup(name string) slog.Handler {
	return &logSpy{Handler: s.Handler.WithGroup(name), mu: s.mu, counts: s.counts}
}

func (s *logSpy) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[msg]
}

// startEtcd starts a single-member embedded etcd in t.TempDir(), closed at
// the end of the test.
func startEtcd(t *testing.T) *etcdembed.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e, err := etcdembed.Start(ctx, etcdembed.Config{Name: "test", Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// connect returns a client on e for a scope unique to the test.
func connect(t *testing.T, e *etcdembed.Server) *Client {
	t.Helper()
	return connectKeys(t, e, NewKeys("/service/", strings.ReplaceAll(t.Name(), "/", "_")))
}

func connectKeys(t *testing.T, e *etcdembed.Server, keys Keys) *Client {
	t.Helper()
	c, err := Connect(t.Context(), Config{Endpoints: e.Endpoints()}, keys, testLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctxT returns a context bounded like an agent's retry_timeout.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 10ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustGrant(t *testing.T, c *Client, ttl time.Duration) int64 {
	t.Helper()
	id, err := c.GrantLease(ctxT(t), ttl)
	if err != nil {
		t.Fatalf("GrantLease: %v", err)
	}
	return id
}

func hex(id int64) string { return fmt.Sprintf("%x", id) }
