package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// rssEvery is how often the idle window samples RSS for its maximum.
const rssEvery = time.Second

// NodeFootprint is one agent process over the idle window (PostgreSQL
// and the agent's children are not included).
type NodeFootprint struct {
	Node     string  `json:"node"`
	Role     string  `json:"role"`
	RSSMB    float64 `json:"rss_mb"`     // at the end of the window
	RSSMaxMB float64 `json:"rss_max_mb"` // highest sample
	// AnonMB and FileMB split RSSMB: anonymous memory (Go heap, stacks,
	// runtime) and file-backed pages (the mapped binary).
	AnonMB float64 `json:"rss_anon_mb"`
	FileMB float64 `json:"rss_file_mb"`
	// CPUSeconds is utime + stime over the window; CPUPercent the same as
	// a share of one core.
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_percent"`
}

// IdleResult is the idle window of the main profile's cluster.
type IdleResult struct {
	WindowS   float64         `json:"window_s"`
	Footprint []NodeFootprint `json:"footprint"`
	Etcd      EtcdLoad        `json:"etcd"`
}

// measureIdle waits for a healthy cluster, lets it run warmup, then
// measures every agent's RSS and CPU and etcd's load over window, with
// nothing else touching the cluster.
func measureIdle(t *testing.T, c *testcluster.Cluster, warmup, window time.Duration) IdleResult {
	ctx := t.Context()
	leader := c.WaitHealthy(t, healthyWait)
	if err := WaitFor(ctx, warmup); err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes()
	pids := make([]string, len(nodes))
	before := make([]procSample, len(nodes))
	maxRSS := make([]int64, len(nodes))
	for i, n := range nodes {
		pids[i] = strconv.Itoa(n.AgentPID())
		s, err := readProc(pids[i])
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		before[i], maxRSS[i] = s, s.mem.RSS
	}
	e0, err := scrapeEtcd(ctx, c.EtcdEndpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := sampleRSS(ctx, pids, maxRSS, window); err != nil {
		t.Fatal(err)
	}
	e1, err := scrapeEtcd(ctx, c.EtcdEndpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	res := IdleResult{WindowS: elapsed.Seconds(), Etcd: loadBetween(e0, e1, 1, len(nodes))}
	for i, n := range nodes {
		after, err := readProc(pids[i])
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		role := "replica"
		if n == leader {
			role = "primary"
		}
		cpu := (after.CPU - before[i].CPU).Seconds()
		res.Footprint = append(res.Footprint, NodeFootprint{Node: n.Name, Role: role,
			RSSMB: mb(after.mem.RSS), RSSMaxMB: mb(max(maxRSS[i], after.mem.RSS)),
			AnonMB: mb(after.mem.Anon), FileMB: mb(after.mem.File),
			CPUSeconds: cpu, CPUPercent: 100 * cpu / elapsed.Seconds()})
	}
	return res
}

// sampleRSS reads every pid's RSS each rssEvery and at the end of
// window, keeping the highest in maxRSS.
func sampleRSS(ctx context.Context, pids []string, maxRSS []int64, window time.Duration) error {
	end := time.Now().Add(window)
	for left := window; left > 0; left = time.Until(end) {
		if err := WaitFor(ctx, min(rssEvery, left)); err != nil {
			return err
		}
		for i, pid := range pids {
			m, err := readMem(pid)
			if err != nil {
				return err
			}
			maxRSS[i] = max(maxRSS[i], m.RSS)
		}
	}
	return nil
}

// WaitFor lets d pass (a measurement window or a warm-up, not a stand-in
// for an event), or returns early with ctx's error.
func WaitFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
