package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// noLength is a request body whose length the request does not declare.
type noLength struct{ *strings.Reader }

func TestPatchConfig(t *testing.T) {
	cases := []struct {
		name   string
		body   any // string, or noLength
		answer func(ctx context.Context) (json.RawMessage, error)
		code   int
		want   string // exact body for 200, the error message otherwise
	}{
		{name: "no Content-Length", body: noLength{strings.NewReader(`{"pause":true}`)}, code: 411, want: "Content-Length required"},
		{name: "malformed", body: `{"pause":`, code: 400, want: "body is not valid JSON"},
		{name: "array", body: `[]`, code: 400, want: "body is not a JSON object"},
		{name: "empty object", body: `{}`, code: 400, want: "body is an empty JSON object"},
		{name: "too large", body: `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, code: 413, want: "body larger than 1048576 bytes"},
		{name: "merged", body: `{"pause":true}`, code: 200, want: `{"ttl":30,"pause":true}` + "\n",
			answer: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"ttl":30,"pause":true}`), nil }},
		{name: "invalid value", body: `{"ttl":"x"}`, code: 400, want: "invalid config: ttl: not a number",
			answer: func(context.Context) (json.RawMessage, error) {
				return nil, fmt.Errorf("agent: %w", &HTTPError{Status: 400, Message: "invalid config: ttl: not a number"})
			}},
		{name: "lost the CAS", body: `{"pause":true}`, code: 409, want: "the config key changed concurrently; retry",
			answer: func(context.Context) (json.RawMessage, error) {
				return nil, &HTTPError{Status: 409, Message: "the config key changed concurrently; retry"}
			}},
		{name: "no config key", body: `{"pause":true}`, code: 503, want: "the config key does not exist",
			answer: func(context.Context) (json.RawMessage, error) {
				return nil, &HTTPError{Status: 503, Message: "the config key does not exist"}
			}},
		{name: "HTTPError with a success status", body: `{"pause":true}`, code: 502, want: "nonsense",
			answer: func(context.Context) (json.RawMessage, error) {
				return nil, &HTTPError{Status: 200, Message: "nonsense"}
			}},
		{name: "plain error", body: `{"pause":true}`, code: 503, want: "patch config failed",
			answer: func(context.Context) (json.RawMessage, error) { return nil, errors.New("etcd: connection refused") }},
		{name: "timeout", body: `{"pause":true}`, code: 503, want: "patch config: timed out",
			answer: func(ctx context.Context) (json.RawMessage, error) { <-ctx.Done(); return nil, ctx.Err() }},
		{name: "agent answers invalid JSON", body: `{"pause":true}`, code: 502, want: "config is not valid JSON",
			answer: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"ttl":`), nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			f := &fakeCommands{t: t}
			if tc.answer != nil {
				f.patch = func(ctx context.Context, p json.RawMessage) (json.RawMessage, error) {
					got = append(got, string(p))
					return tc.answer(ctx)
				}
			}
			ts := newCommandServer(t, f, Config{})
			ts.opTimeout = 50 * time.Millisecond
			r := doBody(t, ts.Handler(), http.MethodPatch, "/config", tc.body)
			if r.code != tc.code {
				t.Fatalf("PATCH /config = %d %q, want %d", r.code, r.body, tc.code)
			}
			if tc.code == 200 {
				if r.body != tc.want || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("body = %q (%s), want %q", r.body, r.header.Get("Content-Type"), tc.want)
				}
				if d := cmp.Diff([]string{tc.body.(string)}, got); d != "" {
					t.Errorf("patch passed on (-want +got):\n%s", d)
				}
				return
			}
			if e := errorOf(t, r); e.Error != tc.want {
				t.Errorf("error = %q, want %q", e.Error, tc.want)
			}
		})
	}
}

// doBody is do with a string body (Content-Length set) or a noLength one.
func doBody(t *testing.T, h http.Handler, method, target string, body any) response {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return do(t, h, method, target, nil)
	case string:
		return do(t, h, method, target, strings.NewReader(b))
	case noLength:
		return do(t, h, method, target, b) // not a *strings.Reader: ContentLength stays unknown
	}
	t.Fatalf("bad body type %T", body)
	return response{}
}

func TestPutConfig(t *testing.T) {
	var got string
	f := &fakeCommands{t: t, put: func(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
		got = string(c)
		if strings.Contains(got, "bad") {
			return nil, &HTTPError{Status: 502, Message: "cannot write the config key: etcd down"}
		}
		return c, nil
	}}
	ts := newCommandServer(t, f, Config{})
	r := doBody(t, ts.Handler(), http.MethodPut, "/config", `{"ttl":30,"loop_wait":1}`)
	if r.code != 200 || r.body != `{"ttl":30,"loop_wait":1}`+"\n" || got != `{"ttl":30,"loop_wait":1}` {
		t.Errorf("PUT /config = %d %q (agent got %q)", r.code, r.body, got)
	}
	r = doBody(t, ts.Handler(), http.MethodPut, "/config", `{"bad":1}`)
	if r.code != 502 || errorOf(t, r).Error != "cannot write the config key: etcd down" {
		t.Errorf("PUT /config failing = %d %q", r.code, r.body)
	}
	r = doBody(t, ts.Handler(), http.MethodPut, "/config", `{}`)
	if r.code != 400 {
		t.Errorf("PUT /config {} = %d %q, want 400", r.code, r.body)
	}
}

func TestCommandsUnavailableWithoutCommands(t *testing.T) {
	ts := newCommandServer(t, nil, Config{})
	for _, route := range []struct{ method, path, body string }{
		{"PATCH", "/config", `{"pause":true}`}, {"PUT", "/config", `{"ttl":30}`},
		{"POST", "/restart", ""}, {"DELETE", "/restart", ""}, {"POST", "/reload", ""}, {"POST", "/reinitialize", `{"force":true}`},
	} {
		r := doBody(t, ts.Handler(), route.method, route.path, route.body)
		if r.code != 503 || errorOf(t, r).Error != "commands not available" {
			t.Errorf("%s %s = %d %q, want 503", route.method, route.path, r.code, r.body)
		}
	}
}

func TestActionAnswersArePlainText(t *testing.T) {
	f := &fakeCommands{t: t,
		restart: func(context.Context, RestartRequest) (int, string) { return 200, "restarted successfully" },
		cancel:  func(context.Context) (int, string) { return 404, "no restarts are scheduled" },
		reload:  func(context.Context) (int, string) { return 202, "reload scheduled" },
		reinit:  func(context.Context, bool) (int, string) { return 503, "I am the leader, can not reinitialize" },
	}
	ts := newCommandServer(t, f, Config{})
	for _, tc := range []struct {
		method, path, body string
		code               int
		text               string
	}{
		{"POST", "/restart", "", 200, "restarted successfully"},
		{"DELETE", "/restart", "", 404, "no restarts are scheduled"},
		{"POST", "/reload", "", 202, "reload scheduled"},
		{"POST", "/reload", "not even JSON", 202, "reload scheduled"}, // the body is ignored
		{"POST", "/reinitialize", "", 503, "I am the leader, can not reinitialize"},
	} {
		r := doBody(t, ts.Handler(), tc.method, tc.path, tc.body)
		if r.code != tc.code || r.body != tc.text || r.header.Get("Content-Type") != "text/html" {
			t.Errorf("%s %s = %d %q (%s), want %d %q text/html", tc.method, tc.path, r.code, r.body,
				r.header.Get("Content-Type"), tc.code, tc.text)
		}
	}
}

func TestAgentStatusOutOfRangeBecomes502(t *testing.T) {
	f := &fakeCommands{t: t, reload: func(context.Context) (int, string) { return 0, "" }}
	ts := newCommandServer(t, f, Config{})
	if r := doBody(t, ts.Handler(), "POST", "/reload", ""); r.code != 502 || r.body != "reload failed" {
		t.Errorf("POST /reload with status 0 from the agent = %d %q", r.code, r.body)
	}
}

func TestReinitializeForce(t *testing.T) {
	cases := []struct {
		body string
		code int
		want bool
	}{
		{"", 200, false},
		{"{}", 200, false},
		{`{"force":true}`, 200, true},
		{`{"force":false}`, 200, false},
		{`{"force":"yes"}`, 200, true},
		{`{"force":"on"}`, 200, true},
		{`{"force":1}`, 200, true},
		{`{"force":null}`, 200, false},
		{`{"force":"no"}`, 200, false},
		{`{"other":true}`, 200, false},
		{`{"force":`, 400, false},
		{`[true]`, 400, false},
	}
	for _, tc := range cases {
		var got []bool
		f := &fakeCommands{t: t, reinit: func(_ context.Context, force bool) (int, string) {
			got = append(got, force)
			return 200, "reinitialize started"
		}}
		ts := newCommandServer(t, f, Config{})
		r := doBody(t, ts.Handler(), "POST", "/reinitialize", tc.body)
		if r.code != tc.code {
			t.Errorf("POST /reinitialize %q = %d %q, want %d", tc.body, r.code, r.body, tc.code)
			continue
		}
		if tc.code == 200 && (len(got) != 1 || got[0] != tc.want) {
			t.Errorf("POST /reinitialize %q: force = %v, want %v", tc.body, got, tc.want)
		}
		if tc.code != 200 && len(got) != 0 {
			t.Errorf("POST /reinitialize %q reached the agent", tc.body)
		}
	}
}

func TestCommandCallsAreBounded(t *testing.T) {
	type seen struct{ left time.Duration }
	ch := make(chan seen, 4)
	record := func(ctx context.Context) {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Error("command context has no deadline")
		}
		ch <- seen{time.Until(dl)}
	}
	f := &fakeCommands{t: t,
		restart: func(ctx context.Context, _ RestartRequest) (int, string) {
			record(ctx)
			return 200, "restarted successfully"
		},
		reload: func(ctx context.Context) (int, string) { record(ctx); return 202, "reload scheduled" },
	}
	ts := newCommandServer(t, f, Config{})
	doBody(t, ts.Handler(), "POST", "/reload", "")
	if s := <-ch; s.left > DefaultCommandTimeout || s.left < DefaultCommandTimeout-5*time.Second {
		t.Errorf("reload bound = %s, want about %s", s.left, DefaultCommandTimeout)
	}
	doBody(t, ts.Handler(), "POST", "/restart", `{"timeout":"60s"}`)
	if s, want := <-ch, DefaultRestartTimeout+time.Minute; s.left > want || s.left < want-5*time.Second {
		t.Errorf("restart bound = %s, want about %s (default + the request's timeout)", s.left, want)
	}
}
