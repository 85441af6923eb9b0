package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// switchoverError decodes a switchover JSON error body strictly.
func switchoverError(t *testing.T, r response) SwitchoverErrorResponse {
	t.Helper()
	return strictError(t, r, "switchover error", func(e SwitchoverErrorResponse) string { return e.Error })
}

func TestSwitchoverRoutesWithoutSwitchovers(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Publish(primarySnap())
	for _, tc := range []struct{ method, target, body string }{
		{"PATCH", "/switchover", `{"to":"pg2"}`},
		{"POST", "/switchover", `{"leader":"pg1"}`},
		{"POST", "/failover", `{"candidate":"pg2"}`},
		{"DELETE", "/switchover", ""},
		{"GET", "/switchovers", ""},
		{"GET", "/switchover/20261122-030512-4f2a", ""},
		{"DELETE", "/switchover/20261122-030512-4f2a", ""},
		{"GET", "/switchover/20261122-030512-4f2a/events", ""},
	} {
		r := do(t, ts.Handler(), tc.method, tc.target, strings.NewReader(tc.body))
		if r.code != 503 || errorOf(t, r).Error != "switchover not available" {
			t.Errorf("%s %s = %d %q, want 503 switchover not available", tc.method, tc.target, r.code, r.body)
		}
	}
	// GET /switchover itself stays a health check, as in Patroni.
	if r := do(t, ts.Handler(), "GET", "/switchover", nil); r.code != 503 || !strings.Contains(r.body, `"role":"master"`) {
		t.Errorf("GET /switchover = %d %q, want the health check", r.code, r.body)
	}
}

func TestPatchSwitchoverStarts(t *testing.T) {
	var got SwitchoverRequest
	ts := newSwitchoverServer(t, &fakeSwitchovers{start: func(_ context.Context, req SwitchoverRequest) (SwitchoverStarted, error) {
		got = req
		return SwitchoverStarted{ID: "20261122-030512-4f2a"}, nil
	}})
	req := httptest.NewRequestWithContext(t.Context(), "PATCH", "/switchover",
		strings.NewReader(`{"to": "pg2", "reason": "kernel patching", "timeout": "45s"}`))
	req.RemoteAddr = "10.0.0.9:53422"
	req.SetBasicAuth("alice", "secret")
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)

	if rec.Code != 202 || rec.Header().Get("Location") != "/switchover/20261122-030512-4f2a" {
		t.Fatalf("PATCH /switchover = %d, Location %q: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "20261122-030512-4f2a", "events": "/switchover/20261122-030512-4f2a/events"}
	if d := cmp.Diff(want, body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	wantReq := SwitchoverRequest{To: "pg2", Reason: "kernel patching", Timeout: Duration(45 * time.Second),
		RequestedBy: "alice@10.0.0.9:53422"}
	if d := cmp.Diff(wantReq, got); d != "" {
		t.Errorf("request (-want +got):\n%s", d)
	}

	// Without basic auth, the address alone; {} is a switchover to the best candidate.
	r := do(t, ts.Handler(), "PATCH", "/switchover", strings.NewReader(`{}`))
	if r.code != 202 || got.RequestedBy != "192.0.2.1:1234" || got.To != "" {
		t.Errorf("PATCH {} = %d, request %+v", r.code, got)
	}
}

func TestPatchSwitchoverDryRun(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{start: func(_ context.Context, req SwitchoverRequest) (SwitchoverStarted, error) {
		if !req.DryRun {
			t.Error("DryRun not passed on")
		}
		return SwitchoverStarted{From: "pg1", To: "pg2", Candidates: []CandidateVerdict{
			{Member: "pg2", OK: true},
			{Member: "pg3", Reasons: []string{"lag 3.2 MB > 1 MB", "tag nofailover"}},
		}}, nil
	}})
	r := do(t, ts.Handler(), "PATCH", "/switchover", strings.NewReader(`{"dry_run": true}`))
	if r.code != 200 || r.header.Get("Location") != "" {
		t.Fatalf("dry run = %d (Location %q): %s", r.code, r.header.Get("Location"), r.body)
	}
	want := `{"dry_run":true,"from":"pg1","to":"pg2","candidates":[{"member":"pg2","ok":true},` +
		`{"member":"pg3","ok":false,"reasons":["lag 3.2 MB \u003e 1 MB","tag nofailover"]}]}` + "\n"
	if r.body != want {
		t.Errorf("dry run body\n got %s\nwant %s", r.body, want)
	}
}

func TestPatchSwitchoverRefused(t *testing.T) {
	rejected := []CandidateVerdict{{Member: "pg3", Reasons: []string{"lag 3.2 MB > 1 MB", "tag nofailover"}}}
	cases := []struct {
		name string
		err  error
		code int
		want SwitchoverErrorResponse
	}{
		{"409 names the running switchover", &SwitchoverError{Status: 409, Message: "a switchover is running", ID: "20261122-030512-4f2a"},
			409, SwitchoverErrorResponse{Error: "a switchover is running", ID: "20261122-030512-4f2a"}},
		{"412 lists the reasons", fmt.Errorf("agent: %w", &SwitchoverError{Status: 412, Message: "no candidate qualifies", Rejected: rejected}),
			412, SwitchoverErrorResponse{Error: "no candidate qualifies", Rejected: rejected,
				Reasons: []string{"pg3: lag 3.2 MB > 1 MB", "pg3: tag nofailover"}}},
		{"400 from the agent", &SwitchoverError{Status: 400, Message: "pg9 is not a member"},
			400, SwitchoverErrorResponse{Error: "pg9 is not a member"}},
		{"503 not the leader", &SwitchoverError{Status: 503, Message: "no leader"},
			503, SwitchoverErrorResponse{Error: "no leader"}},
		{"invalid status is a 502", &SwitchoverError{Status: 0, Message: "?"},
			502, SwitchoverErrorResponse{Error: "?"}},
		{"an empty message gets the status text", &SwitchoverError{Status: 409},
			409, SwitchoverErrorResponse{Error: "Conflict"}},
		{"other errors are 503 without the cause", errors.New("etcd: secret detail"),
			503, SwitchoverErrorResponse{Error: "start switchover failed"}},
		{"timeouts say so", fmt.Errorf("pre-flight: %w", context.DeadlineExceeded),
			503, SwitchoverErrorResponse{Error: "start switchover: timed out"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newSwitchoverServer(t, &fakeSwitchovers{start: func(context.Context, SwitchoverRequest) (SwitchoverStarted, error) {
				return SwitchoverStarted{}, tc.err
			}})
			r := do(t, ts.Handler(), "PATCH", "/switchover", strings.NewReader(`{"to":"pg3"}`))
			if r.code != tc.code {
				t.Fatalf("code = %d, want %d: %s", r.code, tc.code, r.body)
			}
			if d := cmp.Diff(tc.want, switchoverError(t, r)); d != "" {
				t.Errorf("body (-want +got):\n%s", d)
			}
		})
	}
}

func TestPatchSwitchoverBodies(t *testing.T) {
	cases := []struct {
		name, body string
		cl         int64 // as bodyRequest
		code       int
		errHas     string
	}{
		{"no Content-Length", "", -2, 411, "Content-Length"},
		{"chunked", `{"to":"pg2"}`, -1, 411, "Content-Length"},
		{"malformed", `{"to":`, 6, 400, "not valid JSON"},
		{"array", `["pg2"]`, 7, 400, "not a JSON object"},
		{"trailing data", `{"to":"pg2"} {}`, 15, 400, "not valid JSON"},
		{"unknown field named", `{"too":"pg2"}`, 13, 400, `unknown field "too"`},
		{"wrong type", `{"to":2}`, 8, 400, "does not match"},
		{"dry_run not a bool", `{"dry_run":"yes"}`, 17, 400, "does not match"},
		{"timeout not a duration", `{"timeout":"soon"}`, 18, 400, "does not match"},
		{"timeout a number", `{"timeout":30}`, 14, 400, "does not match"},
		{"negative timeout", `{"timeout":"-1s"}`, 17, 400, "negative"},
		{"to with a slash", `{"to":"pg/2"}`, 13, 400, "to: "},
		{"to with spaces", `{"to":" pg2"}`, 13, 400, "to: "},
		{"to with a newline", `{"to":"pg\n2"}`, 14, 400, "to: "},
		{"to too long", `{"to":"` + strings.Repeat("p", 300) + `"}`, 309, 400, "to: "},
		{"reason with a newline", `{"reason":"a\nb"}`, 17, 400, "reason: "},
		{"reason too long", `{"reason":"` + strings.Repeat("r", 2000) + `"}`, 2013, 400, "reason: "},
		{"too large", strings.Repeat(" ", 2<<20), 2 << 20, 413, "larger"},
	}
	ts := newSwitchoverServer(t, &fakeSwitchovers{})
	for _, tc := range cases {
		req := bodyRequest(t, tc.body, tc.cl)
		req.URL.Path = "/switchover"
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		r := response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
		if r.code != tc.code {
			t.Errorf("%s: code = %d, want %d: %s", tc.name, r.code, tc.code, r.body)
			continue
		}
		if e := errorOf(t, r); !strings.Contains(e.Error, tc.errHas) {
			t.Errorf("%s: error %q does not mention %q", tc.name, e.Error, tc.errHas)
		}
	}
}

func TestGetSwitchover(t *testing.T) {
	record := testRecord("running", 2, "")
	ts := newSwitchoverServer(t, &fakeSwitchovers{get: func(ctx context.Context, id string) (json.RawMessage, error) {
		switch id {
		case "20261122-030512-4f2a":
			return record, nil
		case "broken":
			return json.RawMessage(`{"id":`), nil
		case "slow":
			<-ctx.Done()
			return nil, fmt.Errorf("read: %w", ctx.Err())
		}
		return nil, fmt.Errorf("read %s: %w", id, ErrNotFound)
	}})
	r := do(t, ts.Handler(), "GET", "/switchover/20261122-030512-4f2a", nil)
	if r.code != 200 || r.body != string(record)+"\n" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("GET record = %d %q", r.code, r.body)
	}
	for _, tc := range []struct {
		target string
		code   int
		msg    string
	}{
		{"/switchover/nope", 404, "switchover not found"},
		{"/switchover/broken", 502, "switchover record is not valid JSON"},
		{"/switchover/slow", 503, "read switchover: timed out"},
		{"/switchover/a%20b", 400, "invalid switchover id"},
		{"/switchover/" + strings.Repeat("x", 200), 400, "invalid switchover id"},
	} {
		r := do(t, ts.Handler(), "GET", tc.target, nil)
		if r.code != tc.code || errorOf(t, r).Error != tc.msg {
			t.Errorf("GET %s = %d %q, want %d %q", tc.target, r.code, r.body, tc.code, tc.msg)
		}
	}
}

func TestListSwitchovers(t *testing.T) {
	var list json.RawMessage
	var err error
	ts := newSwitchoverServer(t, &fakeSwitchovers{list: func(context.Context) (json.RawMessage, error) { return list, err }})
	list = json.RawMessage(`[{"id":"b"},{"id":"a"}]`)
	if r := do(t, ts.Handler(), "GET", "/switchovers", nil); r.code != 200 || r.body != string(list)+"\n" {
		t.Errorf("GET /switchovers = %d %q", r.code, r.body)
	}
	list = nil
	if r := do(t, ts.Handler(), "GET", "/switchovers", nil); r.code != 200 || r.body != "[]\n" {
		t.Errorf("GET /switchovers (none) = %d %q", r.code, r.body)
	}
	err = errors.New("etcd down")
	if r := do(t, ts.Handler(), "GET", "/switchovers", nil); r.code != 503 || strings.Contains(r.body, "etcd") {
		t.Errorf("GET /switchovers (error) = %d %q", r.code, r.body)
	}
}

func TestAbortSwitchover(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{abort: func(_ context.Context, id string) error {
		switch id {
		case "running":
			return nil
		case "promoted":
			return &SwitchoverError{Status: 409, Message: "past PROMOTE_STANDBY: it only goes forward", ID: id}
		}
		return ErrNotFound
	}})
	r := do(t, ts.Handler(), "DELETE", "/switchover/running", nil)
	if r.code != 202 || r.body != `{"id":"running","abort_requested":true}`+"\n" {
		t.Errorf("abort = %d %q", r.code, r.body)
	}
	r = do(t, ts.Handler(), "DELETE", "/switchover/promoted", nil)
	if e := switchoverError(t, r); r.code != 409 || e.ID != "promoted" || !strings.Contains(e.Error, "PROMOTE_STANDBY") {
		t.Errorf("abort past promote = %d %q", r.code, r.body)
	}
	r = do(t, ts.Handler(), "DELETE", "/switchover/gone", nil)
	if r.code != 404 || errorOf(t, r).Error != "switchover not found" {
		t.Errorf("abort unknown = %d %q", r.code, r.body)
	}
}

// Start and abort are bounded: an agent that does not answer gets a 503.
func TestSwitchoverCommandsAreBounded(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{
		start: func(ctx context.Context, _ SwitchoverRequest) (SwitchoverStarted, error) {
			<-ctx.Done()
			return SwitchoverStarted{}, ctx.Err()
		},
		abort: func(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() },
	})
	ts.commandTimeout = 50 * time.Millisecond
	for _, tc := range []struct{ method, target, body string }{
		{"PATCH", "/switchover", `{"to":"pg2"}`},
		{"DELETE", "/switchover/x", ""},
	} {
		r := do(t, ts.Handler(), tc.method, tc.target, strings.NewReader(tc.body))
		if r.code != 503 || !strings.Contains(errorOf(t, r).Error, "timed out") {
			t.Errorf("%s %s = %d %q, want 503 timed out", tc.method, tc.target, r.code, r.body)
		}
	}
}

// The switchover routes and their Allow header.
func TestSwitchoverMethodNotAllowed(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{})
	for _, tc := range []struct{ method, target, allow string }{
		{"PUT", "/switchover", "GET, HEAD, OPTIONS, POST, PATCH, DELETE"},
		{"POST", "/switchover/x", "GET, HEAD, OPTIONS, DELETE"},
		{"POST", "/switchovers", "GET, HEAD, OPTIONS"},
		{"PATCH", "/failover", "GET, HEAD, OPTIONS, POST"},
	} {
		r := do(t, ts.Handler(), tc.method, tc.target, nil)
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d Allow %q, want 405 %q", tc.method, tc.target, r.code, r.header.Get("Allow"), tc.allow)
		}
	}
}

// Every method × switchover path × malformed body is answered, never with
// an undocumented 5xx, with a Switchovers that accepts everything.
func TestSwitchoverSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("sweep skipped in -short")
	}
	ts := newSwitchoverServer(t, &fakeSwitchovers{
		start: func(context.Context, SwitchoverRequest) (SwitchoverStarted, error) {
			return SwitchoverStarted{ID: "20261122-030512-4f2a"}, nil
		},
		get:     func(context.Context, string) (json.RawMessage, error) { return testRecord("running", 1, ""), nil },
		list:    func(context.Context) (json.RawMessage, error) { return json.RawMessage(`[]`), nil },
		abort:   func(context.Context, string) error { return nil },
		watch:   versions(testRecord("completed", 2, "")),
		patroni: func(context.Context, PatroniSwitchoverRequest) (int, string) { return 200, "ok" },
		cancel:  func(context.Context) (int, string) { return 404, "no switchover is scheduled" },
	})
	ts.bodyTimeout = 300 * time.Millisecond
	addr := strings.TrimPrefix(startRun(t, ts.Server), "http://")
	sweep(t, addr, sweepJobs([]string{"/switchover", "/failover", "/switchovers", "/switchover/x", "/switchover/x/events",
		"/switchover/x/events?last_event_id=zz", "/switchover/%2F", "/switchover/x/y", "/switchover/"}))
}
