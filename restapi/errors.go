package restapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ErrNotFound is returned by Backend.Config when the config key is absent.
var ErrNotFound = errors.New("restapi: key not found")

// ErrViewStale is returned (wrapped, with the view's age) by reads served
// from the agent's cluster view when etcd has not answered for a ttl: the
// view may no longer be the cluster's, so it is not served as current.
// The response is 503 with the error's text; nothing is logged per request.
var ErrViewStale = errors.New("the cluster view is stale: etcd has not answered")

// errorBody is every error response: {"error": …, "reasons": […]}.
type errorBody struct {
	Error   string   `json:"error"`
	Reasons []string `json:"reasons,omitempty"`
}

// jsonContentType is shared by every JSON response. Header values are never
// modified after being set, so sharing the slice is safe.
var jsonContentType = []string{"application/json"}

// WriteError writes a JSON error response {"error": msg, "reasons": […]}
// with status code. reasons is omitted when empty.
func WriteError(w http.ResponseWriter, code int, msg string, reasons ...string) {
	body, err := json.Marshal(errorBody{Error: msg, Reasons: reasons})
	if err != nil { // cannot happen for strings; keep the response valid
		body = []byte(`{"error":"internal error"}`)
	}
	writeJSONBytes(w, code, append(body, '\n'))
}

// writeJSONBytes writes an already encoded JSON document.
func writeJSONBytes(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	_, _ = w.Write(body) // a write error means the client went away
}

// writeJSONLine writes raw, a JSON document from the agent or the DCS,
// as a 200 ending in a newline; raw itself is not modified.
func writeJSONLine(w http.ResponseWriter, raw json.RawMessage) {
	writeJSONBytes(w, http.StatusOK, append(raw[:len(raw):len(raw)], '\n'))
}

// notAvailable answers 503 msg for an endpoint whose part is not
// configured; a connection whose body stays unread is closed.
func notAvailable(w http.ResponseWriter, r *http.Request, msg string) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	WriteError(w, http.StatusServiceUnavailable, msg)
}

// writeJSON encodes v and writes it with status code; an encoding failure
// becomes a 500 JSON error.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "encoding the response failed")
		return
	}
	writeJSONBytes(w, code, append(body, '\n'))
}
