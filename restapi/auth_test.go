package restapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	testUser     = "admin"
	testPassword = "s3cret-Pa55"
)

// allCommands answers every command with success.
func allCommands(t *testing.T) *fakeCommands {
	ok := func(context.Context) (int, string) { return 200, "ok" }
	return &fakeCommands{t: t,
		patch:   func(_ context.Context, p json.RawMessage) (json.RawMessage, error) { return p, nil },
		put:     func(_ context.Context, c json.RawMessage) (json.RawMessage, error) { return c, nil },
		restart: func(context.Context, RestartRequest) (int, string) { return 200, "restarted successfully" },
		cancel:  ok, reload: ok,
		reinit: func(context.Context, bool) (int, string) { return 200, "reinitialize started" },
	}
}

// writeRoutes are every unsafe endpoint, the switchover ones included.
var writeRoutes = []struct{ method, path, body string }{
	{"PATCH", "/config", `{"pause":true}`},
	{"PUT", "/config", `{"ttl":30}`},
	{"POST", "/restart", ""},
	{"DELETE", "/restart", ""},
	{"POST", "/reload", ""},
	{"POST", "/reinitialize", `{"force":true}`},
	{"POST", "/switchover", `{"leader":"pg1"}`},
	{"POST", "/failover", `{"candidate":"pg2"}`},
	{"DELETE", "/switchover", ""},
	{"PATCH", "/switchover", `{"to":"pg2"}`},
	{"DELETE", "/switchover/20261122-030512-4f2a", ""},
	{"POST", "/no-such-endpoint", ""},
}

func TestWritesRequireBasicAuth(t *testing.T) {
	f := allCommands(t)
	ts := newCommandServer(t, f, Config{Authentication: Authentication{Username: testUser, Password: testPassword}})
	ts.Publish(primarySnap())
	h := ts.Handler()
	client := 0
	for _, rt := range writeRoutes {
		send := func(mod func(*http.Request)) *httptest.ResponseRecorder {
			req := httptest.NewRequestWithContext(t.Context(), rt.method, rt.path, strings.NewReader(rt.body))
			// One address per request: the failed-login throttle
			// (TestFailedLoginsThrottled) stays out of this test's way.
			client++
			req.RemoteAddr = fmt.Sprintf("10.1.%d.%d:40000", client/250, client%250+1)
			if mod != nil {
				mod(req)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		for _, bad := range []struct {
			name string
			mod  func(*http.Request)
			text string
		}{
			{"no header", nil, "no auth header received"},
			{"wrong password", func(r *http.Request) { r.SetBasicAuth(testUser, "wrong") }, "not authenticated"},
			{"wrong user", func(r *http.Request) { r.SetBasicAuth("root", testPassword) }, "not authenticated"},
			{"password prefix", func(r *http.Request) { r.SetBasicAuth(testUser, testPassword[:4]) }, "not authenticated"},
			{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testPassword) }, "not authenticated"},
			{"empty header", func(r *http.Request) { r.Header.Set("Authorization", "") }, "not authenticated"},
			{"not base64", func(r *http.Request) { r.Header.Set("Authorization", "Basic %%%") }, "not authenticated"},
		} {
			rec := send(bad.mod)
			if rec.Code != 401 || rec.Body.String() != bad.text {
				t.Errorf("%s %s (%s) = %d %q, want 401 %q", rt.method, rt.path, bad.name, rec.Code, rec.Body, bad.text)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="Patroni"` {
				t.Errorf("%s %s (%s): WWW-Authenticate = %q", rt.method, rt.path, bad.name, got)
			}
		}
		rec := send(func(r *http.Request) { r.SetBasicAuth(testUser, testPassword) })
		if rec.Code == 401 || rec.Code == 403 {
			t.Errorf("%s %s with the right credentials = %d %q", rt.method, rt.path, rec.Code, rec.Body)
		}
	}
	if n := len(f.Calls()); n != 6 {
		t.Errorf("the agent got %d calls (%v), want one per command route, all authenticated", n, f.Calls())
	}
	if logs := ts.logs.String(); strings.Contains(logs, testPassword) ||
		strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))) {
		t.Errorf("the password reached the log:\n%s", logs)
	}
}

func TestReadsStayOpenWithAuth(t *testing.T) {
	ts := newCommandServer(t, allCommands(t), Config{Authentication: Authentication{Username: testUser, Password: testPassword}})
	ts.Publish(primarySnap())
	for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
		for _, path := range []string{"/", "/primary", "/replica", "/patroni", "/liveness", "/config", "/switchover"} {
			r := do(t, ts.Handler(), m, path, nil)
			if r.code == 401 || r.code == 403 {
				t.Errorf("%s %s = %d, want it open", m, path, r.code)
			}
		}
	}
	if r := do(t, ts.Handler(), "GET", "/primary", nil); r.code != 200 {
		t.Errorf("GET /primary on a leader = %d, want 200", r.code)
	}
}

func TestWritesOpenWithoutAuth(t *testing.T) {
	f := allCommands(t)
	ts := newCommandServer(t, f, Config{})
	for _, rt := range writeRoutes[:6] {
		if r := doBody(t, ts.Handler(), rt.method, rt.path, rt.body); r.code != 200 {
			t.Errorf("%s %s without authentication configured = %d %q", rt.method, rt.path, r.code, r.body)
		}
	}
}

func TestCredentialsMatch(t *testing.T) {
	c := newCredentials(Authentication{Username: "u", Password: "p:w"})
	for _, tc := range []struct {
		user, pass string
		want       bool
	}{{"u", "p:w", true}, {"u", "p", false}, {"u", "p:w ", false}, {"", "", false}, {"U", "p:w", false}} {
		if got := c.match(tc.user, tc.pass); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}
	if newCredentials(Authentication{}).enabled {
		t.Error("empty authentication is enabled")
	}
	if s := fmt.Sprintf("%v %+v", Authentication{Username: "u", Password: "p:w"}, Config{Authentication: Authentication{Password: "p:w"}}); strings.Contains(s, "p:w") {
		t.Errorf("printing the config shows the password: %s", s)
	}
}
