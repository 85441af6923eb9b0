package restapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// sweepPaths covers every route, the command paths of later features and
// odd shapes.
var sweepPaths = []string{
	"/", "/patroni", "/patroni/x", "/cluster", "/history", "/config", "/liveness", "/readiness",
	"/primary", "/master", "/leader", "/standby-leader", "/replica?lag=abc&tag_x=%zz", "/read-only",
	"/read-only-sync", "/sync", "/async", "/health", "/metrics", "/failsafe", "/switchover", "/failover",
	"/restart", "/reload", "/reinitialize", "//", "/..", "/%00", "/a/b/c?%", "/replica?lag=1TB&lag=;",
}

var sweepMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "FOO", "PROPFIND"}

// sweepBodies are the header lines and body bytes sent after the request line.
var sweepBodies = []struct{ name, head, body string }{
	{"no body", "", ""},
	{"empty", "Content-Length: 0\r\n", ""},
	{"malformed", "Content-Length: 1\r\n", "{"},
	{"array", "Content-Length: 2\r\n", "[]"},
	{"empty object", "Content-Length: 2\r\n", "{}"},
	{"object", "Content-Length: 18\r\n", `{"leader":"pg1"}` + "\r\n"},
	{"binary", "Content-Length: 4\r\n", "\x00\xff\xfe\x01"},
	{"short body", "Content-Length: 10\r\n", "{}"},
	{"chunked", "Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"},
	{"bad chunk", "Transfer-Encoding: chunked\r\n", "zz\r\n"},
}

// documented5xx are the only server errors the API may answer with.
func documented5xx(code int) bool { return code < 500 || code == 502 || code == 503 }

// answer is what exchange read: the status, and whether the server closes
// the connection after it.
type answer struct {
	code  int
	close bool
}

// exchange sends one raw request and reads the whole response; an error
// means a dropped or hung connection.
func exchange(addr, method, target, head, body string) (answer, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return answer{}, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the server may answer before reading a large body
		defer wg.Done()
		_, _ = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: regent\r\n%s\r\n%s", method, target, head, body)
	}()
	var a answer
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err == nil {
		a = answer{code: resp.StatusCode, close: resp.Close}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_ = conn.Close()
	wg.Wait()
	return a, err
}

// startSweepServer runs a server with a DecodeJSON command on POST
// /switchover and a 300 ms body timeout; it returns host:port.
func startSweepServer(t *testing.T) string {
	t.Helper()
	ts := newTestServer(t, &fakeBackend{config: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{"ttl":30}`), nil }})
	ts.Publish(replicaSnap())
	ts.bodyTimeout = 300 * time.Millisecond
	ts.Mount("POST /switchover", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req switchoverReq
		var re *RequestError
		if err := DecodeJSON(r, &req); errors.As(err, &re) {
			re.Write(w)
			return
		}
		WriteError(w, http.StatusPreconditionFailed, "not the leader")
	}))
	return strings.TrimPrefix(startRun(t, ts.Server), "http://")
}

type sweepJob struct{ method, path, bodyName, head, body string }

// sweepJobs lists every method × path × body.
func sweepJobs(paths []string) []sweepJob {
	var jobs []sweepJob
	for _, m := range sweepMethods {
		for _, p := range paths {
			for _, b := range sweepBodies {
				jobs = append(jobs, sweepJob{m, p, b.name, b.head, b.body})
			}
		}
	}
	return jobs
}

// sweep sends every job to addr, four at a time, and fails t for each
// connection that fails or undocumented 5xx.
func sweep(t *testing.T, addr string, jobs []sweepJob) {
	t.Helper()
	ch := make(chan sweepJob)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				a, err := exchange(addr, j.method, j.path, j.head, j.body)
				switch {
				case err != nil:
					t.Errorf("%s %s (%s): connection failed: %v", j.method, j.path, j.bodyName, err)
				case !documented5xx(a.code):
					t.Errorf("%s %s (%s) = %d", j.method, j.path, j.bodyName, a.code)
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
}

// Every method × path × body, plus oversized bodies on a few paths only
// (they are slow to send).
func TestSweepMethodsPathsBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("sweep skipped in -short")
	}
	jobs := sweepJobs(append(sweepPaths, "*"))
	huge := strings.Repeat("a", 2<<20)
	for _, m := range []string{"GET", "HEAD", "POST", "PATCH", "FOO"} {
		for _, p := range []string{"/primary", "/patroni", "/config", "/switchover"} {
			jobs = append(jobs,
				sweepJob{m, p, "2 MiB", fmt.Sprintf("Content-Length: %d\r\n", len(huge)), huge},
				sweepJob{m, p, "2 MiB chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(huge), huge)})
		}
	}
	sweep(t, startSweepServer(t), jobs)
}

// The body rules of DecodeJSON, over the wire.
func TestDecodeJSONOverTCP(t *testing.T) {
	addr := startSweepServer(t)
	for _, tc := range []struct {
		name, head, body string
		want             int
	}{
		{"no Content-Length", "", "", 411},
		{"chunked", "Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n", 411},
		{"malformed", "Content-Length: 1\r\n", "{", 400},
		{"empty object", "Content-Length: 2\r\n", "{}", 400},
		{"array", "Content-Length: 2\r\n", "[]", 400},
		{"short body times out", "Content-Length: 10\r\n", "{}", 400},
		{"too large", fmt.Sprintf("Content-Length: %d\r\n", 2<<20), strings.Repeat("a", 2<<20), 413},
		{"valid", "Content-Length: 16\r\n", `{"leader":"pg1"}`, 412},
	} {
		a, err := exchange(addr, "POST", "/switchover", tc.head, tc.body)
		if err != nil || a.code != tc.want {
			t.Errorf("POST /switchover (%s) = %d, %v; want %d", tc.name, a.code, err, tc.want)
		}
	}
}

// Requests net/http itself rejects still get an answer.
func TestMalformedRequestsAnswered(t *testing.T) {
	addr := startSweepServer(t)
	for _, raw := range []string{"GARBAGE\r\n\r\n", "GET /primary HTTP/1.1\r\nHost: x\r\nno-colon\r\n\r\n", "G\x00T / HTTP/1.1\r\n\r\n"} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		code := 0
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		conn.Close()
		if err != nil || code != 400 {
			t.Errorf("raw %q: %d %v, want a 400 answer", raw, code, err)
		}
	}
}

// FuzzHandler feeds arbitrary methods, targets and bodies to the handler:
// it must never panic and never answer an undocumented 5xx.
func FuzzHandler(f *testing.F) {
	for _, m := range sweepMethods {
		for _, p := range sweepPaths {
			f.Add(m, p, "{}")
		}
	}
	f.Add("GET", "/replica?lag=99999999999999999999TB&tag_=1&tag_a=%", "")
	f.Add("PATCH", "/config", `{"a":`)
	s := New(Options{
		Backend: &fakeBackend{config: func(context.Context) (json.RawMessage, error) { return json.RawMessage(`{}`), nil }},
		Now:     func() time.Time { return t0 },
	})
	s.Publish(replicaSnap())
	s.Mount("PATCH /config", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		var re *RequestError
		if err := DecodeJSON(r, &v); errors.As(err, &re) {
			re.Write(w)
		}
	}))
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !validMethod(method) || target == "" || target[0] != '/' || strings.ContainsAny(target, " \r\n\x00#") {
			t.Skip()
		}
		req, err := http.NewRequestWithContext(t.Context(), method, "http://regent"+target, strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !documented5xx(rec.Code) {
			t.Errorf("%s %s = %d %s", method, target, rec.Code, rec.Body)
		}
		if (method == "HEAD" || method == "OPTIONS") && rec.Body.Len() != 0 {
			t.Errorf("%s %s has a body", method, target)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < '!' || c > '~' || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}
