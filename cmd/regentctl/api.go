package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

// maxResponseBytes bounds an API answer read into memory.
const maxResponseBytes = 1 << 20

// apiClient calls the agents' REST API: the leader first, then the other
// members, moving on only when a member cannot be reached at all (a
// refused or timed-out dial), never after a request may have arrived.
type apiClient struct {
	bases   []string      // "http://10.0.0.1:8008", the leader's first
	leader  string        // the leader's name when the client was made ("" if none)
	http    *http.Client  // no overall timeout: streams last; calls use ctx
	timeout time.Duration // bound of one call, and of connecting a stream
}

func newAPIClient(bases []string, timeout time.Duration) *apiClient {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	return &apiClient{bases: bases, http: &http.Client{Transport: tr}, timeout: timeout}
}

// apiResponse is a finished call.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
	base   string // the member that answered
}

// call sends method path with body as JSON (nil: no body), bounded by
// c.timeout per member.
func (c *apiClient) call(ctx context.Context, method, path string, body any) (apiResponse, error) {
	return c.callWithHeader(ctx, method, path, body, nil)
}

// callWithHeader is call with extra request headers (e.g. If-Match).
func (c *apiClient) callWithHeader(ctx context.Context, method, path string, body any, header http.Header) (apiResponse, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return apiResponse{}, fmt.Errorf("encode request: %w", err)
		}
	}
	var errs []error
	for _, base := range c.bases {
		resp, err := c.callOne(ctx, method, base+path, payload, header)
		if err == nil {
			resp.base = base
			return resp, nil
		}
		errs = append(errs, err)
		if !unreachable(err) || ctx.Err() != nil {
			break
		}
	}
	return apiResponse{}, errors.Join(errs...)
}

func (c *apiClient) callOne(ctx context.Context, method, target string, payload []byte, header http.Header) (apiResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return apiResponse{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return apiResponse{}, fmt.Errorf("%s %s: no answer within %s: %w", method, target, c.timeout, err)
		}
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: read answer: %w", method, target, err)
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// unreachable reports a failed dial: the request never left, so another
// member may safely get it.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// apiError is a refusal from the API, decoded from its JSON error body.
type apiError struct {
	status int
	body   restapi.SwitchoverErrorResponse
}

func (e *apiError) Error() string {
	msg := e.body.Error
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.status)
}

// decodeError turns a non-2xx answer into an *apiError.
func decodeError(status int, body []byte) *apiError {
	e := &apiError{status: status}
	if json.Unmarshal(body, &e.body) != nil || e.body.Error == "" {
		e.body.Error = strings.TrimSpace(string(body))
		if len(e.body.Error) > 200 {
			e.body.Error = e.body.Error[:200] + "…"
		}
	}
	return e
}

// responseError reads a non-200 streaming answer into an *apiError.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status says enough
	return decodeError(resp.StatusCode, data)
}

// apiBase turns a member's api_url ("http://10.0.0.1:8008/patroni") into
// the base of its REST API ("http://10.0.0.1:8008").
func apiBase(apiURL string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return "", fmt.Errorf("api_url %q: %w", apiURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("api_url %q is not an http(s) URL", apiURL)
	}
	return u.Scheme + "://" + u.Host, nil
}

// memberAPIs lists the members' REST API bases, the leader's first; leader
// is "" when the cluster has none. Members without a usable api_url are
// skipped.
func memberAPIs(c *dcs.Cluster) (leader string, bases []string) {
	leader = c.LeaderName()
	if m, ok := c.Members[leader]; ok {
		if b, err := apiBase(m.APIURL); err == nil {
			bases = append(bases, b)
		}
	}
	for _, name := range c.MemberNames() {
		if name == leader {
			continue
		}
		if b, err := apiBase(c.Members[name].APIURL); err == nil {
			bases = append(bases, b)
		}
	}
	return leader, bases
}
