package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// health is the generic health handler (patroni-compat.md §2.3). GET gets
// the code and the status document; HEAD and OPTIONS the code only.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	bodyless := r.Method != http.MethodGet
	p := s.state.Load()
	if p == nil {
		if bodyless {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		WriteError(w, http.StatusServiceUnavailable, "starting")
		return
	}
	now := s.now()
	code := newProbe(p.snap, now).healthCode(r.URL.EscapedPath(), r.URL.RawQuery)
	if bodyless {
		w.WriteHeader(code)
		return
	}
	body, n := p.body(now)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = n
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// getPatroni serves the status document: always 200 once published.
func (s *Server) getPatroni(w http.ResponseWriter, r *http.Request) {
	p := s.state.Load()
	if p == nil {
		WriteError(w, http.StatusServiceUnavailable, "starting")
		return
	}
	if p.encErr != nil {
		WriteError(w, http.StatusInternalServerError, "encoding the status document failed")
		return
	}
	body, n := p.body(s.now())
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = n
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// getLiveness: 200 while paused or while the HA loop is not overdue.
func (s *Server) getLiveness(w http.ResponseWriter, r *http.Request) {
	p := s.state.Load()
	w.WriteHeader(codeIf(p != nil && (p.snap.Paused || s.now().Before(p.snap.LivenessUntil))))
}

// getReadiness: 200 if L; else, while PostgreSQL runs, 200 iff C.
func (s *Server) getReadiness(w http.ResponseWriter, r *http.Request) {
	p := s.state.Load()
	if p == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	pr := newProbe(p.snap, s.now())
	w.WriteHeader(codeIf(pr.l || (p.snap.Status.State == "running" && pr.c)))
}

// getCluster reads the DCS fresh (§2.5).
func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	doc, ok := readBackend(s, w, r, "cluster", Backend.Cluster)
	if !ok {
		return
	}
	if doc.Members == nil {
		doc.Members = []ClusterMember{}
	}
	writeJSON(w, http.StatusOK, doc)
}

// getHistory serves the history key's array, [] when absent or not an array.
func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	raw, ok := readBackend(s, w, r, "history", Backend.History)
	if !ok {
		return
	}
	var arr []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &arr) != nil || arr == nil {
		raw = json.RawMessage(`[]`) // Patroni treats a missing or invalid key as empty
	}
	writeJSONLine(w, raw)
}

// getDecisions serves Regent's decision log (automatic failovers, fencing,
// members standing down, with their reasons), newest first.
func (s *Server) getDecisions(w http.ResponseWriter, r *http.Request) {
	raw, ok := readBackend(s, w, r, "decisions", Backend.Decisions)
	if !ok {
		return
	}
	if len(raw) == 0 {
		raw = json.RawMessage(`[]`)
	}
	writeJSONLine(w, raw)
}

// getConfig serves the dynamic config with its mod revision as the ETag
// (the If-Match of PATCH and PUT /config); 502 when the key is absent.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	ctx, cancel, ok := s.backendCtx(w, r)
	if !ok {
		return
	}
	defer cancel()
	raw, rev, err := s.backend.Config(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusBadGateway, "config key not found")
		return
	case err != nil:
		s.backendFailed(w, "config", err)
		return
	case len(raw) == 0:
		WriteError(w, http.StatusBadGateway, "config key not found")
		return
	case !json.Valid(raw):
		s.log.Warn("config key is not valid JSON")
		WriteError(w, http.StatusBadGateway, "config key is not valid JSON")
		return
	}
	if rev > 0 {
		w.Header().Set("ETag", revisionETag(rev))
	}
	writeJSONLine(w, raw)
}

// backendCtx bounds a Backend call; ok is false when there is no Backend
// (the response has then been written).
func (s *Server) backendCtx(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc, bool) {
	if s.backend == nil {
		WriteError(w, http.StatusServiceUnavailable, "DCS access is not available")
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.backendTimeout)
	return ctx, cancel, true
}

// readBackend runs one Backend read bounded by backendTimeout; ok is false
// when there is no Backend or the read failed (answered by backendFailed
// with what).
func readBackend[T any](s *Server, w http.ResponseWriter, r *http.Request, what string,
	read func(Backend, context.Context) (T, error)) (T, bool) {
	var zero T
	ctx, cancel, ok := s.backendCtx(w, r)
	if !ok {
		return zero, false
	}
	defer cancel()
	v, err := read(s.backend, ctx)
	if err != nil {
		s.backendFailed(w, what, err)
		return zero, false
	}
	return v, true
}

// backendFailed answers 503 for a failed DCS read and logs the cause; the
// cause stays out of the response, which anyone may read.
func (s *Server) backendFailed(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, ErrViewStale) {
		WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.log.Warn("REST API DCS read failed", "endpoint", what, "err", err)
	msg := "reading " + what + " from the DCS failed"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "reading " + what + " from the DCS timed out"
	}
	WriteError(w, http.StatusServiceUnavailable, msg)
}
