package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/restapi"
)

// Bounds of the failover tests. They bound waits for events; the
// correctness bounds (RTO < ttl + 5 s, …) are asserted separately so that
// a slow run still reports what it measured.
const (
	// failoverWait bounds the wait for a new leader after the old one died.
	failoverWait = 45 * time.Second
	// rtoSlack is what a failover may take beyond the lease TTL: watch
	// event, peer status fetch (≤ 1 s), race, promote, checkpoint.
	rtoSlack = 5 * time.Second
	// primaryStartTimeout is the dynamic config's default.
	primaryStartTimeout = 10 * time.Second
	// writeAttempt bounds one probe write (connect included).
	writeAttempt = time.Second
)

// decisionEntry is one record of GET /decisions, decoded with the API's
// own type; the methods below are the tests' helpers on it.
type decisionEntry restapi.Decision

func (d decisionEntry) String() string {
	data, _ := json.Marshal(d)
	return string(data)
}

// candidate returns the record's entry for member name.
func (d decisionEntry) candidate(name string) (restapi.CandidateRecord, bool) {
	for _, c := range d.Candidates {
		if c.Name == name {
			return c, true
		}
	}
	return restapi.CandidateRecord{}, false
}

// getJSON GETs path through api and decodes its 200 answer into v; it
// returns the body.
func getJSON(ctx context.Context, api testcluster.API, path string, v any) ([]byte, error) {
	code, body, err := api.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return body, fmt.Errorf("GET %s on %s = %d: %s", path, api.Name, code, compactBody(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return body, fmt.Errorf("GET %s on %s: %w (body %q)", path, api.Name, err, body)
	}
	return body, nil
}

// readDecisions reads GET /decisions (newest first) through api.
func readDecisions(ctx context.Context, api testcluster.API) ([]decisionEntry, error) {
	var ds []decisionEntry
	_, err := getJSON(ctx, api, "/decisions", &ds)
	return ds, err
}

// awaitDecision polls GET /decisions on n until a record of kind (or of
// one of several: "fence|demote") by member, recorded at or after since,
// satisfies match (nil: any), and returns it.
func awaitDecision(t *testing.T, n *testcluster.Node, timeout time.Duration, kind, member string, since time.Time, match func(decisionEntry) error) decisionEntry {
	t.Helper()
	return awaitDecisionVia(t, n.API(), timeout, kind, member, since, match)
}

// awaitDecisionVia is awaitDecision through api (another scheme or
// client).
func awaitDecisionVia(t *testing.T, api testcluster.API, timeout time.Duration, kind, member string, since time.Time, match func(decisionEntry) error) decisionEntry {
	t.Helper()
	var found decisionEntry
	what := fmt.Sprintf("a %q decision by %s in GET /decisions on %s", kind, member, api.Name)
	testcluster.Poll(t, timeout, what, func(ctx context.Context) error {
		ds, err := readDecisions(ctx, api)
		if err != nil {
			return err
		}
		var errs []error
		for _, d := range ds {
			if !slices.Contains(strings.Split(kind, "|"), d.Kind) || d.Member != member || d.At.Before(since) {
				continue
			}
			if match != nil {
				if err := match(d); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", d, err))
					continue
				}
			}
			found = d
			return nil
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return fmt.Errorf("none among %d records", len(ds))
	})
	return found
}

// clusterMember is one member of GET /cluster.
type clusterMember struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Decision string `json:"decision"`
}

func clusterMembers(ctx context.Context, n *testcluster.Node) ([]clusterMember, error) {
	var doc struct {
		Members []clusterMember `json:"members"`
	}
	_, err := getJSON(ctx, n.API(), "/cluster", &doc)
	return doc.Members, err
}

// waitClusterDecision waits until GET /cluster on n shows member with a
// decision containing want, and returns that decision.
func waitClusterDecision(t *testing.T, n *testcluster.Node, timeout time.Duration, member, want string) string {
	t.Helper()
	var got string
	testcluster.Poll(t, timeout, fmt.Sprintf("GET /cluster on %s: member %s with a decision mentioning %q", n.Name, member, want), func(ctx context.Context) error {
		ms, err := clusterMembers(ctx, n)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == member && strings.Contains(m.Decision, want) {
				got = m.Decision
				return nil
			}
		}
		return fmt.Errorf("members %+v", ms)
	})
	return got
}

// tryWrite runs one INSERT-like statement on n, bounded by writeAttempt.
func tryWrite(ctx context.Context, n *testcluster.Node, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, writeAttempt)
	defer cancel()
	return n.Exec(ctx, sql, args...)
}

// waitFirstWrite polls every node in nodes with sql until one accepts it,
// and returns that node and when it did.
func waitFirstWrite(t *testing.T, nodes []*testcluster.Node, timeout time.Duration, sql string, args ...any) (*testcluster.Node, time.Time) {
	t.Helper()
	var winner *testcluster.Node
	var at time.Time
	testcluster.Poll(t, timeout, "a write accepted by one of the surviving nodes", func(ctx context.Context) error {
		failOnCrash(t, nodes...)
		var errs []error
		for _, n := range nodes {
			if err := tryWrite(ctx, n, sql, args...); err != nil {
				errs = append(errs, err)
				continue
			}
			winner, at = n, time.Now()
			return nil
		}
		return errors.Join(errs...)
	})
	return winner, at
}

// waitNewLeader waits until the leader key names a node other than old
// whose GET /primary answers 200, and returns it.
func waitNewLeader(t *testing.T, c *testcluster.Cluster, old string, timeout time.Duration) *testcluster.Node {
	t.Helper()
	return waitLeaderVia(t, c, (*testcluster.Node).API, old, timeout)
}

// waitLeaderVia is waitNewLeader asking GET /primary through via (another
// scheme or client); old "" accepts any leader.
func waitLeaderVia(t *testing.T, c *testcluster.Cluster, via func(*testcluster.Node) testcluster.API, old string, timeout time.Duration) *testcluster.Node {
	t.Helper()
	var leader *testcluster.Node
	testcluster.Poll(t, timeout, fmt.Sprintf("a leader other than %q with GET /primary 200", old), func(ctx context.Context) error {
		failOnCrash(t, c.Nodes()...)
		n, err := leaderOtherThan(ctx, c, via, old)
		leader = n
		return err
	})
	return leader
}

// leaderOtherThan returns the node the leader key names if it is not old
// ("" accepts any) and answers GET /primary through via with 200.
func leaderOtherThan(ctx context.Context, c *testcluster.Cluster, via func(*testcluster.Node) testcluster.API, old string) (*testcluster.Node, error) {
	n, err := c.LeaderNode(ctx)
	if err != nil {
		return nil, err
	}
	if old != "" && n.Name == old {
		return nil, fmt.Errorf("leader key still names %s", old)
	}
	if err := via(n).CheckPrimary(ctx); err != nil {
		return nil, fmt.Errorf("leader key names %s: %w", n.Name, err)
	}
	return n, nil
}

// checkOneLeader checks that the leader key names want and that among the
// nodes whose agent runs, but for skip (e.g. a frozen one), only want
// answers GET /primary with 200.
func checkOneLeader(ctx context.Context, c *testcluster.Cluster, want *testcluster.Node, skip ...*testcluster.Node) error {
	name, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	if name != want.Name {
		return fmt.Errorf("leader key names %s, want %s", name, want.Name)
	}
	var errs []error
	for _, n := range c.Nodes() {
		if !n.Running() || slices.Contains(skip, n) {
			continue
		}
		code, _, err := n.Get(ctx, "/primary")
		switch {
		case err != nil:
			errs = append(errs, err)
		case n == want && code != http.StatusOK:
			errs = append(errs, fmt.Errorf("leader %s: GET /primary = %d", n.Name, code))
		case n != want && code == http.StatusOK:
			errs = append(errs, fmt.Errorf("%s is not the leader but GET /primary = 200", n.Name))
		}
	}
	return errors.Join(errs...)
}

// holdsFor checks an invariant every 100 ms for d and fails the test at
// the first violation. It is the negative of Poll: "nothing happens for
// d", where d is several loop_waits, long enough for an agent that would
// act to have acted.
func holdsFor(t *testing.T, d time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	end := time.Now().Add(d)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		err := check(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: violated after %s: %v", what, d-time.Until(end).Round(time.Millisecond), err)
		}
		select {
		case <-t.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// noLeader is a holdsFor check: no leader key, and none of nodes answers
// GET /primary with 200 or runs PostgreSQL out of recovery.
func noLeader(c *testcluster.Cluster, nodes ...*testcluster.Node) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		switch name, err := c.Leader(ctx); {
		case err == nil:
			return fmt.Errorf("leader key names %s", name)
		case !errors.Is(err, testcluster.ErrNoLeader):
			return fmt.Errorf("leader key: %w", err)
		}
		for _, n := range nodes {
			if code, _, err := n.Get(ctx, "/primary"); err == nil && code == http.StatusOK {
				return fmt.Errorf("%s: GET /primary = 200", n.Name)
			}
			if rec, err := n.QueryInt(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END"); err == nil && rec == 0 {
				return fmt.Errorf("%s: PostgreSQL is out of recovery (writable)", n.Name)
			}
		}
		return nil
	}
}

// walPosition returns a replica's WAL position as its GET /patroni shows
// it (the greater of received and replayed), or a primary's location.
func walPosition(ctx context.Context, n *testcluster.Node) (int64, error) {
	st, err := n.Status(ctx)
	if err != nil {
		return 0, err
	}
	x, _ := st["xlog"].(map[string]any)
	if loc, err := num(x, "location"); err == nil {
		return loc, nil
	}
	recv, err1 := num(x, "received_location")
	replay, err2 := num(x, "replayed_location")
	if err1 != nil && err2 != nil {
		return 0, fmt.Errorf("%s: GET /patroni xlog %v: %w", n.Name, x, errors.Join(err1, err2))
	}
	return max(recv, replay), nil
}

// parseLSN parses PostgreSQL's text form of an LSN ("0/5029778"); 0 when
// it is not one.
func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// lsnInt is SQL that renders an LSN expression as a bigint.
func lsnInt(expr string) string { return "SELECT (" + expr + " - '0/0'::pg_lsn)::bigint" }

// waitStreamingFrom waits until replica runs as a replica (GET /patroni)
// and leader's pg_stat_replication shows it streaming.
func waitStreamingFrom(t *testing.T, replica, leader *testcluster.Node, timeout time.Duration) {
	t.Helper()
	testcluster.Poll(t, timeout, replica.Name+" streaming from "+leader.Name, func(ctx context.Context) error {
		failOnCrash(t, replica, leader)
		st, err := replica.Status(ctx)
		if err != nil {
			return err
		}
		if st["role"] != "replica" || st["state"] != "running" {
			return fmt.Errorf("%s: role=%v state=%v", replica.Name, st["role"], st["state"])
		}
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", replica.Name)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%s: no streaming walsender for %s", leader.Name, replica.Name)
		}
		return nil
	})
}

// failOnCrash fails the test at once when one of nodes' agents exited on
// its own: waiting for it to act would only time out.
func failOnCrash(t *testing.T, nodes ...*testcluster.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := n.Crashed(); err != nil {
			t.Fatal(err)
		}
	}
}

// startHealthy starts a cluster and waits until it is healthy; it
// returns the cluster and its leader.
func startHealthy(t *testing.T, opts testcluster.Options) (*testcluster.Cluster, *testcluster.Node) {
	t.Helper()
	c := testcluster.New(t, opts)
	return c, c.WaitHealthy(t, bootstrapTimeout)
}

// seedTable creates table (cols) on leader, fills it with rows ("" for
// none: "VALUES (1)", "SELECT g FROM generate_series(1, 10) g") and waits
// until every other node holds want rows.
func seedTable(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, table, cols, rows string, want int64) {
	t.Helper()
	mustExec(t, leader, "CREATE TABLE "+table+" ("+cols+")")
	if rows != "" {
		mustExec(t, leader, "INSERT INTO "+table+" "+rows)
	}
	waitRows(t, c.Others(leader.Name), want, "SELECT count(*) FROM "+table)
}

// waitFailoverRTO waits for the first write (insert) another node than old
// accepts after the fault at, logs the RTO and fails the test unless it
// is below ttl + rtoSlack. It returns the new primary.
func waitFailoverRTO(t *testing.T, c *testcluster.Cluster, old *testcluster.Node, at time.Time, fault, insert string) *testcluster.Node {
	t.Helper()
	winner, wrote := waitFirstWrite(t, c.Others(old.Name), failoverWait, insert)
	rto := wrote.Sub(at)
	t.Logf("RTO %s: %.1fs (new primary %s)", fault, rto.Seconds(), winner.Name)
	if bound := c.TTL() + rtoSlack; rto >= bound {
		t.Errorf("%s: first write accepted %s after the fault, want < ttl + %s = %s", fault, rto.Round(time.Millisecond), rtoSlack, bound)
	}
	return winner
}

// mustExec runs sql on n (bounded) and fails the test on error.
func mustExec(t *testing.T, n *testcluster.Node, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	if err := n.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// leaderKeyState identifies one holding of the leader key: a new holder,
// a new lease or a re-created key all differ.
type leaderKeyState struct {
	Holder         string
	Lease          int64
	CreateRevision int64
}

func leaderKey(ctx context.Context, c *testcluster.Cluster) (leaderKeyState, error) {
	resp, err := c.Etcd().Get(ctx, c.Keys().Leader())
	if err != nil {
		return leaderKeyState{}, fmt.Errorf("read the leader key: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return leaderKeyState{}, nil
	}
	kv := resp.Kvs[0]
	return leaderKeyState{Holder: string(kv.Value), Lease: kv.Lease, CreateRevision: kv.CreateRevision}, nil
}

func readLeaderKey(t *testing.T, c *testcluster.Cluster) leaderKeyState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	k, err := leaderKey(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if k.Holder == "" {
		t.Fatal("no leader key")
	}
	return k
}

// queryLSN evaluates an LSN expression on n as an integer.
func queryLSN(t *testing.T, n *testcluster.Node, expr string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	v, err := n.QueryInt(ctx, lsnInt(expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitOptime waits until the status key's optime reaches at least lsn and
// returns it.
func waitOptime(t *testing.T, c *testcluster.Cluster, lsn int64, timeout time.Duration) int64 {
	t.Helper()
	var optime int64
	testcluster.Poll(t, timeout, fmt.Sprintf("status key optime ≥ %X", lsn), func(ctx context.Context) error {
		raw, err := c.Get(ctx, "status")
		if err != nil {
			return err
		}
		var st struct {
			Optime int64 `json:"optime"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("status key %q: %w", raw, err)
		}
		if optime = st.Optime; optime < lsn {
			return fmt.Errorf("optime %X", optime)
		}
		return nil
	})
	return optime
}
