package restapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// doIfMatch sends body to target with one If-Match line per value.
func doIfMatch(t *testing.T, h http.Handler, method, target, body string, ifMatch ...string) response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	for _, v := range ifMatch {
		req.Header.Add("If-Match", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// revisionedCommands is a fakeCommands whose config key is at revision
// current: a write with another non-zero ifRevision is refused as the
// agent refuses it.
func revisionedCommands(t *testing.T, current int64) *fakeCommands {
	write := func(ifRevision int64, out json.RawMessage) (json.RawMessage, error) {
		if ifRevision != 0 && ifRevision != current {
			return nil, fmt.Errorf("agent: %w", &ConfigChangedError{Expected: ifRevision, Current: current})
		}
		return out, nil
	}
	f := &fakeCommands{t: t}
	f.patch = func(_ context.Context, p json.RawMessage) (json.RawMessage, error) {
		return write(f.IfRevisions()[len(f.IfRevisions())-1], json.RawMessage(`{"ttl":30,"pause":true}`))
	}
	f.put = func(_ context.Context, c json.RawMessage) (json.RawMessage, error) {
		return write(f.IfRevisions()[len(f.IfRevisions())-1], c)
	}
	return f
}

type ifMatchCase struct {
	name    string
	ifMatch []string // header lines; none: no header
	code    int
	rev     int64  // the ifRevision passed on (when the agent is called)
	errText string // the error message, for 412
	etag    string // the ETag of the answer
}

func TestConfigWriteIfMatch(t *testing.T) {
	cases := []ifMatchCase{
		{name: "absent", code: 200, rev: 0},
		{name: "quoted, current", ifMatch: []string{`"42"`}, code: 200, rev: 42},
		{name: "bare, current", ifMatch: []string{`42`}, code: 200, rev: 42},
		{name: "spaces around", ifMatch: []string{` "42" `}, code: 200, rev: 42},
		{name: "stale", ifMatch: []string{`"41"`}, code: 412, rev: 41,
			errText: "the config changed since revision 41 (now revision 42)", etag: `"42"`},
		{name: "stale, bare", ifMatch: []string{`7`}, code: 412, rev: 7,
			errText: "the config changed since revision 7 (now revision 42)", etag: `"42"`},
	}
	bad := []string{`abc`, `W/"42"`, `*`, `"42`, `0`, `"0"`, `-1`, `+42`, `"4 2"`, `42, 43`, `""`, ``, `99999999999999999999`}
	for _, v := range bad {
		cases = append(cases, ifMatchCase{name: "malformed " + v, ifMatch: []string{v}, code: 400})
	}
	cases = append(cases, ifMatchCase{name: "two lines", ifMatch: []string{`"42"`, `"42"`}, code: 400})

	for _, method := range []string{http.MethodPatch, http.MethodPut} {
		for _, tc := range cases {
			t.Run(method+" "+tc.name, func(t *testing.T) {
				f := revisionedCommands(t, 42)
				ts := newCommandServer(t, f, Config{})
				r := doIfMatch(t, ts.Handler(), method, "/config", `{"pause":true}`, tc.ifMatch...)
				if r.code != tc.code {
					t.Fatalf("%s /config If-Match %q = %d %q, want %d", method, tc.ifMatch, r.code, r.body, tc.code)
				}
				if got := r.header.Get("ETag"); got != tc.etag {
					t.Errorf("ETag = %q, want %q", got, tc.etag)
				}
				if tc.code == 400 {
					if e := errorOf(t, r); !strings.Contains(e.Error, "If-Match") {
						t.Errorf("error %q does not name the If-Match header", e.Error)
					}
					if calls := f.Calls(); len(calls) != 0 {
						t.Errorf("a malformed If-Match reached the agent: %v", calls)
					}
					return
				}
				if d := cmp.Diff([]int64{tc.rev}, f.IfRevisions()); d != "" {
					t.Errorf("ifRevision passed on (-want +got):\n%s", d)
				}
				if tc.code == 412 {
					if e := errorOf(t, r); e.Error != tc.errText {
						t.Errorf("error = %q, want %q", e.Error, tc.errText)
					}
				}
			})
		}
	}
}

func TestConfigWriteConflictWithoutCurrentRevision(t *testing.T) {
	f := &fakeCommands{t: t, patch: func(context.Context, json.RawMessage) (json.RawMessage, error) {
		return nil, &ConfigChangedError{Expected: 41}
	}}
	ts := newCommandServer(t, f, Config{})
	r := doIfMatch(t, ts.Handler(), http.MethodPatch, "/config", `{"pause":true}`, `"41"`)
	if r.code != 412 || errorOf(t, r).Error != "the config changed since revision 41" {
		t.Fatalf("PATCH /config = %d %q, want 412", r.code, r.body)
	}
	if etag := r.header.Get("ETag"); etag != "" {
		t.Errorf("ETag %q for an unknown revision", etag)
	}
}

func TestGetConfigETag(t *testing.T) {
	b := &fakeBackend{config: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"ttl":30}`), nil }, configRev: 42}
	ts := newTestServer(t, b)
	r := do(t, ts.Handler(), http.MethodGet, "/config", nil)
	if r.code != 200 || r.header.Get("ETag") != `"42"` {
		t.Fatalf("GET /config = %d, ETag %q, want 200 with \"42\"", r.code, r.header.Get("ETag"))
	}

	// A read-modify-write with the ETag as If-Match goes through.
	f := revisionedCommands(t, 42)
	cs := newCommandServer(t, f, Config{})
	if w := doIfMatch(t, cs.Handler(), http.MethodPut, "/config", `{"ttl":30}`, r.header.Get("ETag")); w.code != 200 {
		t.Errorf("PUT /config with GET's ETag = %d %q", w.code, w.body)
	}

	b.configRev = 0 // a backend without revisions: no ETag
	if r = do(t, ts.Handler(), http.MethodGet, "/config", nil); r.code != 200 || r.header.Get("ETag") != "" {
		t.Errorf("GET /config without a revision = %d, ETag %q", r.code, r.header.Get("ETag"))
	}
	for _, b := range []*fakeBackend{{}, {config: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{`), nil }, configRev: 42}} {
		if r = do(t, newTestServer(t, b).Handler(), http.MethodGet, "/config", nil); r.code != 502 || r.header.Get("ETag") != "" {
			t.Errorf("GET /config error = %d, ETag %q: want 502 without one", r.code, r.header.Get("ETag"))
		}
	}
}
