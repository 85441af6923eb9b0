package restapi

import (
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// trackingWriter records whether the response has started, so a panic can
// still be answered with a 500 when nothing was written yet.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx informational responses do not start the response
		w.started = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (server-sent events) flush through.
func (w *trackingWriter) Flush() {
	w.started = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanic turns a handler panic into a logged 500 JSON error. A panic
// with http.ErrAbortHandler keeps its meaning (abort the response).
func (s *Server) recoverPanic(w *trackingWriter, r *http.Request) {
	rec := recover()
	if rec == nil {
		return
	}
	if rec == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared by identity, as net/http does
		panic(rec)
	}
	s.log.Error("panic in HTTP handler", "err", fmt.Sprint(rec), "method", r.Method,
		"path", r.URL.Path, "stack", string(debug.Stack()))
	if w.started {
		return // too late for a status; the client sees a short response
	}
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	WriteError(w, http.StatusInternalServerError, "internal error")
}

// unrouted serves requests no route takes: a GET is a health check (every
// GET path is, in Patroni); any other method is 405.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.health(w, r)
		return
	}
	w.Header().Set("Allow", s.allowed(r))
	WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
}

// allowed lists the methods the router serves on r's path.
func (s *Server) allowed(r *http.Request) string {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}

// closeOnBody wraps a handler that never reads the request body: when the
// request has one, the connection closes after the response. Otherwise
// net/http would first drain the unread body, and a client that declared
// more than it sends would hold the response back forever.
func closeOnBody(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		h(w, r)
	}
}

// boundBodyRead sets a read deadline on the connection while r's body is
// read, and lifts it once the body ends, so that long handlers (and
// streams) keep a live context afterwards. A body the handler never reads
// keeps the deadline, which then bounds net/http's drain after the handler.
func (s *Server) boundBodyRead(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)); err != nil {
		return r // not a real connection (httptest)
	}
	r2 := *r // shallow copy: handlers below see the bounded body
	r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
	return &r2
}

// deadlineBody lifts the connection's read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		// Only at the end: after a timeout the deadline must stay, or
		// net/http's drain of the rest would block forever.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{}) // the connection may be gone: nothing to do
	}
	return n, err
}
