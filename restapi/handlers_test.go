package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPatroniStatus(t *testing.T) {
	ts := newTestServer(t, nil)
	snap := replicaSnap()
	snap.Status.Tags = map[string]any{"dc": "East"}
	snap.Status.ClusterUnlocked = true // ignored: recomputed per request
	ts.Publish(snap)

	r := do(t, ts.Handler(), http.MethodGet, "/patroni", nil)
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /patroni = %d %q", r.code, r.header.Get("Content-Type"))
	}
	for _, absent := range []string{"cluster_unlocked", "pending_restart", "sync_standby", "pause",
		"watchdog_failed", "failsafe_mode_is_active", "scheduled_restart", "replication",
		"database_system_identifier", "regent", "location", "false"} {
		if strings.Contains(r.body, `"`+absent+`"`) || strings.Contains(r.body, ":"+absent) {
			t.Errorf("GET /patroni body mentions %q: %s", absent, r.body)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"state": "running", "role": "replica", "server_version": float64(150002), "timeline": float64(3),
		"xlog":          map[string]any{"received_location": float64(45 << 20), "replayed_location": float64(45 << 20)},
		"dcs_last_seen": float64(t0.Unix()), "tags": map[string]any{"dc": "East"},
		"patroni": map[string]any{"version": "3.0.2", "scope": "demo"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /patroni (-want +got):\n%s", d)
	}
	if r2 := do(t, ts.Handler(), http.MethodGet, "/patroni/extra?x=1", nil); r2.code != 200 || r2.body != r.body {
		t.Errorf("GET /patroni/extra = %d %q; Patroni routes by the first segment", r2.code, r2.body)
	}
}

func TestPatroniClusterUnlocked(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Snapshot)
		now  time.Time
		want bool
	}{
		{"fresh view with a leader", func(*Snapshot) {}, t0, false},
		{"no leader key", func(s *Snapshot) { s.Unlocked = true }, t0, true},
		{"view goes stale as time passes", func(*Snapshot) {}, t0.Add(30 * time.Second), true},
		{"just before stale", func(*Snapshot) {}, t0.Add(30*time.Second - time.Nanosecond), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			snap := primarySnap()
			tc.mod(snap)
			ts.Publish(snap)
			ts.clock.Set(tc.now)
			for _, target := range []string{"/patroni", "/health"} {
				r := do(t, ts.Handler(), http.MethodGet, target, nil)
				if got := strings.Contains(r.body, `"cluster_unlocked":true`); got != tc.want {
					t.Errorf("GET %s cluster_unlocked = %v, want %v: %s", target, got, tc.want, r.body)
				}
				if strings.Contains(r.body, `"cluster_unlocked":false`) {
					t.Errorf("GET %s writes cluster_unlocked false", target)
				}
			}
		})
	}
}

// TestLeaseRemainingPerRequest: regent.lease_remaining_ms counts down with
// the clock between snapshots (the loop publishes once per tick), in the
// body of GET /patroni and of the health checks alike, with a matching
// Content-Length, and stays at 0 past the deadline.
func TestLeaseRemainingPerRequest(t *testing.T) {
	ts := newTestServer(t, nil)
	snap := primarySnap()
	snap.Status.Regent = &RegentStatus{Name: "pg1", LeaseRemainingMs: 7000, LastDecision: "holding the lease"}
	snap.LeaseDeadline = t0.Add(7 * time.Second)
	ts.Publish(snap)
	for _, tc := range []struct {
		now    time.Time
		wantMs int64
	}{
		{t0, 7000},
		{t0.Add(2500 * time.Millisecond), 4500},
		{t0.Add(31 * time.Second), 0}, // view stale too: the unlocked encoding
	} {
		ts.clock.Set(tc.now)
		for _, target := range []string{"/patroni", "/health", "/primary"} {
			r := do(t, ts.Handler(), http.MethodGet, target, nil)
			var doc Status
			if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
				t.Fatalf("GET %s at %s: %v: %s", target, tc.now.Sub(t0), err, r.body)
			}
			if doc.Regent == nil || doc.Regent.LeaseRemainingMs != tc.wantMs || doc.Regent.LastDecision != "holding the lease" {
				t.Errorf("GET %s at t0+%s: regent = %+v, want lease_remaining_ms %d", target, tc.now.Sub(t0), doc.Regent, tc.wantMs)
			}
			if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
				t.Errorf("GET %s: Content-Length %s for a %d-byte body", target, cl, len(r.body))
			}
		}
	}
	// Without a deadline the published value is served as is.
	snap = primarySnap()
	snap.Status.Regent = &RegentStatus{Name: "pg1", LeaseRemainingMs: 1234}
	ts.Publish(snap)
	if r := do(t, ts.Handler(), http.MethodGet, "/patroni", nil); !strings.Contains(r.body, `"lease_remaining_ms":1234`) {
		t.Errorf("without LeaseDeadline: %s", r.body)
	}
}

func TestPatroniEncodingFailure(t *testing.T) {
	ts := newTestServer(t, nil)
	snap := primarySnap()
	snap.Status.Tags = map[string]any{"bad": func() {}}
	ts.Publish(snap)
	r := do(t, ts.Handler(), http.MethodGet, "/patroni", nil)
	if r.code != 500 {
		t.Errorf("GET /patroni with an unencodable status = %d, want 500", r.code)
	}
	errorOf(t, r)
	// Health checks still answer from the decision rules.
	if r := do(t, ts.Handler(), http.MethodGet, "/primary", nil); r.code != 200 {
		t.Errorf("GET /primary = %d, want 200", r.code)
	}
	ts.Publish(snap) // the next tick: still failing, not logged again
	if n := strings.Count(ts.logs.String(), "encoding the status document failed"); n != 1 {
		t.Errorf("encoding failure logged %d times, want once: %s", n, ts.logs.String())
	}
}

func TestLivenessReadiness(t *testing.T) {
	cases := []struct {
		name   string
		snap   func() *Snapshot
		now    time.Time
		target string
		want   int
	}{
		{"liveness: loop on time", primarySnap, t0, "/liveness", 200},
		{"liveness: loop overdue", primarySnap, t0.Add(30 * time.Second), "/liveness", 503},
		{"liveness: overdue but paused", with(primarySnap, paused), t0.Add(time.Hour), "/liveness", 200},
		{"readiness: L", with(primarySnap, stopped, viewStale), t0, "/readiness", 200},
		{"readiness: running replica with a view", replicaSnap, t0, "/readiness", 200},
		{"readiness: running replica, view stale", replicaSnap, t0.Add(30 * time.Second), "/readiness", 503},
		{"readiness: starting replica with a view", with(replicaSnap, starting), t0, "/readiness", 503},
		{"readiness: lease expired primary with a view", with(primarySnap, leaseGone), t0, "/readiness", 200},
		{"readiness: lease expired primary, stale view", with(primarySnap, leaseGone, viewStale), t0, "/readiness", 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.Publish(tc.snap())
			ts.clock.Set(tc.now)
			r := do(t, ts.Handler(), http.MethodGet, tc.target, nil)
			if r.code != tc.want || r.body != "" {
				t.Errorf("GET %s = %d %q, want %d with no body", tc.target, r.code, r.body, tc.want)
			}
		})
	}
}

func TestCluster(t *testing.T) {
	doc := ClusterDoc{
		Members: []ClusterMember{
			{Name: "pg1", Role: "leader", State: "running", APIURL: "http://10.0.0.1:8008/patroni", Host: "10.0.0.1", Port: 5432, Timeline: 3},
			{Name: "pg2", Role: "replica", State: "streaming", Lag: 0},
			{Name: "pg3", Role: "replica", State: "", Lag: "unknown"},
		},
		ScheduledSwitchover: &Scheduled{At: "2024-05-01T12:00:00+00:00", From: "pg1"},
	}
	var deadline time.Duration
	b := &fakeBackend{cluster: func(ctx context.Context) (ClusterDoc, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return ClusterDoc{}, errors.New("no deadline")
		}
		deadline = time.Until(dl)
		return doc, nil
	}}
	ts := newTestServer(t, b)
	r := do(t, ts.Handler(), http.MethodGet, "/cluster", nil)
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /cluster = %d %q", r.code, r.body)
	}
	if deadline <= 0 || deadline > 100*time.Millisecond {
		t.Errorf("Backend.Cluster deadline in %v, want within the 100ms BackendTimeout", deadline)
	}
	want := `{"members":[{"name":"pg1","role":"leader","state":"running","api_url":"http://10.0.0.1:8008/patroni","host":"10.0.0.1","port":5432,"timeline":3},` +
		`{"name":"pg2","role":"replica","state":"streaming","lag":0},{"name":"pg3","role":"replica","state":"","lag":"unknown"}],` +
		`"scheduled_switchover":{"at":"2024-05-01T12:00:00+00:00","from":"pg1"}}` + "\n"
	if r.body != want {
		t.Errorf("GET /cluster body\n got %s\nwant %s", r.body, want)
	}
}

func TestBackendEndpoints(t *testing.T) {
	blocking := func(ctx context.Context) (json.RawMessage, error) { <-ctx.Done(); return nil, ctx.Err() }
	failing := func(context.Context) (json.RawMessage, error) { return nil, errors.New("etcd: no leader") }
	raw := func(s string) func(context.Context) (json.RawMessage, error) {
		return func(context.Context) (json.RawMessage, error) { return json.RawMessage(s), nil }
	}
	cases := []struct {
		name     string
		backend  Backend
		target   string
		want     int
		wantBody string // exact body for 200, error text otherwise
	}{
		{"cluster: empty members is []", &fakeBackend{}, "/cluster", 200, `{"members":[]}`},
		{"cluster: pause", &fakeBackend{cluster: func(context.Context) (ClusterDoc, error) { return ClusterDoc{Pause: true}, nil }}, "/cluster", 200, `{"members":[],"pause":true}`},
		{"cluster: backend error", &fakeBackend{cluster: func(context.Context) (ClusterDoc, error) { return ClusterDoc{}, errors.New("boom") }}, "/cluster", 503, "reading cluster from the DCS failed"},
		{"cluster: timeout", &fakeBackend{cluster: func(ctx context.Context) (ClusterDoc, error) { <-ctx.Done(); return ClusterDoc{}, ctx.Err() }}, "/cluster", 503, "reading cluster from the DCS timed out"},
		{"cluster: no backend", nil, "/cluster", 503, "DCS access is not available"},
		{"history: absent is []", &fakeBackend{}, "/history", 200, `[]`},
		{"history: null is []", &fakeBackend{history: raw("null")}, "/history", 200, `[]`},
		{"history: not an array is []", &fakeBackend{history: raw(`{"a":1}`)}, "/history", 200, `[]`},
		{"history: invalid is []", &fakeBackend{history: raw(`[1,`)}, "/history", 200, `[]`},
		{"history: array passes through", &fakeBackend{history: raw(`[[1,25165984,"no recovery target specified","2024-05-01T12:00:00+00:00","pg1"]]`)}, "/history", 200,
			`[[1,25165984,"no recovery target specified","2024-05-01T12:00:00+00:00","pg1"]]`},
		{"history: error", &fakeBackend{history: failing}, "/history", 503, "reading history from the DCS failed"},
		{"history: timeout", &fakeBackend{history: blocking}, "/history", 503, "reading history from the DCS timed out"},
		{"config: present", &fakeBackend{config: raw(`{"ttl":30,"loop_wait":10}`)}, "/config", 200, `{"ttl":30,"loop_wait":10}`},
		{"config: absent is 502", &fakeBackend{}, "/config", 502, "config key not found"},
		{"config: wrapped ErrNotFound is 502", &fakeBackend{config: func(context.Context) (json.RawMessage, error) { return nil, fmt.Errorf("get: %w", ErrNotFound) }}, "/config", 502, "config key not found"},
		{"config: empty value is 502", &fakeBackend{config: raw(``)}, "/config", 502, "config key not found"},
		{"config: invalid JSON is 502", &fakeBackend{config: raw(`{`)}, "/config", 502, "config key is not valid JSON"},
		{"config: error", &fakeBackend{config: failing}, "/config", 503, "reading config from the DCS failed"},
		{"config: timeout", &fakeBackend{config: blocking}, "/config", 503, "reading config from the DCS timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.backend)
			start := time.Now()
			r := do(t, ts.Handler(), http.MethodGet, tc.target, nil)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("GET %s took %v: the backend timeout did not bound it", tc.target, el)
			}
			if r.code != tc.want {
				t.Fatalf("GET %s = %d %q, want %d", tc.target, r.code, r.body, tc.want)
			}
			if tc.want == 200 {
				if r.body != tc.wantBody+"\n" || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("GET %s body %q, want %q", tc.target, r.body, tc.wantBody)
				}
				return
			}
			if e := errorOf(t, r); e.Error != tc.wantBody {
				t.Errorf("GET %s error %q, want %q", tc.target, e.Error, tc.wantBody)
			}
		})
	}
}

func TestBackendErrorIsLoggedNotServed(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{config: func(context.Context) (json.RawMessage, error) {
		return nil, errors.New("secret-endpoint-10.1.2.3 refused")
	}})
	r := do(t, ts.Handler(), http.MethodGet, "/config", nil)
	if strings.Contains(r.body, "10.1.2.3") {
		t.Errorf("error details leak into the response: %s", r.body)
	}
	if !strings.Contains(ts.logs.String(), "10.1.2.3") {
		t.Errorf("error details not logged: %s", ts.logs.String())
	}
}

func TestDecisionsServesTheLogOrAnEmptyArray(t *testing.T) {
	b := &fakeBackend{}
	ts := newTestServer(t, b)
	h := ts.Handler()
	rec := do(t, h, "GET", "/decisions", nil)
	if rec.code != http.StatusOK || strings.TrimSpace(rec.body) != "[]" {
		t.Fatalf("GET /decisions with no log = %d %q, want 200 []", rec.code, rec.body)
	}
	b.decisions = func(context.Context) (json.RawMessage, error) { return json.RawMessage(`[{"kind":"failover"}]`), nil }
	rec = do(t, h, "GET", "/decisions", nil)
	if rec.code != http.StatusOK || !strings.Contains(rec.body, `"failover"`) {
		t.Fatalf("GET /decisions = %d %q", rec.code, rec.body)
	}
	b.decisions = func(context.Context) (json.RawMessage, error) { return nil, errors.New("etcd down") }
	if rec = do(t, h, "GET", "/decisions", nil); rec.code != http.StatusServiceUnavailable {
		t.Fatalf("GET /decisions with etcd down = %d, want 503", rec.code)
	}
}
