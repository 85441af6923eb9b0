package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Patroni's texts for POST /restart (patroni-compat.md §2.4), verbatim
// where Patroni has one.
const (
	textRestartPaused = "Can't schedule restart in the paused state"
	fmtUnknownFilter  = "Unknown filter for the scheduled restart: %s"
	textBadRole       = "PostgreSQL role should be either master, primary or replica"
	fmtBadVersion     = "Invalid PostgreSQL version format: N or N.N is accepted: %s"
	textBadTimeout    = "Timeout should be a positive number of seconds"
	restartAction     = "restart"
	maxRestartTimeout = 24 * time.Hour
)

// pgVersion is what postgres_version may look like: "15" or "15.4".
var pgVersion = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,4})?$`)

// parseRestart reads POST /restart's optional body in Patroni's order: the
// paused check on a schedule, then each key in the order sent, stopping at
// the first bad one. code is 0 when the request may go on.
func (s *Server) parseRestart(r *http.Request) (RestartRequest, int, string) {
	var req RestartRequest
	var raw json.RawMessage
	if err := DecodeOptionalJSON(r, &raw); err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return req, re.Status, re.Msg
		}
		return req, http.StatusBadRequest, "invalid request body"
	}
	fields, err := orderedFields(raw)
	if err != nil {
		return req, http.StatusBadRequest, "body is not a JSON object"
	}
	if s.paused() {
		for _, f := range fields {
			if f.key == "schedule" {
				return req, http.StatusInternalServerError, textRestartPaused
			}
		}
	}
	for _, f := range fields {
		if code, text := s.restartFilter(&req, f.key, f.value); code != 0 {
			return req, code, text
		}
	}
	return req, 0, ""
}

// restartFilter applies one key of the body to req.
func (s *Server) restartFilter(req *RestartRequest, key string, value json.RawMessage) (int, string) {
	switch key {
	case "schedule":
		at, code, text := s.scheduledTime(value, restartAction)
		if code != 0 {
			return code, text
		}
		req.Schedule = &at
	case "role":
		var role string
		if json.Unmarshal(value, &role) != nil || (role != "master" && role != "primary" && role != "replica") {
			return http.StatusBadRequest, textBadRole
		}
		req.Role = role
	case "postgres_version":
		v, ok := versionFilter(value)
		if !ok {
			return http.StatusBadRequest, fmt.Sprintf(fmtBadVersion, shortJSON(value))
		}
		req.PostgresVersion = v
	case "timeout":
		d, ok := parseTimeout(value)
		if !ok {
			return http.StatusBadRequest, textBadTimeout
		}
		req.Timeout = d
	case "restart_pending": // any value means "only if a restart is pending"
		req.RestartPending = true
	default:
		return http.StatusBadRequest, fmt.Sprintf(fmtUnknownFilter, key)
	}
	return 0, ""
}

// scheduledTime reads the time of a scheduled action (switchover's
// scheduled_at, restart's schedule) as Patroni does: 422 unparsable or
// past, 400 without a zone; code is 0 when at is good.
func (s *Server) scheduledTime(raw json.RawMessage, action string) (at time.Time, code int, text string) {
	var str string
	if json.Unmarshal(raw, &str) != nil { // dateutil raises TypeError on a non-string
		return at, http.StatusUnprocessableEntity, textUnparsable
	}
	at, hasZone, err := parseSchedule(str)
	switch {
	case err != nil:
		return at, http.StatusUnprocessableEntity, textUnparsable
	case !hasZone:
		return at, http.StatusBadRequest, textf(fmtNoZone, action)
	case at.Before(s.now()):
		return at, http.StatusUnprocessableEntity, textf(fmtPast, action)
	}
	return at, 0, ""
}

// versionFilter accepts "15", "15.4" or the JSON numbers 15 and 15.4.
func versionFilter(value json.RawMessage) (string, bool) {
	v := jsonText(value)
	return v, pgVersion.MatchString(v)
}

// parseTimeout reads a restart timeout as Patroni's parse_int(value, "s")
// does: a positive JSON number of seconds, or a string of one with an
// optional unit (ms, s, min, h, d), e.g. 30, "30", "30s", "2min". ok is
// false for anything else, zero, negative or longer than a day.
func parseTimeout(value json.RawMessage) (time.Duration, bool) {
	var num float64
	var str string
	switch {
	case json.Unmarshal(value, &num) == nil:
		return secondsDuration(num)
	case json.Unmarshal(value, &str) == nil:
		return parseTimeoutString(str)
	}
	return 0, false
}

func secondsDuration(sec float64) (time.Duration, bool) {
	if math.IsNaN(sec) || sec <= 0 || sec > maxRestartTimeout.Seconds() {
		return 0, false
	}
	return time.Duration(sec * float64(time.Second)), true
}

// timeoutUnits are the units Patroni's parse_int accepts for seconds.
var timeoutUnits = []struct {
	suffix string
	unit   time.Duration
}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}, {"d", 24 * time.Hour}}

func parseTimeoutString(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	unit := time.Second
	for _, u := range timeoutUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, unit = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.unit
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" || strings.ContainsAny(s, "eEnN") { // no exponents, NaN or Inf
		return 0, false
	}
	return secondsDuration(n * unit.Seconds())
}

// field is one key of a JSON object with its raw value.
type field struct {
	key   string
	value json.RawMessage
}

// orderedFields returns an object's keys in the order sent (Patroni stops
// at the first bad one). raw nil means no body: no fields.
func orderedFields(raw json.RawMessage) ([]field, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fields = append(fields, field{key: key, value: v})
	}
	return fields, nil
}

// jsonText is a JSON string's value, or any other value's literal
// (a number, null, …).
func jsonText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// shortJSON quotes a bad value for a message, bounded.
func shortJSON(v json.RawMessage) string {
	s := jsonText(v)
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return s
}

// ParseTimestamp reads a timestamp as leniently as the schedule fields of
// POST /switchover, /failover and /restart do (dateutil's ISO-8601 shapes,
// e.g. "2030-01-01T00:00+00"), so that a client can check a value before
// sending it. hasZone is false when the value names no zone: t is then
// read as UTC, and the server would refuse it.
func ParseTimestamp(s string) (t time.Time, hasZone bool, err error) { return parseSchedule(s) }
