package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
)

// switchoverCommandTimeout bounds StartSwitchover and AbortSwitchover: the
// pre-flight checks ask every candidate's REST API for its status (2 s
// each, in parallel) and then write the record with a CAS, so 10 s is
// ample; a client waiting longer learns nothing more.
const switchoverCommandTimeout = 10 * time.Second

// Limits of a PATCH /switchover body's strings.
const (
	maxMemberNameLen = 255
	maxReasonLen     = 1024
	maxSwitchoverID  = 128
)

// SwitchoverErrorResponse is the JSON body of a refused switchover request:
// {"error": …, "id": …, "rejected": [{"member": …, "ok": false, "reasons":
// […]}], "reasons": ["pg3: lag 3.2 MB > 1.0 MB", …]}. ID names the running
// switchover on 409; Rejected and the flattened Reasons come with 412.
type SwitchoverErrorResponse struct {
	Error    string             `json:"error"`
	ID       string             `json:"id,omitempty"`
	Rejected []CandidateVerdict `json:"rejected,omitempty"`
	Reasons  []string           `json:"reasons,omitempty"`
}

// AbortRequested answers DELETE /switchover/<id>.
type AbortRequested struct {
	ID             string `json:"id"`
	AbortRequested bool   `json:"abort_requested"`
}

// switchoverRoutes adds the switchover endpoints to r.
func (s *Server) switchoverRoutes(r chi.Router) {
	r.Patch("/switchover", s.patchSwitchover)
	r.Post("/switchover", s.postPatroni("switchover"))
	r.Post("/failover", s.postPatroni("failover"))
	r.Delete("/switchover", closeOnBody(s.deleteScheduled))
	r.Get("/switchovers", closeOnBody(s.listSwitchovers))
	r.Get("/switchover/{id}", closeOnBody(s.getSwitchover))
	r.Delete("/switchover/{id}", closeOnBody(s.abortSwitchover))
	r.Get("/switchover/{id}/events", closeOnBody(s.switchoverEvents))
}

// available answers 503 when the server has no Switchovers.
func (s *Server) available(w http.ResponseWriter, r *http.Request) bool {
	if s.switchovers == nil {
		notAvailable(w, r, "switchover not available")
	}
	return s.switchovers != nil
}

// patchSwitchover starts a switchover (or a dry run): 202 with its id and
// events URL, 200 with the verdicts for a dry run.
func (s *Server) patchSwitchover(w http.ResponseWriter, r *http.Request) {
	if !s.available(w, r) {
		return
	}
	var req SwitchoverRequest
	if err := decodeStrict(r, &req); err != nil {
		writeRequestError(w, err)
		return
	}
	if err := validateSwitchoverRequest(req); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.RequestedBy = requester(r)
	ctx, cancel := context.WithTimeout(r.Context(), s.commandTimeout)
	defer cancel()
	started, err := s.switchovers.StartSwitchover(ctx, req)
	if err != nil {
		s.switchoverFailed(w, "start", err)
		return
	}
	if req.DryRun {
		started.DryRun = true
		writeJSON(w, http.StatusOK, started)
		return
	}
	if !validSwitchoverID(started.ID) {
		s.log.Error("switchover started without a valid id", "switchover_id", started.ID)
		WriteError(w, http.StatusBadGateway, "switchover started without a valid id")
		return
	}
	loc := "/switchover/" + started.ID
	if started.Events == "" {
		started.Events = loc + "/events"
	}
	s.log.Info("switchover requested", "switchover_id", started.ID, "to", req.To,
		"requested_by", req.RequestedBy, "reason", req.Reason)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusAccepted, started)
}

// getSwitchover serves one record.
func (s *Server) getSwitchover(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.switchoverID(w, r); ok {
		s.serveRecords(w, r, "read", "switchover record", `{}`, func(ctx context.Context) (json.RawMessage, error) {
			return s.switchovers.Switchover(ctx, id)
		})
	}
}

// listSwitchovers serves the recent records, newest first.
func (s *Server) listSwitchovers(w http.ResponseWriter, r *http.Request) {
	if s.available(w, r) {
		s.serveRecords(w, r, "list", "switchover list", `[]`, s.switchovers.ListSwitchovers)
	}
}

// serveRecords serves what read returns within backendTimeout (writeRaw),
// or its failure (switchoverFailed with op).
func (s *Server) serveRecords(w http.ResponseWriter, r *http.Request, op, what, empty string,
	read func(context.Context) (json.RawMessage, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.backendTimeout)
	defer cancel()
	raw, err := read(ctx)
	if err != nil {
		s.switchoverFailed(w, op, err)
		return
	}
	s.writeRaw(w, what, raw, empty)
}

// abortSwitchover asks a running switchover to stop.
func (s *Server) abortSwitchover(w http.ResponseWriter, r *http.Request) {
	id, ok := s.switchoverID(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.commandTimeout)
	defer cancel()
	if err := s.switchovers.AbortSwitchover(ctx, id); err != nil {
		s.switchoverFailed(w, "abort", err)
		return
	}
	s.log.Info("switchover abort requested", "switchover_id", id, "requested_by", requester(r))
	writeJSON(w, http.StatusAccepted, AbortRequested{ID: id, AbortRequested: true})
}

// writeRaw writes agent-provided JSON; empty becomes empty, invalid a 502.
func (s *Server) writeRaw(w http.ResponseWriter, what string, raw json.RawMessage, empty string) {
	if len(raw) == 0 {
		raw = json.RawMessage(empty)
	}
	if !json.Valid(raw) {
		s.log.Warn("invalid JSON from the agent", "what", what)
		WriteError(w, http.StatusBadGateway, what+" is not valid JSON")
		return
	}
	writeJSONLine(w, raw)
}

// switchoverID checks availability and the {id} path parameter.
func (s *Server) switchoverID(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !s.available(w, r) {
		return "", false
	}
	id := chi.URLParam(r, "id")
	if !validSwitchoverID(id) {
		WriteError(w, http.StatusBadRequest, "invalid switchover id")
		return "", false
	}
	return id, true
}

// validSwitchoverID accepts ids such as "20261122-030512-4f2a".
func validSwitchoverID(id string) bool {
	if id == "" || len(id) > maxSwitchoverID {
		return false
	}
	for _, c := range id {
		if !idChar(c) {
			return false
		}
	}
	return true
}

// idChar reports a letter, a digit, '-', '_' or '.'.
func idChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// switchoverFailed answers a failed Switchovers call: ErrNotFound is 404,
// a *SwitchoverError its own status, a timeout or anything else 503 (the
// cause is logged, not served).
func (s *Server) switchoverFailed(w http.ResponseWriter, op string, err error) {
	if se, ok := AsSwitchoverError(err); ok {
		status := se.Status
		if status < 400 || status > 599 {
			s.log.Error("switchover error with an invalid status", "op", op, "status", status, "err", err)
			status = http.StatusBadGateway
		}
		body := SwitchoverErrorResponse{Error: se.Message, ID: se.ID, Rejected: se.Rejected}
		for _, v := range se.Rejected {
			for _, reason := range v.Reasons {
				body.Reasons = append(body.Reasons, v.Member+": "+reason)
			}
		}
		if body.Error == "" {
			body.Error = http.StatusText(status)
		}
		writeJSON(w, status, body)
		return
	}
	switch {
	case errors.Is(err, ErrNotFound):
		WriteError(w, http.StatusNotFound, "switchover not found")
	case errors.Is(err, ErrViewStale):
		WriteError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.callFailed(w, "switchover request", op, op+" switchover", err)
	}
}

// requester names who asked: the basic-auth user, if any, and the address.
func requester(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return user + "@" + r.RemoteAddr
	}
	return r.RemoteAddr
}

// decodeStrict is DecodeJSON for Regent's own endpoints: {} is accepted (a
// switchover to the best candidate), and an unknown field is a 400 naming
// it, so a typo ("too") is never silently ignored.
func decodeStrict(r *http.Request, v any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var obj json.RawMessage
	if err := decodeObject(data, &obj, true); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return &RequestError{Status: http.StatusBadRequest, Msg: "unknown field " + rest}
		}
		return &RequestError{Status: http.StatusBadRequest, Msg: "body does not match the request", Err: err}
	}
	return nil
}

// writeRequestError answers a body error; the connection closes, since
// the body may be unread (411, 413).
func writeRequestError(w http.ResponseWriter, err error) {
	w.Header().Set("Connection", "close")
	var re *RequestError
	if errors.As(err, &re) {
		re.Write(w)
		return
	}
	WriteError(w, http.StatusBadRequest, err.Error())
}

// validateSwitchoverRequest checks what the agent cannot: that the strings
// are plausible.
func validateSwitchoverRequest(req SwitchoverRequest) error {
	if req.To != "" {
		if err := checkMemberName(req.To); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	}
	if len(req.Reason) > maxReasonLen {
		return fmt.Errorf("reason: longer than %d bytes", maxReasonLen)
	}
	if !utf8.ValidString(req.Reason) || strings.ContainsFunc(req.Reason, unicode.IsControl) {
		return errors.New("reason: must be printable text on one line")
	}
	return nil
}

// checkMemberName accepts what can be a member name (patroni-compat.md §6
// item 18): printable UTF-8 without "/", no surrounding spaces.
func checkMemberName(name string) error {
	switch {
	case len(name) > maxMemberNameLen:
		return fmt.Errorf("longer than %d bytes", maxMemberNameLen)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("not a member name: must be printable text")
	case strings.Contains(name, "/"):
		return errors.New("not a member name: contains \"/\"")
	case strings.TrimSpace(name) != name:
		return errors.New("not a member name: leading or trailing spaces")
	}
	return nil
}
