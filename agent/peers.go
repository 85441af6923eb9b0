package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// peerTimeout bounds the status fetch of all peers during an election:
// an unreachable peer must not delay the failover by more than this.
const peerTimeout = time.Second

// HTTPPeers fetches peers' GET api_url (/patroni) concurrently, and makes
// the leader's failsafe calls (FailsafeCaller).
type HTTPPeers struct {
	Client *http.Client
	// Auth is sent (HTTP Basic) with POST /failsafe when set: the members
	// guard their writes with the cluster's restapi.authentication.
	Auth restapi.Authentication
}

// NewHTTPPeers returns a fetcher with a client that keeps no connection
// open between elections. tlsConfig (nil for plain http) trusts the peers'
// REST certificates when the API serves https.
func NewHTTPPeers(tlsConfig *tls.Config) *HTTPPeers {
	return &HTTPPeers{Client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsConfig}}}
}

// Fetch asks every member concurrently; it returns when all answered or ctx ended.
func (h *HTTPPeers) Fetch(ctx context.Context, members map[string]dcs.Member) []PeerStatus {
	out := make([]PeerStatus, 0, len(members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := h.fetchOne(ctx, name, m.APIURL)
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (h *HTTPPeers) fetchOne(ctx context.Context, name, url string) PeerStatus {
	p := PeerStatus{Name: name}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		p.Err = err.Error()
		return p
	}
	if err := parsePeerStatus(body, &p); err != nil {
		p.Err = err.Error()
		return p
	}
	p.Reachable = true
	return p
}

// peerDoc is the part of a /patroni document an election reads
// (patroni-compat.md §2.2: xlog or wal, timeline, tags, watchdog_failed).
type peerDoc struct {
	XLog *struct {
		Location         *uint64 `json:"location"`
		ReceivedLocation *uint64 `json:"received_location"`
		ReplayedLocation *uint64 `json:"replayed_location"`
	} `json:"xlog"`
	WAL            json.RawMessage `json:"wal"`
	Timeline       int             `json:"timeline"`
	Tags           config.Tags     `json:"tags"`
	WatchdogFailed bool            `json:"watchdog_failed"`
	State          string          `json:"state"`
	Replication    []struct {
		ApplicationName string `json:"application_name"`
		State           string `json:"state"`
	} `json:"replication"`
}

func parsePeerStatus(body []byte, p *PeerStatus) error {
	var d peerDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("invalid status document: %w", err)
	}
	if d.XLog == nil && len(d.WAL) > 0 {
		_ = json.Unmarshal([]byte(`{"xlog":`+string(d.WAL)+`}`), &d)
	}
	if d.XLog == nil {
		return fmt.Errorf("status document has no xlog")
	}
	x := d.XLog
	if x.Location != nil && *x.Location > 0 {
		p.WAL = postgres.LSN(*x.Location)
	} else {
		p.InRecovery = true
		if x.ReceivedLocation != nil {
			p.WAL = postgres.LSN(*x.ReceivedLocation)
		}
		if x.ReplayedLocation != nil {
			p.Replayed = postgres.LSN(*x.ReplayedLocation)
			p.WAL = max(p.WAL, p.Replayed)
		}
	}
	p.Timeline = d.Timeline
	p.NoFailover = d.Tags.NoFailover()
	p.Priority = d.Tags.FailoverPriority()
	p.WatchdogFailed = d.WatchdogFailed
	p.State = d.State
	for _, r := range d.Replication {
		if r.State == "streaming" {
			p.Streaming = append(p.Streaming, r.ApplicationName)
		}
	}
	return nil
}

// CallFailsafe posts body to every member's /failsafe concurrently
// (FailsafeCaller); a member accepts with 200 and the body "Accepted",
// Patroni's answer.
func (h *HTTPPeers) CallFailsafe(ctx context.Context, apiURLs map[string]string, body []byte) map[string]error {
	out := make(map[string]error, len(apiURLs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, apiURL := range apiURLs {
		wg.Go(func() {
			err := h.callFailsafe(ctx, apiURL, body)
			mu.Lock()
			out[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (h *HTTPPeers) callFailsafe(ctx context.Context, apiURL string, body []byte) error {
	u, err := endpointURL(apiURL, "/failsafe")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Auth.Enabled() {
		req.SetBasicAuth(h.Auth.Username, h.Auth.Password.Reveal())
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(answer) != "Accepted" {
		return fmt.Errorf("%d %q", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return nil
}

// endpointURL replaces api_url's path (/patroni) with path, as Patroni's
// Member.get_endpoint_url does.
func endpointURL(apiURL, path string) (string, error) {
	if apiURL == "" {
		return "", errors.New("member publishes no api_url")
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return "", fmt.Errorf("api_url %q: %w", apiURL, err)
	}
	u.Path, u.RawQuery = path, ""
	return u.String(), nil
}
