package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// peerTimeout bounds the status fetch of all peers during an election:
// an unreachable peer must not delay the failover by more than this.
const peerTimeout = time.Second

// HTTPPeers fetches peers' GET api_url (/patroni) concurrently.
type HTTPPeers struct {
	Client *http.Client
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
