package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The etcd series an idle window reads (etcd 3.7; the embedded server
// serves /metrics on its client URL). mvcc counters count keys: a Txn
// that puts one key adds one put and, having more than one operation
// (its compares read keys), one txn — read-only multi-key Txns count as
// txns too. The revision moves once per write transaction, so its delta
// is the number of writes. Lease keep-alives never go through the mvcc
// store nor raft: the lease counter counts them.
const (
	seriesRevision   = "etcd_debugging_mvcc_current_revision"
	seriesPut        = "etcd_mvcc_put_total"
	seriesDelete     = "etcd_mvcc_delete_total"
	seriesTxn        = "etcd_mvcc_txn_total"
	seriesRange      = "etcd_mvcc_range_total"
	seriesRenewed    = "etcd_debugging_lease_renewed_total"
	seriesProposals  = "etcd_server_proposals_committed_total"
	seriesKAStreams  = `grpc_server_started_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"}`
	metricsScrapeTTL = 5 * time.Second
)

// etcdCounters is one scrape of the series above.
type etcdCounters struct {
	at                                           time.Time
	revision, put, del, txn, rng, renewed, props float64
	keepAliveStreams                             float64
}

// EtcdLoad is the etcd load over a window, per node and second (Nodes
// agents in Clusters clusters).
type EtcdLoad struct {
	Clusters int     `json:"clusters"`
	Nodes    int     `json:"nodes"`
	WindowS  float64 `json:"window_s"`
	// WritesPerNodeS counts write transactions (revision increments):
	// each put, delete or writing Txn once.
	WritesPerNodeS float64 `json:"writes_per_node_s"`
	// PutPlusTxnPerNodeS is etcd_mvcc_put_total + etcd_mvcc_txn_total, the
	// issue's definition; it counts a CAS write twice and read-only
	// multi-key Txns (CAS checks) once.
	PutPlusTxnPerNodeS float64 `json:"put_plus_txn_per_node_s"`
	PutsPerNodeS       float64 `json:"puts_per_node_s"`
	DeletesPerNodeS    float64 `json:"deletes_per_node_s"`
	TxnsPerNodeS       float64 `json:"txns_per_node_s"`
	RangesPerNodeS     float64 `json:"ranges_per_node_s"`
	KeepAlivesPerNodeS float64 `json:"keepalives_per_node_s"`
	// KeepAliveStreamsPerNodeS counts LeaseKeepAlive gRPC streams opened:
	// one per keep-alive means the client opens a stream per renewal.
	KeepAliveStreamsPerNodeS float64 `json:"keepalive_streams_per_node_s"`
	ProposalsPerNodeS        float64 `json:"raft_proposals_per_node_s"`
}

// scrapeEtcd reads the counters from an etcd client URL.
func scrapeEtcd(ctx context.Context, clientURL string) (etcdCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsScrapeTTL)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/metrics", nil)
	if err != nil {
		return etcdCounters{}, fmt.Errorf("scrape etcd: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return etcdCounters{}, fmt.Errorf("scrape etcd: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return etcdCounters{}, fmt.Errorf("scrape etcd: GET /metrics = %d", resp.StatusCode)
	}
	series, err := parseMetrics(resp.Body)
	if err != nil {
		return etcdCounters{}, fmt.Errorf("scrape etcd: %w", err)
	}
	c := etcdCounters{at: time.Now()}
	var missing []string
	for name, dst := range map[string]*float64{seriesRevision: &c.revision, seriesPut: &c.put, seriesDelete: &c.del,
		seriesTxn: &c.txn, seriesRange: &c.rng, seriesRenewed: &c.renewed, seriesProposals: &c.props,
		seriesKAStreams: &c.keepAliveStreams} {
		v, ok := series[name]
		if !ok {
			missing = append(missing, name)
		}
		*dst = v
	}
	if len(missing) > 0 {
		return etcdCounters{}, fmt.Errorf("scrape etcd: series missing from /metrics: %s", strings.Join(missing, ", "))
	}
	return c, nil
}

// parseMetrics reads Prometheus text exposition: series (name with its
// labels, as written) → value. Comments and blank lines are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the labels; no
		// timestamps in etcd's output.
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[string(bytes.TrimSpace(line[:i]))] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// MeasureEtcd is etcd's load over window, per node of the clusters and
// nodes it serves: a scrape of clientURL's /metrics before and after.
func MeasureEtcd(ctx context.Context, clientURL string, window time.Duration, clusters, nodes int) (EtcdLoad, error) {
	e0, err := scrapeEtcd(ctx, clientURL)
	if err != nil {
		return EtcdLoad{}, err
	}
	if err := WaitFor(ctx, window); err != nil {
		return EtcdLoad{}, err
	}
	e1, err := scrapeEtcd(ctx, clientURL)
	if err != nil {
		return EtcdLoad{}, err
	}
	return loadBetween(e0, e1, clusters, nodes), nil
}

// loadBetween turns two scrapes into per-node rates.
func loadBetween(a, b etcdCounters, clusters, nodes int) EtcdLoad {
	secs := b.at.Sub(a.at).Seconds()
	rate := func(x, y float64) float64 {
		if secs <= 0 || nodes <= 0 {
			return 0
		}
		return (y - x) / secs / float64(nodes)
	}
	return EtcdLoad{
		Clusters: clusters, Nodes: nodes, WindowS: secs,
		WritesPerNodeS:           rate(a.revision, b.revision),
		PutPlusTxnPerNodeS:       rate(a.put+a.txn, b.put+b.txn),
		PutsPerNodeS:             rate(a.put, b.put),
		DeletesPerNodeS:          rate(a.del, b.del),
		TxnsPerNodeS:             rate(a.txn, b.txn),
		RangesPerNodeS:           rate(a.rng, b.rng),
		KeepAlivesPerNodeS:       rate(a.renewed, b.renewed),
		KeepAliveStreamsPerNodeS: rate(a.keepAliveStreams, b.keepAliveStreams),
		ProposalsPerNodeS:        rate(a.props, b.props),
	}
}
