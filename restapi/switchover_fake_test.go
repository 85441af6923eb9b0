package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeSwitchovers answers with the given functions; a nil function fails
// the test when called.
type fakeSwitchovers struct {
	t       *testing.T
	start   func(ctx context.Context, req SwitchoverRequest) (SwitchoverStarted, error)
	get     func(ctx context.Context, id string) (json.RawMessage, error)
	list    func(ctx context.Context) (json.RawMessage, error)
	abort   func(ctx context.Context, id string) error
	watch   func(ctx context.Context, id string) (<-chan json.RawMessage, error)
	patroni func(ctx context.Context, req PatroniSwitchoverRequest) (int, string)
	cancel  func(ctx context.Context) (int, string)
}

func (f *fakeSwitchovers) unexpected(name string) {
	f.t.Helper()
	f.t.Errorf("unexpected call to %s", name)
}

func (f *fakeSwitchovers) StartSwitchover(ctx context.Context, req SwitchoverRequest) (SwitchoverStarted, error) {
	if f.start == nil {
		f.unexpected("StartSwitchover")
		return SwitchoverStarted{}, nil
	}
	return f.start(ctx, req)
}

func (f *fakeSwitchovers) Switchover(ctx context.Context, id string) (json.RawMessage, error) {
	if f.get == nil {
		f.unexpected("Switchover")
		return nil, ErrNotFound
	}
	return f.get(ctx, id)
}

func (f *fakeSwitchovers) ListSwitchovers(ctx context.Context) (json.RawMessage, error) {
	if f.list == nil {
		f.unexpected("ListSwitchovers")
		return nil, nil
	}
	return f.list(ctx)
}

func (f *fakeSwitchovers) AbortSwitchover(ctx context.Context, id string) error {
	if f.abort == nil {
		f.unexpected("AbortSwitchover")
		return nil
	}
	return f.abort(ctx, id)
}

func (f *fakeSwitchovers) WatchSwitchover(ctx context.Context, id string) (<-chan json.RawMessage, error) {
	if f.watch == nil {
		f.unexpected("WatchSwitchover")
		return nil, ErrNotFound
	}
	return f.watch(ctx, id)
}

func (f *fakeSwitchovers) PatroniSwitchover(ctx context.Context, req PatroniSwitchoverRequest) (int, string) {
	if f.patroni == nil {
		f.unexpected("PatroniSwitchover")
		return 500, ""
	}
	return f.patroni(ctx, req)
}

func (f *fakeSwitchovers) CancelScheduled(ctx context.Context) (int, string) {
	if f.cancel == nil {
		f.unexpected("CancelScheduled")
		return 500, ""
	}
	return f.cancel(ctx)
}

// newSwitchoverServer is a test server with f as its Switchovers.
func newSwitchoverServer(t *testing.T, f *fakeSwitchovers) testServer {
	t.Helper()
	f.t = t
	ts := newTestServer(t, nil)
	ts.switchovers = f
	ts.Publish(primarySnap())
	return ts
}

var testStages = []string{"PRE_FLIGHT_CHECKS", "QUIESCE_WRITES", "WAIT_FOR_REPLICATION_CATCHUP",
	"PROMOTE_STANDBY", "REPOINT_CLIENT_TRAFFIC", "POST_SWITCHOVER_VALIDATION", "CLEANUP"}

// testEvent is event seq of a record: stages alternate started/completed.
func testEvent(seq int) string {
	stage := testStages[((seq-1)/2)%len(testStages)]
	if seq%2 == 1 {
		return fmt.Sprintf(`{"seq": %d, "stage": %q, "kind": "started", "at": "2026-11-22T03:05:12Z"}`, seq, stage)
	}
	return fmt.Sprintf(`{"seq": %d, "stage": %q, "kind": "completed", "duration_ms": %d,
		"message": "ok"}`, seq, stage, seq)
}

// testRecord is a record with events 1..n, pretty-printed as etcd may hold it.
func testRecord(state string, n int, failure string) json.RawMessage {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = testEvent(i + 1)
	}
	rec := fmt.Sprintf("{\n  \"id\": \"20261122-030512-4f2a\",\n  \"state\": %q,\n  \"events\": [\n    %s\n  ]", state, strings.Join(evs, ",\n    "))
	if failure != "" {
		rec += ",\n  \"failure\": " + failure
	}
	return json.RawMessage(rec + "\n}")
}

// feed is a switchover record that changes over time; every watcher gets
// the current version and then each later one, like the agent's watch.
type feed struct {
	mu       sync.Mutex
	versions []json.RawMessage
	changed  chan struct{} // closed and replaced on every Set
	watchers sync.WaitGroup
	ctxs     chan context.Context // each watch's ctx, for assertions
}

func newFeed(first json.RawMessage) *feed {
	return &feed{versions: []json.RawMessage{first}, changed: make(chan struct{}), ctxs: make(chan context.Context, 16)}
}

func (f *feed) Set(v json.RawMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions = append(f.versions, v)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *feed) Watch(ctx context.Context, _ string) (<-chan json.RawMessage, error) {
	f.ctxs <- ctx
	ch := make(chan json.RawMessage)
	f.watchers.Add(1)
	go func() {
		defer f.watchers.Done()
		defer close(ch)
		next := -1
		for {
			f.mu.Lock()
			latest, changed := len(f.versions)-1, f.changed
			v := f.versions[latest]
			f.mu.Unlock()
			if latest > next {
				select {
				case ch <- v:
				case <-ctx.Done():
					return
				}
				next = latest
				var st struct{ State string }
				if json.Unmarshal(v, &st) == nil && st.State != "running" {
					return
				}
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}
