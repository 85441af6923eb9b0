package restapi

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
)

// fakeCommands answers with the given functions; a nil function fails the
// test when called.
type fakeCommands struct {
	t       *testing.T
	patch   func(ctx context.Context, p json.RawMessage) (json.RawMessage, error)
	put     func(ctx context.Context, c json.RawMessage) (json.RawMessage, error)
	restart func(ctx context.Context, req RestartRequest) (int, string)
	cancel  func(ctx context.Context) (int, string)
	reload  func(ctx context.Context) (int, string)
	reinit  func(ctx context.Context, force bool) (int, string)

	calls       syncList[string]
	ifRevisions syncList[int64] // the ifRevision of every config call
}

func (f *fakeCommands) called(name string, fn any) bool {
	f.t.Helper()
	f.calls.add(name)
	if fn == nil {
		f.t.Errorf("unexpected call to %s", name)
		return false
	}
	return true
}

// IfRevisions lists the ifRevision of every config call, in order.
func (f *fakeCommands) IfRevisions() []int64 { return f.ifRevisions.all() }

// Calls lists the methods called, in order.
func (f *fakeCommands) Calls() []string { return f.calls.all() }

// syncList is a list for concurrent appends and reads.
type syncList[T any] struct {
	mu    sync.Mutex
	items []T
}

func (l *syncList[T]) add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, v)
}

// all returns a copy of the list.
func (l *syncList[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.items)
}

func (f *fakeCommands) PatchConfig(ctx context.Context, p json.RawMessage, ifRevision int64) (json.RawMessage, error) {
	f.ifRevisions.add(ifRevision)
	if !f.called("PatchConfig", f.patch) {
		return nil, nil
	}
	return f.patch(ctx, p)
}

func (f *fakeCommands) PutConfig(ctx context.Context, c json.RawMessage, ifRevision int64) (json.RawMessage, error) {
	f.ifRevisions.add(ifRevision)
	if !f.called("PutConfig", f.put) {
		return nil, nil
	}
	return f.put(ctx, c)
}

func (f *fakeCommands) Restart(ctx context.Context, req RestartRequest) (int, string) {
	if !f.called("Restart", f.restart) {
		return 500, ""
	}
	return f.restart(ctx, req)
}

func (f *fakeCommands) CancelRestart(ctx context.Context) (int, string) {
	if !f.called("CancelRestart", f.cancel) {
		return 500, ""
	}
	return f.cancel(ctx)
}

func (f *fakeCommands) Reload(ctx context.Context) (int, string) {
	if !f.called("Reload", f.reload) {
		return 500, ""
	}
	return f.reload(ctx)
}

func (f *fakeCommands) Reinitialize(ctx context.Context, force bool) (int, string) {
	if !f.called("Reinitialize", f.reinit) {
		return 500, ""
	}
	return f.reinit(ctx, force)
}

// newCommandServer is a test server with cmds (may be nil) and cfg.
func newCommandServer(t *testing.T, cmds Commands, cfg Config) testServer {
	t.Helper()
	return newServer(t, Options{Config: cfg, Commands: cmds})
}
