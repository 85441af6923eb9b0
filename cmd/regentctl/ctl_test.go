package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// ctlRun is one regentctl invocation through the real command tree, with
// the cluster read from a fake loader instead of etcd.
type ctlRun struct {
	loader func(ctx context.Context) (*dcs.Cluster, error)
	wiper  func(ctx context.Context) (int64, error)
	stdin  string
	tty    bool // stdin and stdout count as terminals
}

type ctlResult struct {
	out, errOut string
	err         error
	code        int
}

// baseArgs satisfy the root's checks; the loader replaces etcd.
var baseArgs = []string{"--etcd", "http://127.0.0.1:1", "--scope", "demo"}

func (r ctlRun) run(t *testing.T, args ...string) ctlResult {
	t.Helper()
	return r.runCtx(t, t.Context(), args...)
}

func (r ctlRun) runCtx(t *testing.T, ctx context.Context, args ...string) ctlResult {
	t.Helper()
	var out, errOut bytes.Buffer
	stdin := strings.NewReader(r.stdin)
	s := &settings{
		loader: r.loader,
		wiper:  r.wiper,
		isTTY:  func(v any) bool { return r.tty && (v == stdin || v == &out) },
		poll:   10 * time.Millisecond,
	}
	root := newRootWith(s, &out, &errOut)
	root.SetIn(stdin)
	root.SetArgs(append(append([]string(nil), baseArgs...), args...))
	err := root.ExecuteContext(ctx)
	var codeOut bytes.Buffer
	code := exitCode(err, &codeOut)
	return ctlResult{out: out.String(), errOut: errOut.String() + codeOut.String(), err: err, code: code}
}

// fixed is a loader that always returns c.
func fixed(c *dcs.Cluster) func(context.Context) (*dcs.Cluster, error) {
	return func(context.Context) (*dcs.Cluster, error) { return c, nil }
}

// recorder keeps what a fake server's handlers saw, for the test to read
// (handlers run on the server's goroutines).
type recorder[T any] struct {
	mu   sync.Mutex
	seen []T
}

// add records v and returns how many are recorded, v included.
func (r *recorder[T]) add(v T) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, v)
	return len(r.seen)
}

// all returns a copy of the records, in order.
func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.seen...)
}

// request is one request a fake member received.
type request struct {
	Method, Path, Body, Auth string
}

// answer is a canned response.
type answer struct {
	code int
	body string
}

// fakeMember is a member's REST API answering from a table of
// "METHOD /path" → answers (the last one repeats), recording requests.
type fakeMember struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string][]answer
	got     []request
}

func newFakeMember(t *testing.T, answers map[string][]answer) *fakeMember {
	t.Helper()
	f := &fakeMember{answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeMember) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.got = append(f.got, request{r.Method, r.URL.Path, string(body), r.Header.Get("Authorization")})
	list := f.answers[key]
	var a answer
	switch {
	case len(list) == 0:
		a = answer{404, `{"error":"no such fake route: ` + key + `"}`}
	case len(list) == 1:
		a = list[0]
	default:
		a, f.answers[key] = list[0], list[1:]
	}
	f.mu.Unlock()
	if a.code == 0 { // hang until the client gives up
		<-r.Context().Done()
		return
	}
	if json.Valid([]byte(a.body)) {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/html")
	}
	w.WriteHeader(a.code)
	_, _ = io.WriteString(w, a.body)
}

// set replaces the answers of a route.
func (f *fakeMember) set(route string, answers ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[route] = answers
}

func (f *fakeMember) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

// bodies lists the bodies of the requests to "METHOD /path".
func (f *fakeMember) bodies(route string) []string {
	var out []string
	for _, r := range f.requests() {
		if r.Method+" "+r.Path == route {
			out = append(out, r.Body)
		}
	}
	return out
}

// deadAPI is an api_url nothing listens on.
const deadAPI = "http://127.0.0.1:1/patroni"

func u64(v uint64) *uint64 { return &v }

// threeMembers is pg1 (leader), pg2 and pg3 at the given API URLs ("" for
// deadAPI ones), with a config key.
func threeMembers(urls map[string]string, config string) *dcs.Cluster {
	c := &dcs.Cluster{
		Leader: &dcs.Leader{Name: "pg1"},
		Status: dcs.Status{Optime: 50 << 20},
		Members: map[string]dcs.Member{
			"pg1": {ConnURL: "postgres://127.0.0.1:5432/postgres", State: "running", Role: "primary", Timeline: 2, XLogLocation: u64(50 << 20)},
			"pg2": {ConnURL: "postgres://127.0.0.1:5433/postgres", State: "running", Role: "replica", Timeline: 2, XLogLocation: u64(48 << 20)},
			"pg3": {ConnURL: "postgres://127.0.0.1:5434/postgres", State: "running", Role: "replica", Timeline: 2, XLogLocation: u64(50 << 20)},
		},
	}
	for name, m := range c.Members {
		m.APIURL = deadAPI
		if u := urls[name]; u != "" {
			m.APIURL = u + "/patroni"
		}
		c.Members[name] = m
	}
	if config != "" {
		c.Config = &dcs.Value{Data: []byte(config), ModRevision: 7}
	}
	return c
}
