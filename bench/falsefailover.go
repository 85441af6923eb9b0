package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The false-failover run's knobs.
const (
	// leaderSampleEvery is how often the leader key and the leader's
	// lease gauge are read. A leader key deleted and re-created between
	// two samples still shows: its create revision changed.
	leaderSampleEvery = 500 * time.Millisecond
	// sampleTimeout bounds one read (etcd or /metrics): under full load
	// a slow answer is skipped, not waited for.
	sampleTimeout = 2 * time.Second
	// pgbenchScale is pgbench -i -s: 4 branches, 400,000 accounts (about
	// 60 MB), so that 4 clients do not all queue on one branch row.
	pgbenchScale = 4
	// pgbenchChunk bounds one pgbench run (-T): after a failover it
	// restarts on the new leader at the latest then (it ends at once
	// when every client lost its connection).
	pgbenchChunk = 5 * time.Minute
	// etcdBusyPrefix holds the load generator's keys, outside any scope.
	etcdBusyPrefix = "/bench-busy/"
	// etcdBusyValue is the size of each put, a member key's order.
	etcdBusyValue = 512
	// etcdCompactEvery: the generator compacts etcd's history to the
	// revision it saw this long before (etcd's periodic auto-compaction,
	// as production runs it): without it, 30 minutes of puts outgrow
	// the backend quota.
	etcdCompactEvery = 10 * time.Second
)

// FalseFailoverResult is one profile's busy, undisturbed run.
type FalseFailoverResult struct {
	Profile   Profile `json:"profile"`
	DurationS float64 `json:"duration_s"`
	// Failovers counts changes of the leader key's holder; Acquisitions
	// every new leader key (a new create revision), the same member
	// re-taking it included; LeaderlessS is how long the samples found
	// no leader key.
	Failovers    int           `json:"failovers"`
	Acquisitions int           `json:"acquisitions"`
	LeaderlessS  float64       `json:"leaderless_s"`
	Changes      []LeaderEvent `json:"changes,omitempty"`
	// Samples counts the leader key's readings; SampleErrors the ones
	// that failed (etcd slower than sampleTimeout).
	Samples      int `json:"samples"`
	SampleErrors int `json:"sample_errors"`
	// pgbench: transactions over the window, and how many runs it took
	// (more than the chunks when a run ended early: a failover).
	PgbenchTxns int64   `json:"pgbench_transactions"`
	PgbenchTPS  float64 `json:"pgbench_tps"`
	PgbenchRuns int     `json:"pgbench_runs"`
	EtcdPuts    int64   `json:"etcd_puts"`
	EtcdPutsS   float64 `json:"etcd_puts_per_s"`
	// LeaseAge is ttl − safety_margin − the leader's
	// regent_lease_remaining_seconds (ms): how long before the sample the
	// leader sent its last acknowledged lease renewal. The agent sets the
	// gauge at the end of each tick, so a sample is a renewal's round
	// trip plus the rest of its tick, and a renewal that failed adds a
	// loop_wait; the agent fences when it reaches ttl − safety_margin.
	LeaseAge Percentiles `json:"lease_age_ms"`
	Note     string      `json:"note,omitempty"`
}

// LeaderEvent is one observed change of the leader key.
type LeaderEvent struct {
	AtS float64 `json:"at_s"` // since the window's start
	// Leader is the holder ("": no leader key).
	Leader string `json:"leader"`
}

// Percentiles summarizes a sample of milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// percentilesOf is the nearest-rank p50, p99 and the maximum of xs.
func percentilesOf(xs []time.Duration) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Percentiles{N: len(s), P50: ms(percentile(s, 50)), P99: ms(percentile(s, 99)), Max: ms(s[len(s)-1])}
}

// leaderObs is one reading of the leader key (leader "": none).
type leaderObs struct {
	at        time.Duration
	leader    string
	createRev int64
}

// leaderChanges turns the readings into events: the first reading is the
// baseline; a holder other than the last one is a failover, a create
// revision other than the last one an acquisition; leaderless time runs
// from a reading without a key to the next reading.
func leaderChanges(obs []leaderObs) (failovers, acquisitions int, leaderless time.Duration, events []LeaderEvent) {
	if len(obs) == 0 {
		return 0, 0, 0, nil
	}
	prev := obs[0]
	holder, rev := prev.leader, prev.createRev
	for i, o := range obs[1:] {
		if prev.leader == "" {
			leaderless += o.at - obs[i].at
		}
		if o.leader != prev.leader || o.createRev != prev.createRev {
			events = append(events, LeaderEvent{AtS: o.at.Seconds(), Leader: o.leader})
		}
		if o.leader != "" {
			if holder != "" && o.leader != holder {
				failovers++
			}
			if rev != 0 && o.createRev != rev {
				acquisitions++
			}
			holder, rev = o.leader, o.createRev
		}
		prev = o
	}
	return failovers, acquisitions, leaderless, events
}

// runFalseFailover runs c (a fresh cluster at prof's timings, led by
// leader) busy and undisturbed for the window and counts the leader
// changes.
func runFalseFailover(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, prof Profile, p Params, say sayf) FalseFailoverResult {
	binDir, err := testcluster.PGBinDir()
	if err != nil {
		t.Fatal(err)
	}
	pgbench := filepath.Join(binDir, "pgbench")
	if out, err := pgbenchCmd(t.Context(), pgbench, leader, "-i", "-q", "-s", strconv.Itoa(pgbenchScale)).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i on %s: %v: %s", leader.Name, err, out)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res := FalseFailoverResult{Profile: prof}
	start := time.Now()
	end := start.Add(p.FalseFailoverWindow)
	var puts atomic.Int64
	var wg sync.WaitGroup
	startEtcdBusy(ctx, &wg, c.Etcd(), p.EtcdBusyWriters, &puts)
	type pgbenchOutcome struct {
		txns int64
		runs int
		err  error
	}
	pgb := make(chan pgbenchOutcome, 1)
	go func() {
		txns, runs, err := runPgbench(ctx, c, pgbench, p.PgbenchClients, end)
		pgb <- pgbenchOutcome{txns, runs, err}
	}()
	obs, ages, errs := sampleLeader(ctx, c, prof, start, end)
	elapsed := time.Since(start)
	res.EtcdPuts = puts.Load()
	cancel()
	wg.Wait()
	out := <-pgb // ends with ctx
	res.DurationS = elapsed.Seconds()
	res.Samples, res.SampleErrors = len(obs), errs
	var leaderless time.Duration
	res.Failovers, res.Acquisitions, leaderless, res.Changes = leaderChanges(obs)
	res.LeaderlessS = leaderless.Seconds()
	res.LeaseAge = percentilesOf(ages)
	res.PgbenchTxns, res.PgbenchRuns = out.txns, out.runs
	res.PgbenchTPS = float64(out.txns) / elapsed.Seconds()
	res.EtcdPutsS = float64(res.EtcdPuts) / elapsed.Seconds()
	if out.err != nil {
		res.Note = out.err.Error()
	}
	say("false failovers (%s): %d leader changes, %d new leader keys, %.1f s leaderless in %.0f s; pgbench %.0f tps, etcd %.0f puts/s; lease age p99 %.0f ms, max %.0f ms",
		prof.Name, res.Failovers, res.Acquisitions, res.LeaderlessS, res.DurationS, res.PgbenchTPS, res.EtcdPutsS, res.LeaseAge.P99, res.LeaseAge.Max)
	return res
}

// sampleLeader reads the leader key and the leader's lease gauge every
// leaderSampleEvery until end; it returns the key's readings, the lease
// ages and how many readings failed.
func sampleLeader(ctx context.Context, c *testcluster.Cluster, prof Profile, start, end time.Time) ([]leaderObs, []time.Duration, int) {
	var obs []leaderObs
	var ages []time.Duration
	errs := 0
	full := time.Duration(prof.TTL-prof.SafetyMargin) * time.Second
	tick := time.NewTicker(leaderSampleEvery)
	defer tick.Stop()
	for time.Now().Before(end) {
		o, err := readLeader(ctx, c)
		if err != nil {
			errs++
		} else {
			o.at = time.Since(start)
			obs = append(obs, o)
			if n := c.Node(o.leader); n != nil {
				if rem, err := leaseRemaining(ctx, n); err == nil && rem > 0 {
					ages = append(ages, full-rem)
				}
			}
		}
		select {
		case <-ctx.Done():
			return obs, ages, errs
		case <-tick.C:
		}
	}
	return obs, ages, errs
}

// readLeader reads the leader key: its holder and create revision.
func readLeader(ctx context.Context, c *testcluster.Cluster) (leaderObs, error) {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	resp, err := c.Etcd().Get(ctx, c.Keys().Leader())
	if err != nil {
		return leaderObs{}, err
	}
	if len(resp.Kvs) == 0 {
		return leaderObs{}, nil
	}
	return leaderObs{leader: string(resp.Kvs[0].Value), createRev: resp.Kvs[0].CreateRevision}, nil
}

// leaseRemaining reads regent_lease_remaining_seconds from n's /metrics.
func leaseRemaining(ctx context.Context, n *testcluster.Node) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	code, body, err := n.Get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /metrics on %s = %d", n.Name, code)
	}
	series, err := parseMetrics(strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	v, ok := seriesValue(series, "regent_lease_remaining_seconds")
	if !ok {
		return 0, errors.New("no regent_lease_remaining_seconds")
	}
	return time.Duration(v * float64(time.Second)), nil
}

// seriesValue is the value of the series called name, whatever its
// labels (the agent labels its own with scope); the first one found.
func seriesValue(series map[string]float64, name string) (float64, bool) {
	for k, v := range series {
		if k == name || strings.HasPrefix(k, name+"{") {
			return v, true
		}
	}
	return 0, false
}

// pgbenchCmd is pgbench against n's PostgreSQL as the superuser, with
// args before the database name.
func pgbenchCmd(ctx context.Context, pgbench string, n *testcluster.Node, args ...string) *exec.Cmd {
	args = append(args, "-h", "127.0.0.1", "-p", strconv.Itoa(n.PGPort), "-U", testcluster.SuperuserName, "postgres")
	cmd := exec.CommandContext(ctx, pgbench, args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+testcluster.SuperuserPassword, "PGCONNECT_TIMEOUT=5")
	return cmd
}

var pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)

// runPgbench runs pgbench at full speed (no rate limit) against the
// leader until end, in runs of at most pgbenchChunk, starting a new run
// on whoever leads when one ends early; it returns the transactions
// processed and the number of runs.
func runPgbench(ctx context.Context, c *testcluster.Cluster, pgbench string, clients int, end time.Time) (int64, int, error) {
	var txns int64
	runs := 0
	var last error
	for ctx.Err() == nil {
		left := time.Until(end)
		if left < 2*time.Second {
			break
		}
		leader, err := c.LeaderNode(ctx)
		if err != nil {
			last = err
			select { // no leader: the sampler records it; try again soon
			case <-ctx.Done():
			case <-time.After(leaderSampleEvery):
			}
			continue
		}
		secs := int(min(left, pgbenchChunk) / time.Second)
		out, err := pgbenchCmd(ctx, pgbench, leader, "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)),
			"-T", strconv.Itoa(secs)).CombinedOutput()
		runs++
		if m := pgbenchProcessed.FindSubmatch(out); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			txns += n
		}
		if err != nil && ctx.Err() == nil {
			last = fmt.Errorf("pgbench on %s: %w: %s", leader.Name, err, lastLine(out))
		}
	}
	if runs == 0 && last != nil {
		return 0, 0, last
	}
	if last != nil {
		return txns, runs, fmt.Errorf("last pgbench error: %w", last)
	}
	return txns, runs, nil
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// startEtcdBusy starts writers goroutines that put etcdBusyValue-byte
// values under etcdBusyPrefix as fast as etcd answers, counting into
// puts, and one that compacts the history every etcdCompactEvery to the
// revision it saw the time before. They stop with ctx; wg waits for them.
func startEtcdBusy(ctx context.Context, wg *sync.WaitGroup, cli *clientv3.Client, writers int, puts *atomic.Int64) {
	if writers == 0 {
		return
	}
	value := strings.Repeat("x", etcdBusyValue)
	var rev atomic.Int64
	for i := range writers {
		wg.Go(func() {
			key := etcdBusyPrefix + strconv.Itoa(i)
			for ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, sampleTimeout)
				resp, err := cli.Put(pctx, key, value)
				cancel()
				if err == nil {
					puts.Add(1)
					rev.Store(resp.Header.Revision)
				}
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(etcdCompactEvery)
		defer tick.Stop()
		var prev int64
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if prev > 0 {
				cctx, cancel := context.WithTimeout(ctx, sampleTimeout)
				_, _ = cli.Compact(cctx, prev) // best effort: the next tick compacts further
				cancel()
			}
			prev = rev.Load()
		}
	})
}
