package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/regent-ha/regent/internal/lenient"
)

const (
	// DefaultCommandTimeout bounds PatchConfig, PutConfig, CancelRestart,
	// Reload and Reinitialize: each is a CAS on one key or a request queued
	// to the HA loop, which takes it within one tick.
	DefaultCommandTimeout = 10 * time.Second
	// DefaultRestartTimeout bounds a restart: PostgreSQL's stop (30 s by
	// default: fast, then immediate, then SIGKILL) plus its start and
	// recovery. The restart goes on in the HA loop if the client stops
	// waiting.
	DefaultRestartTimeout = 2 * time.Minute
)

// commandRoutes adds the operator endpoints (patroni-compat.md §2.4).
func (s *Server) commandRoutes(r chi.Router) {
	r.Patch("/config", s.patchConfig)
	r.Put("/config", s.putConfig)
	r.Post("/restart", s.postRestart)
	r.Delete("/restart", closeOnBody(s.deleteRestart))
	r.Post("/reload", closeOnBody(s.postReload)) // the body is ignored
	r.Post("/reinitialize", s.postReinitialize)
}

// commandsReady answers 503 when the server has no Commands.
func (s *Server) commandsReady(w http.ResponseWriter, r *http.Request) bool {
	if s.commands == nil {
		notAvailable(w, r, "commands not available")
	}
	return s.commands != nil
}

// patchConfig merges the body into the config key: 200 with the merged
// config.
func (s *Server) patchConfig(w http.ResponseWriter, r *http.Request) { s.configWrite(w, r, false) }

// putConfig replaces the config key: 200 with what was written.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) { s.configWrite(w, r, true) }

func (s *Server) configWrite(w http.ResponseWriter, r *http.Request, replace bool) {
	if !s.commandsReady(w, r) {
		return
	}
	var body json.RawMessage
	if err := DecodeJSON(r, &body); err != nil {
		writeRequestError(w, err)
		return
	}
	ifRevision, err := parseIfMatch(r.Header)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opTimeout)
	defer cancel()
	op, call := "patch", s.commands.PatchConfig
	if replace {
		op, call = "replace", s.commands.PutConfig
	}
	out, err := call(ctx, body, ifRevision)
	var changed *ConfigChangedError
	switch {
	case errors.As(err, &changed):
		s.log.Info("dynamic config "+op+" refused: changed since the revision read",
			"if_revision", changed.Expected, "revision", changed.Current, "requested_by", requester(r))
		if changed.Current > 0 {
			w.Header().Set("ETag", revisionETag(changed.Current))
		}
		WriteError(w, http.StatusPreconditionFailed, changed.Error())
		return
	case err != nil:
		s.commandFailed(w, op+" config", err)
		return
	}
	// The config may hold anything an operator put there: log who, not what.
	s.log.Info("dynamic config "+op+" accepted", "requested_by", requester(r), "if_revision", ifRevision)
	s.writeRaw(w, "config", out, `{}`)
}

// errBadIfMatch refuses an If-Match that is not a config key revision.
var errBadIfMatch = errors.New(`invalid If-Match header: want the config key's mod revision, as in "123" (the ETag of GET /config)`)

// parseIfMatch reads the If-Match header of PATCH and PUT /config: the
// config key's mod revision, quoted ("123", as GET /config's ETag) or bare.
// 0 when the header is absent.
func parseIfMatch(h http.Header) (int64, error) {
	vals := h.Values("If-Match")
	if len(vals) == 0 {
		return 0, nil
	}
	if len(vals) > 1 {
		return 0, errBadIfMatch
	}
	v := strings.TrimSpace(vals[0])
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, errBadIfMatch
	}
	rev, err := strconv.ParseInt(v, 10, 64)
	if err != nil || rev == 0 {
		return 0, errBadIfMatch
	}
	return rev, nil
}

// revisionETag is the entity tag of the config key at revision rev.
func revisionETag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// commandFailed answers a failed Commands call: an *HTTPError with its
// status and message, a timeout or anything else with 503 (the cause is
// logged, not served).
func (s *Server) commandFailed(w http.ResponseWriter, op string, err error) {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		status := he.Status
		if status < 400 || status > 599 {
			s.log.Error("command error with an invalid status", "op", op, "status", status, "err", err)
			status = http.StatusBadGateway
		}
		msg := he.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		WriteError(w, status, msg)
	default:
		s.callFailed(w, "REST API command", op, op, err)
	}
}

// callFailed answers 503 for a call to the agent that timed out ("<what>:
// timed out") or failed otherwise ("<what> failed"); the cause is logged
// as "<kind> timed out" or "<kind> failed" with op, not served.
func (s *Server) callFailed(w http.ResponseWriter, kind, op, what string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn(kind+" timed out", "op", op, "err", err)
		WriteError(w, http.StatusServiceUnavailable, what+": timed out")
		return
	}
	s.log.Warn(kind+" failed", "op", op, "err", err)
	WriteError(w, http.StatusServiceUnavailable, what+" failed")
}

// runAction runs one Patroni action of the agent within d and writes its
// answer, after checking its status code.
func (s *Server) runAction(w http.ResponseWriter, r *http.Request, op string, d time.Duration,
	action func(context.Context) (int, string)) {
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	code, text := action(ctx)
	if code < 100 || code > 599 {
		s.log.Error("invalid status from the agent", "op", op, "status", code)
		code, text = http.StatusBadGateway, op+" failed"
	}
	writeText(w, code, text)
}

// postRestart restarts PostgreSQL now or schedules it (§2.4).
func (s *Server) postRestart(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w, r) {
		return
	}
	req, code, text := s.parseRestart(r)
	if code != 0 {
		if code == http.StatusLengthRequired || code == http.StatusRequestEntityTooLarge || code == http.StatusBadRequest {
			w.Header().Set("Connection", "close") // the body may be unread
		}
		writeText(w, code, text)
		return
	}
	s.log.Info("received restart request", "schedule", req.Schedule, "role", req.Role,
		"postgres_version", req.PostgresVersion, "timeout", req.Timeout,
		"restart_pending", req.RestartPending, "requested_by", requester(r))
	s.runAction(w, r, "restart", s.restartTimeout+req.Timeout, func(ctx context.Context) (int, string) {
		return s.commands.Restart(ctx, req)
	})
}

// deleteRestart cancels a scheduled restart.
func (s *Server) deleteRestart(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w, r) {
		return
	}
	s.runAction(w, r, "cancel restart", s.opTimeout, s.commands.CancelRestart)
}

// postReload reloads the configuration; the body, if any, is ignored.
func (s *Server) postReload(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w, r) {
		return
	}
	s.log.Info("received reload request", "requested_by", requester(r))
	s.runAction(w, r, "reload", s.opTimeout, s.commands.Reload)
}

// postReinitialize re-clones this replica: optional {"force": bool}.
func (s *Server) postReinitialize(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w, r) {
		return
	}
	var body map[string]json.RawMessage
	if err := DecodeOptionalJSON(r, &body); err != nil {
		var re *RequestError
		if !errors.As(err, &re) {
			re = &RequestError{Status: http.StatusBadRequest, Msg: "invalid request body"}
		}
		w.Header().Set("Connection", "close")
		writeText(w, re.Status, re.Msg)
		return
	}
	force := lenientBool(body["force"])
	s.log.Info("received reinitialize request", "force", force, "requested_by", requester(r))
	s.runAction(w, r, "reinitialize", s.opTimeout, func(ctx context.Context) (int, string) {
		return s.commands.Reinitialize(ctx, force)
	})
}

// lenientBool reads a JSON value as Regent reads every flag
// (lenient.Truthy: true, "on", "yes", 1…); absent or unparsable is false.
func lenientBool(raw json.RawMessage) bool {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	return lenient.Truthy(v)
}
