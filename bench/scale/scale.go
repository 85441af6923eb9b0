package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/bench"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

// Bounds of the scale measurement.
const (
	etcdStartWait = 30 * time.Second
	// fleetUpWait bounds the wait for every cluster to bootstrap (a fake
	// PostgreSQL bootstraps and clones at once; the agents need a few
	// loop_waits).
	fleetUpWait = 120 * time.Second
	// scaleWarmup lets a freshly bootstrapped fleet settle (first member
	// refreshes, decision records) before the window.
	scaleWarmup     = 5 * time.Second
	nodesPerCluster = 3
)

// Run runs N clusters of 3 in-process agents with fake PostgreSQL
// against one embedded etcd, for each N of counts (ascending; clusters
// are added between points), and measures etcd's load per node. It is a
// bench.ScaleFunc.
func Run(t *testing.T, prof bench.Profile, counts []int, window time.Duration, say func(format string, args ...any)) []bench.EtcdLoad {
	ctx := t.Context()
	sctx, cancel := context.WithTimeout(ctx, etcdStartWait)
	e, err := etcdembed.Start(sctx, etcdembed.Config{Dir: t.TempDir()})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.close)
	f := &fleet{prof: prof, endpoint: e.Endpoints()[0], log: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	t.Cleanup(f.stop)
	check, err := dcs.Connect(ctx, dcs.Config{Endpoints: e.Endpoints()}, dcs.NewKeys(testNamespace, "bench-check"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := check.Close(); err != nil {
			t.Errorf("close the check client: %v", err)
		}
	})
	counts = slices.Sorted(slices.Values(counts))
	var out []bench.EtcdLoad
	for _, n := range counts {
		say("etcd scale: starting clusters up to %d (3 fake-PostgreSQL agents each)", n)
		for len(f.scopes) < n {
			if err := f.addCluster(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := bench.PollUntil(ctx, fleetUpWait, 250*time.Millisecond, func() error { return fleetUp(ctx, check.Raw(), f.scopes) }); err != nil {
			t.Fatalf("%d clusters: %v", n, err)
		}
		if err := bench.WaitFor(ctx, scaleWarmup); err != nil {
			t.Fatal(err)
		}
		l, err := bench.MeasureEtcd(ctx, f.endpoint, window, n, n*nodesPerCluster)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
		say("etcd scale, %d clusters: %.3f writes/s, %.3f keep-alives/s per node", n, l.WritesPerNodeS, l.KeepAlivesPerNodeS)
	}
	return out
}

const testNamespace = "/service/"

// fleet is the in-process agents of the scale measurement.
type fleet struct {
	prof     bench.Profile
	endpoint string
	log      *slog.Logger

	scopes  []string
	wg      sync.WaitGroup
	clients []*dcs.Client
}

// addCluster starts the three agents of a new cluster. They run until
// ctx ends; stop waits for them.
func (f *fleet) addCluster(ctx context.Context) error {
	scope := fmt.Sprintf("bench-%03d", len(f.scopes)+1)
	sysID := uint64(7_100_000_000_000_000_000) + uint64(len(f.scopes))
	fakes := map[string]*pgtest.Fake{}
	for i := 1; i <= nodesPerCluster; i++ {
		fakes[fmt.Sprintf("pg%d", i)] = pgtest.NewEmpty(sysID)
	}
	for name, pg := range fakes {
		cfg, err := f.prof.AgentConfig(name, scope, f.endpoint)
		if err != nil {
			return fmt.Errorf("config of %s/%s: %w", scope, name, err)
		}
		cli, err := dcs.Connect(ctx, cfg.Etcd, dcs.NewKeys(cfg.Namespace, scope), f.log)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", scope, name, err)
		}
		f.clients = append(f.clients, cli)
		ag, err := agent.New(agent.Options{Config: cfg, DCS: cli, Postgres: pg, Publisher: discard{},
			Peers: fakePeers(fakes), Logger: f.log})
		if err != nil {
			return fmt.Errorf("%s/%s: %w", scope, name, err)
		}
		f.wg.Go(func() { _ = cli.Run(ctx) })
		f.wg.Go(func() {
			if err := ag.Run(ctx); err != nil {
				f.log.Error("agent stopped", "member", name, "scope", scope, "err", err)
			}
		})
	}
	f.scopes = append(f.scopes, scope)
	return nil
}

// stop waits for every agent (their ctx has ended: the test's) and
// closes their clients. It runs before etcd closes.
func (f *fleet) stop() {
	f.wg.Wait()
	for _, c := range f.clients {
		_ = c.Close()
	}
}

// fleetUp checks that every scope has a leader and three running members.
func fleetUp(ctx context.Context, cli *clientv3.Client, scopes []string) error {
	resp, err := cli.Get(ctx, testNamespace, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	leaders := map[string]bool{}
	running := map[string]int{}
	for _, kv := range resp.Kvs {
		rest, _ := strings.CutPrefix(string(kv.Key), testNamespace)
		scope, key, _ := strings.Cut(rest, "/")
		switch {
		case key == "leader":
			leaders[scope] = true
		case strings.HasPrefix(key, "members/"):
			var m dcs.Member
			if json.Unmarshal(kv.Value, &m) == nil && m.State == "running" {
				running[scope]++
			}
		}
	}
	for _, s := range scopes {
		if !leaders[s] || running[s] < nodesPerCluster {
			return fmt.Errorf("cluster %s: leader %v, %d of %d members running", s, leaders[s], running[s], nodesPerCluster)
		}
	}
	return nil
}

// discard is a Publisher with no REST API behind it.
type discard struct{}

func (discard) Publish(*restapi.Snapshot) {}

// fakePeers answers an election's status fetch from the cluster's fakes,
// as GET /patroni would.
type fakePeers map[string]*pgtest.Fake

func (p fakePeers) Fetch(ctx context.Context, members map[string]dcs.Member) []agent.PeerStatus {
	var out []agent.PeerStatus
	for name := range members {
		ps := agent.PeerStatus{Name: name}
		if f, ok := p[name]; ok {
			if st, err := f.Status(ctx); err == nil {
				ps.Reachable, ps.State = true, "running"
				ps.InRecovery, ps.WAL, ps.Timeline = st.InRecovery, st.WALPosition(), int(st.Timeline)
			}
		}
		if !ps.Reachable {
			ps.Err = "not running"
		}
		out = append(out, ps)
	}
	return out
}

// testLogWriter sends each log line to t.Log until close (the agents may
// log during the cleanup, after which t.Log panics).
type testLogWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
