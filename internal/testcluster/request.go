package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Request timeouts: a GET is short, so a stalled or fenced node shows up
// as an error inside a Poll rather than as a hung test; a command (Do)
// waits longer: the agent bounds a switchover command at 10 s and
// Patroni's POST /switchover waits up to 20 s for a new leader. A shorter
// bound comes from ctx.
const (
	restTimeout    = 2 * time.Second
	commandTimeout = 30 * time.Second
)

var (
	restClient    = &http.Client{Timeout: restTimeout}
	commandClient = &http.Client{Timeout: commandTimeout}
)

// API is a client of one agent's REST API, the one the e2e tests, the
// benchmarks and the chaos suite send their requests with.
type API struct {
	Name   string       // the node, in errors
	URL    string       // scheme://host:port, no path
	Client *http.Client // nil: 2 s for Get, 30 s for Do
}

// API is the node's REST API over plain http.
func (n *Node) API() API { return API{Name: n.Name, URL: n.APIURL} }

// Get does a REST GET of path ("/patroni", "/primary", …) on the node's
// API with a 2 s timeout, returning the status code and body.
func (n *Node) Get(ctx context.Context, path string) (int, []byte, error) {
	return n.API().Get(ctx, path)
}

// Do sends a REST request to the node's API (see API.Do).
func (n *Node) Do(ctx context.Context, method, path string, body any, header ...string) (int, []byte, error) {
	return n.API().Do(ctx, method, path, body, header...)
}

// Get does a GET of path and returns the status code and body.
func (a API) Get(ctx context.Context, path string) (int, []byte, error) {
	hc := a.Client
	if hc == nil {
		hc = restClient
	}
	return a.send(ctx, hc, http.MethodGet, path, nil)
}

// CheckPrimary returns nil when GET /primary answers 200, else an error
// saying what it answered.
func (a API) CheckPrimary(ctx context.Context) error {
	code, body, err := a.Get(ctx, "/primary")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET /primary on %s = %d %s", a.Name, code, Compact(body))
	}
	return nil
}

// Do sends a request and returns the status code and body. body is sent
// as is when it is a []byte or a string, as JSON otherwise; nil sends no
// body (a nil []byte too). header holds extra header pairs (name, value, name, value…).
// Bound it with ctx; it gives up after 30 s anyway (unless a.Client says
// otherwise).
func (a API) Do(ctx context.Context, method, path string, body any, header ...string) (int, []byte, error) {
	if len(header)%2 != 0 {
		return 0, nil, fmt.Errorf("%s %s on %s: odd number of header arguments", method, path, a.Name)
	}
	hc := a.Client
	if hc == nil {
		hc = commandClient
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		if b != nil { // a nil slice sends no body, as nil does
			rd = bytes.NewReader(b)
		}
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s on %s: encode body: %w", method, path, a.Name, err)
		}
		rd = bytes.NewReader(data)
	}
	return a.send(ctx, hc, method, path, rd, header...)
}

func (a API) send(ctx context.Context, hc *http.Client, method, path string, body io.Reader, header ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s: %w", method, path, a.Name, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s: %w", method, path, a.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s on %s: read body: %w", method, path, a.Name, err)
	}
	return resp.StatusCode, data, nil
}

// Compact shortens a response body for an error message: white space
// folded, at most 200 bytes.
func Compact(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
