package restapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Patroni's texts for POST /switchover and /failover (patroni-compat.md
// §2.6), verbatim: patronictl prints them to the operator.
const (
	textNoCandidate      = "Failover could be performed only to a specific candidate"
	textNoLeader         = "Switchover could be performed only from a specific leader"
	textUnparsable       = "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"
	fmtNoZone            = "Timezone information is mandatory for the scheduled %s"
	fmtPast              = "Cannot schedule %s in the past"
	fmtScheduledNoLeader = "Scheduled %s is possible only from a specific leader"
	fmtScheduledPaused   = "Can't schedule %s in the paused state"
	fmtPausedNoCandidate = "%s is possible only to a specific candidate in a paused state"
)

// htmlContentType is what Patroni's action endpoints answer with, even for
// their plain-text bodies.
var htmlContentType = []string{"text/html"}

// writeText writes a Patroni action answer: a plain-text body, no newline.
func writeText(w http.ResponseWriter, code int, text string) {
	h := w.Header()
	h["Content-Type"] = htmlContentType
	h["Content-Length"] = []string{strconv.Itoa(len(text))}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}

// textf is fmt.Sprintf for the one-verb texts above.
func textf(format, action string) string { return strings.Replace(format, "%s", action, 1) }

// postPatroni serves Patroni's POST /switchover or /failover: steps 1–4 of
// §2.6 here, steps 5–8 in Switchovers.PatroniSwitchover.
func (s *Server) postPatroni(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.available(w, r) {
			return
		}
		req, code, text := s.parsePatroni(r, action)
		if code != 0 {
			if code == http.StatusLengthRequired || code == http.StatusRequestEntityTooLarge {
				w.Header().Set("Connection", "close") // the body is unread
			}
			writeText(w, code, text)
			return
		}
		s.log.Info("received "+action+" request", "leader", req.Leader, "candidate", req.Candidate,
			"scheduled_at", req.ScheduledAt, "requested_by", requester(r))
		code, text = s.switchovers.PatroniSwitchover(r.Context(), req)
		if code < 100 || code > 599 {
			s.log.Error("invalid status from PatroniSwitchover", "status", code, "action", action)
			code, text = http.StatusBadGateway, action+" failed"
		}
		writeText(w, code, text)
	}
}

// parsePatroni runs §2.6 steps 1–4, in Patroni's order; code is 0 when the
// request may go on.
func (s *Server) parsePatroni(r *http.Request, action string) (PatroniSwitchoverRequest, int, string) {
	req := PatroniSwitchoverRequest{Action: action}
	var body map[string]json.RawMessage
	if err := DecodeJSON(r, &body); err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return req, re.Status, re.Msg
		}
		return req, http.StatusBadRequest, "invalid request body"
	}
	var bad string
	req.Leader, bad = stringField(body, "leader", bad)
	req.Candidate, bad = stringField(body, "candidate", bad)
	if req.Candidate == "" { // Python: candidate or member
		req.Candidate, bad = stringField(body, "member", bad)
	}
	if bad != "" {
		return req, http.StatusBadRequest, bad + " must be a string"
	}
	if raw, ok := body["assume_old_primary_down"]; ok && !absent(raw) {
		if json.Unmarshal(raw, &req.AssumeOldPrimaryDown) != nil {
			return req, http.StatusBadRequest, "assume_old_primary_down must be a boolean"
		}
	}
	switch {
	case action == "failover" && req.Candidate == "":
		return req, http.StatusBadRequest, textNoCandidate
	case action == "switchover" && req.Leader == "":
		return req, http.StatusBadRequest, textNoLeader
	}
	paused := s.paused()
	if raw, ok := body["scheduled_at"]; ok && !absent(raw) {
		switch {
		case req.Leader == "":
			return req, http.StatusBadRequest, textf(fmtScheduledNoLeader, action)
		case paused:
			return req, http.StatusBadRequest, textf(fmtScheduledPaused, action)
		}
		code, text := s.schedule(&req, raw)
		if code != 0 {
			return req, code, text
		}
	}
	if paused && req.Candidate == "" {
		return req, http.StatusBadRequest, textf(fmtPausedNoCandidate, strings.ToUpper(action[:1])+action[1:])
	}
	return req, 0, ""
}

// schedule parses scheduled_at into req.
func (s *Server) schedule(req *PatroniSwitchoverRequest, raw json.RawMessage) (int, string) {
	at, code, text := s.scheduledTime(raw, req.Action)
	if code == 0 {
		req.ScheduledAt = &at
	}
	return code, text
}

// stringField reads an optional string field: absent, null and "" are "".
// A field of another type names itself in bad (the first one wins).
func stringField(body map[string]json.RawMessage, key, bad string) (string, string) {
	raw, ok := body[key]
	if !ok || absent(raw) {
		return "", bad
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		if bad == "" {
			bad = key
		}
		return "", bad
	}
	return v, bad
}

// absent reports JSON null or "": Python's falsy values for these keys.
func absent(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "null" || t == `""`
}

// paused is the published config "pause"; false before the first tick.
func (s *Server) paused() bool {
	p := s.state.Load()
	return p != nil && p.snap.Paused
}

// deleteScheduled serves DELETE /switchover: cancel a scheduled switchover.
func (s *Server) deleteScheduled(w http.ResponseWriter, r *http.Request) {
	if !s.available(w, r) {
		return
	}
	code, text := s.switchovers.CancelScheduled(r.Context())
	if code < 100 || code > 599 {
		s.log.Error("invalid status from CancelScheduled", "status", code)
		code, text = http.StatusBadGateway, "cancelling the scheduled switchover failed"
	}
	writeText(w, code, text)
}
