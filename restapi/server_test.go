package restapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

func TestMethodNotAllowed(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{})
	ts.Publish(primarySnap())
	ts.Mount("PATCH /config", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	cases := []struct {
		method, target, allow string
	}{
		{http.MethodPost, "/patroni", "GET, HEAD, OPTIONS"},
		{http.MethodDelete, "/cluster", "GET, HEAD, OPTIONS"},
		{http.MethodPost, "/config", "GET, HEAD, OPTIONS, PUT, PATCH"},
		{http.MethodPost, "/primary", "GET, HEAD, OPTIONS"},
		{http.MethodPut, "/switchover", "GET, HEAD, OPTIONS, POST, PATCH, DELETE"},
		{http.MethodPost, "/switchover/x", "GET, HEAD, OPTIONS, DELETE"},
		{http.MethodPatch, "/restart", "GET, HEAD, OPTIONS, POST, DELETE"},
		{http.MethodGet + "X", "/reload", "GET, HEAD, OPTIONS, POST"},
		{"PROPFIND", "/patroni", "GET, HEAD, OPTIONS"},
		{http.MethodTrace, "/", "GET, HEAD, OPTIONS"},
	}
	for _, tc := range cases {
		r := do(t, ts.Handler(), tc.method, tc.target, nil)
		if r.code != 405 {
			t.Errorf("%s %s = %d, want 405", tc.method, tc.target, r.code)
			continue
		}
		errorOf(t, r)
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s Allow = %q, want %q", tc.method, tc.target, got, tc.allow)
		}
	}
}

func TestMount(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{config: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"ttl":30}`), nil }})
	ts.Publish(primarySnap())
	text := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, s) }
	}
	ts.Mount("POST /switchover", text("switchover"))
	ts.Mount("PATCH /config", text("patched"))
	ts.Mount("/metrics", text("metrics"))
	sub := chi.NewRouter()
	sub.Post("/{id}", text("event"))
	ts.Mount("/regent/switchovers", sub)

	cases := []struct {
		method, target string
		want           int
		body           string // "" = not checked; "status" = the status document
	}{
		{http.MethodPost, "/switchover", 200, "switchover"},
		{http.MethodGet, "/switchover", 503, "status"}, // a GET no route takes is a health check
		{http.MethodHead, "/switchover", 503, ""},
		{http.MethodDelete, "/switchover", 503, ""}, // the switchover route, without Switchovers
		{http.MethodPatch, "/config", 200, "patched"},
		{http.MethodGet, "/config", 200, `{"ttl":30}` + "\n"},
		{http.MethodGet, "/metrics", 200, "metrics"},
		{http.MethodPost, "/metrics/x", 200, "metrics"},
		{http.MethodOptions, "/metrics", 503, ""},
		{http.MethodPost, "/regent/switchovers/42", 200, "event"},
		{http.MethodGet, "/regent/switchovers/42", 503, "status"},
	}
	for _, tc := range cases {
		r := do(t, ts.Handler(), tc.method, tc.target, nil)
		if r.code != tc.want {
			t.Errorf("%s %s = %d %q, want %d", tc.method, tc.target, r.code, r.body, tc.want)
			continue
		}
		switch tc.body {
		case "":
		case "status":
			if !strings.Contains(r.body, `"role":"master"`) {
				t.Errorf("%s %s body %q, want the status document", tc.method, tc.target, r.body)
			}
		default:
			if r.body != tc.body {
				t.Errorf("%s %s body %q, want %q", tc.method, tc.target, r.body, tc.body)
			}
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Mount("POST /boom", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Partial", "1")
		panic("kaboom")
	}))
	ts.Mount("POST /late", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		panic("after the header")
	}))
	r := do(t, ts.Handler(), http.MethodPost, "/boom", nil)
	if r.code != 500 || r.header.Get("X-Partial") != "" {
		t.Errorf("panic before writing = %d %v, want a clean 500", r.code, r.header)
	}
	if e := errorOf(t, r); e.Error != "internal error" {
		t.Errorf("panic error = %q", e.Error)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "panic in HTTP handler") || !strings.Contains(logs, "kaboom") || !strings.Contains(logs, "stack=") {
		t.Errorf("panic not logged with its stack: %s", logs)
	}
	if r := do(t, ts.Handler(), http.MethodPost, "/late", nil); r.code != http.StatusAccepted || r.body != "" {
		t.Errorf("panic after writing = %d %q, want the started 202 untouched", r.code, r.body)
	}
	// Over a real connection the client gets the 500, not a dropped connection.
	url := startRun(t, ts.Server)
	resp, err := http.Post(url+"/boom", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST /boom over TCP: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("POST /boom over TCP = %d, want 500", resp.StatusCode)
	}
}

func TestAbortHandlerPanicPropagates(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Mount("GET /abort", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler { //nolint:errorlint // identity, as net/http
			t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", rec)
		}
	}()
	do(t, ts.Handler(), http.MethodGet, "/abort", nil)
	t.Error("ErrAbortHandler was swallowed")
}

// freeAddr returns a 127.0.0.1 address with a port that was free just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startRun runs s on a free port until the test ends and returns its base
// URL once it answers.
func startRun(t *testing.T, s *Server) string {
	t.Helper()
	base, _ := serve(t, s, "http", http.DefaultClient)
	return base
}

// serve runs s on a free port and returns its base URL (scheme://host:port)
// once GET /liveness answers through c, and stop, which cancels Run and
// returns its result. The test's cleanup stops s if the test did not.
func serve(t *testing.T, s *Server, scheme string, c *http.Client) (base string, stop func() error) {
	t.Helper()
	s.cfg.Listen = freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var stopped bool // stop runs on the test's goroutine, then in cleanup
	var runErr error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = fmt.Errorf("Run did not return within %v after cancel", 10*time.Second)
			}
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base = scheme + "://" + s.cfg.Listen
	waitFor(t, func() bool {
		resp, err := c.Get(base + "/liveness")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return base, stop
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a stand-in for an event
	}
}

func TestRun(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Publish(primarySnap())
	url, stop := serve(t, ts.Server, "http", http.DefaultClient)
	resp, err := http.Get(url + "/primary")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /primary = %d, want 200", resp.StatusCode)
	}

	// HAProxy's default check: OPTIONS / over HTTP/1.0.
	conn, err := net.Dial("tcp", ts.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "OPTIONS / HTTP/1.0\r\n\r\n")
	status, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || !strings.HasPrefix(status, "HTTP/1.0 200 ") {
		t.Errorf("OPTIONS / HTTP/1.0 status line = %q, %v", status, err)
	}

	// A second Run on the same address fails with the listen error.
	if err := New(Options{Config: Config{Listen: ts.cfg.Listen}}).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port = %v, want a listen error", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", ts.cfg.Listen, time.Second); err == nil {
		t.Error("the listener is still open after Run returned")
	}
}

func TestRunShutdownCancelsLongRequests(t *testing.T) {
	ts := newTestServer(t, nil)
	started := make(chan struct{})
	ts.Mount("GET /events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		close(started)
		<-r.Context().Done() // a stream that ends only with its request
	}))
	url, stop := serve(t, ts.Server, "http", http.DefaultClient)
	go func() {
		resp, err := http.Get(url + "/events")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run with an open stream = %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("shutdown with an open stream took %v", el)
	}
}

// A client that declares a body it never sends gets its health answer at
// once, with the connection closed, instead of after the body timeout.
func TestUnreadBodyDoesNotDelayAnswer(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.Publish(primarySnap())
	addr := strings.TrimPrefix(startRun(t, ts.Server), "http://")
	for _, method := range []string{"GET", "OPTIONS", "POST"} {
		start := time.Now()
		a, err := exchange(addr, method, "/primary", "Content-Length: 100\r\n", "{}")
		if err != nil {
			t.Fatalf("%s /primary: %v", method, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%s /primary with a short body answered after %v", method, el)
		}
		if !a.close {
			t.Errorf("%s /primary with an unread body kept the connection open", method)
		}
	}
}
