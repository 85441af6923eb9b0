package restapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// MaxBodyBytes bounds a command request body (1 MiB).
const MaxBodyBytes = 1 << 20

// RequestError is a client error found while reading a request body. Status
// is the HTTP status to answer with (411, 400 or 413).
type RequestError struct {
	Status int
	Msg    string
	Err    error // the underlying cause, if any
}

func (e *RequestError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *RequestError) Unwrap() error { return e.Err }

// Write answers the request with e as a JSON error.
func (e *RequestError) Write(w http.ResponseWriter) { WriteError(w, e.Status, e.Error()) }

// DecodeJSON reads a command request's body, which must be a non-empty JSON
// object, into v. As Patroni does, it requires a Content-Length (411
// otherwise, chunked bodies included) and answers 400 for invalid JSON, a
// non-object, an empty object {} or a value that does not fit v, and 413
// beyond MaxBodyBytes. Every error it returns is a *RequestError.
func DecodeJSON(r *http.Request, v any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeObject(data, v, false)
}

// DecodeOptionalJSON is DecodeJSON for endpoints whose body is optional
// (POST /restart, /reinitialize): a request without Content-Length or with
// an empty body leaves v untouched and returns nil, and {} is accepted.
func DecodeOptionalJSON(r *http.Request, v any) error {
	if !hasContentLength(r) || r.ContentLength == 0 {
		return nil
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeObject(data, v, true)
}

func hasContentLength(r *http.Request) bool {
	if r.ContentLength < 0 {
		return false // chunked or unknown
	}
	_, ok := r.Header["Content-Length"]
	return ok || r.ContentLength > 0
}

func readBody(r *http.Request) ([]byte, error) {
	if !hasContentLength(r) {
		return nil, &RequestError{Status: http.StatusLengthRequired, Msg: "Content-Length required"}
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, &RequestError{Status: http.StatusBadRequest, Msg: "reading the body failed", Err: err}
	}
	if len(data) > MaxBodyBytes {
		return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)}
	}
	return data, nil
}

// decodeObject checks that data is one JSON object (non-empty unless
// allowEmpty) and unmarshals it into v.
func decodeObject(data []byte, v any, allowEmpty bool) error {
	if !json.Valid(data) {
		return &RequestError{Status: http.StatusBadRequest, Msg: "body is not valid JSON"}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &RequestError{Status: http.StatusBadRequest, Msg: "body is not a JSON object"}
	}
	if !allowEmpty && bytes.TrimLeft(trimmed[1:], " \t\r\n")[0] == '}' {
		return &RequestError{Status: http.StatusBadRequest, Msg: "body is an empty JSON object"}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &RequestError{Status: http.StatusBadRequest, Msg: "body does not match the request", Err: err}
	}
	return nil
}
