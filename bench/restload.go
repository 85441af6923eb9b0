package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// restPath is the health check under load: what HAProxy asks every node.
const restPath = "/primary"

// RESTSample is one load run. Latencies are the client's: request
// written → body read, in the load generator, which shares the machine's
// cores with the agent (its CPU use is reported beside the server's).
type RESTSample struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// ServerCores and LoadgenCores are the CPU time the agent and this
	// process (the load generator, plus the in-process etcd) used,
	// divided by the run's duration.
	ServerCores  float64 `json:"server_cores"`
	LoadgenCores float64 `json:"loadgen_cores"`
	// ServerRSSMB is the agent's RSS at the end of the run.
	ServerRSSMB float64 `json:"server_rss_mb"`
}

// RESTResult is every load run against the leader.
type RESTResult struct {
	Path      string       `json:"path"`
	Node      string       `json:"node"`
	Conns     int          `json:"conns"`
	DurationS float64      `json:"duration_s"`
	Reps      int          `json:"reps"`
	Failed    int          `json:"failed"`
	Samples   []RESTSample `json:"samples"`
	RPS       Summary      `json:"rps"`
	P50       Summary      `json:"p50_ms"`
	P99       Summary      `json:"p99_ms"`
}

func runREST(t *testing.T, c *testcluster.Cluster, p Params, say sayf) RESTResult {
	res := RESTResult{Path: restPath, Conns: p.RESTConns, DurationS: p.RESTDuration.Seconds(), Reps: p.RESTReps}
	res.Failed = repeat(t, c, "rest", p.RESTReps, say, func(t *testing.T, rep int) {
		leader := c.WaitHealthy(t, healthyWait)
		res.Node = leader.Name
		s, err := loadAgent(t.Context(), leader, p.RESTConns, p.RESTDuration)
		if err != nil {
			t.Fatal(err)
		}
		res.Samples = append(res.Samples, s)
		say("rest %d/%d: %.0f req/s, p50 %.3f ms, p99 %.3f ms, %d errors", rep, p.RESTReps, s.RPS, s.P50Ms, s.P99Ms, s.Errors)
	})
	res.RPS = summarizeOf(res.Samples, func(s RESTSample) (float64, bool) { return s.RPS, true })
	res.P50 = summarizeOf(res.Samples, func(s RESTSample) (float64, bool) { return s.P50Ms, true })
	res.P99 = summarizeOf(res.Samples, func(s RESTSample) (float64, bool) { return s.P99Ms, true })
	return res
}

// loadAgent runs loadGET against n's restPath and adds the CPU use of
// the agent and of this process.
func loadAgent(ctx context.Context, n *testcluster.Node, conns int, d time.Duration) (RESTSample, error) {
	pid := strconv.Itoa(n.AgentPID())
	srv0, err := readProc(pid)
	if err != nil {
		return RESTSample{}, err
	}
	self0, err := readProc("self")
	if err != nil {
		return RESTSample{}, err
	}
	start := time.Now()
	s, err := loadGET(ctx, n.APIURL+restPath, conns, d)
	if err != nil {
		return s, err
	}
	elapsed := time.Since(start).Seconds()
	srv1, err := readProc(pid)
	if err != nil {
		return s, err
	}
	self1, err := readProc("self")
	if err != nil {
		return s, err
	}
	s.ServerCores = (srv1.CPU - srv0.CPU).Seconds() / elapsed
	s.LoadgenCores = (self1.CPU - self0.CPU).Seconds() / elapsed
	s.ServerRSSMB = mb(srv1.mem.RSS)
	return s, nil
}

// loadGET sends GET url over conns keep-alive connections, each request
// right after the previous answer on its connection, for d. A non-200
// answer or a transport error counts as an error (not in the latencies).
func loadGET(ctx context.Context, url string, conns int, d time.Duration) (RESTSample, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	// One request per connection first, so that the timed part measures
	// requests, not TCP handshakes.
	if err := warmConns(ctx, client, url, conns); err != nil {
		return RESTSample{}, err
	}
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, conns)
	errs := make([]int, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { lat[i], errs[i] = hammer(lctx, client, url) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	s := RESTSample{Requests: len(all), RPS: float64(len(all)) / elapsed.Seconds(),
		P50Ms: ms(percentile(all, 50)), P99Ms: ms(percentile(all, 99))}
	if len(all) > 0 {
		s.MaxMs = ms(all[len(all)-1])
	}
	for _, e := range errs {
		s.Errors += e
	}
	if len(all) == 0 {
		return s, fmt.Errorf("load GET %s: no successful request (%d errors)", url, s.Errors)
	}
	return s, nil
}

func warmConns(ctx context.Context, client *http.Client, url string, conns int) error {
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { _, errs[i] = getOnce(ctx, client, url) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("load GET %s: warm-up: %w", url, err)
		}
	}
	return nil
}

// hammer sends requests back to back until ctx ends.
func hammer(ctx context.Context, client *http.Client, url string) ([]time.Duration, int) {
	lat := make([]time.Duration, 0, 1<<14)
	errs := 0
	for ctx.Err() == nil {
		start := time.Now()
		ok, err := getOnce(ctx, client, url)
		if ctx.Err() != nil {
			break // cut by the end of the run: neither a sample nor an error
		}
		if err != nil || !ok {
			errs++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	return lat, errs
}

// getOnce does one GET, reads the body to the end (so the connection is
// reused) and reports whether the answer was 200.
func getOnce(ctx context.Context, client *http.Client, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK, err
}
