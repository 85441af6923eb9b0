package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestBootstrapThreeNodes: three empty nodes bootstrap into one leader and
// two streaming replicas, publish Patroni-shaped keys and answer the
// health checks by role.
func TestBootstrapThreeNodes(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	t.Logf("leader: %s", leader.Name)

	if err := leader.Exec(ctx, "CREATE TABLE e2e_boot (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Exec(ctx, "INSERT INTO e2e_boot VALUES (1, 'hello')"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, c.Others(leader.Name), 1, "SELECT count(*) FROM e2e_boot WHERE id = 1 AND note = 'hello'")

	if m, err := c.Member(ctx, leader.Name); err == nil {
		t.Logf("member key of the leader: %v", m)
	}
	for _, n := range c.Nodes() {
		testcluster.Poll(t, replicateTimeout, "a complete member key of "+n.Name, func(ctx context.Context) error {
			return checkMemberKey(ctx, c, n, n == leader)
		})
	}
	checkInitialize(t, c, leader)
	checkHealthEndpoints(t, c, leader)
}

// checkMemberKey checks the fields patronictl and peers read (§1.3.1).
func checkMemberKey(ctx context.Context, c *testcluster.Cluster, n *testcluster.Node, isLeader bool) error {
	m, err := c.Member(ctx, n.Name)
	if err != nil {
		return err
	}
	wantRole := "replica"
	if isLeader {
		wantRole = "primary"
	}
	var errs []error
	expect := func(field, want string) {
		if got := str(m[field]); got != want {
			errs = append(errs, fmt.Errorf("%s = %q, want %q", field, got, want))
		}
	}
	expect("conn_url", fmt.Sprintf("postgres://127.0.0.1:%d/postgres", n.PGPort))
	expect("api_url", n.APIURL+"/patroni")
	expect("state", "running")
	expect("role", wantRole)
	if str(m["version"]) == "" {
		errs = append(errs, errors.New("version missing"))
	}
	errs = append(errs, numAtLeast(m, "xlog_location", 1), numAtLeast(m, "timeline", 1))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("member %s %v: %w", n.Name, m, err)
	}
	return nil
}

// checkInitialize: the initialize key holds the system id every node
// reports in GET /patroni, whose document has the fields tools read.
func checkInitialize(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node) {
	t.Helper()
	ctx := t.Context()
	init, err := c.Get(ctx, "initialize")
	if err != nil {
		t.Fatal(err)
	}
	if len(init) == 0 {
		t.Fatalf("initialize key is empty or absent")
	}
	for _, n := range c.Nodes() {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == leader {
			t.Logf("GET /patroni on the leader: %v", st)
		}
		if got := str(st["database_system_identifier"]); got != string(init) {
			t.Errorf("%s: /patroni database_system_identifier = %q, initialize key = %q", n.Name, got, init)
		}
		if err := checkStatusDoc(st, n == leader); err != nil {
			t.Errorf("%s: GET /patroni %v: %v", n.Name, st, err)
		}
	}
}

// checkStatusDoc checks state, role, timeline and xlog of GET /patroni.
func checkStatusDoc(st map[string]any, isLeader bool) error {
	var errs []error
	wantRole, lsnFields := "replica", []string{"received_location", "replayed_location"}
	if isLeader {
		wantRole, lsnFields = "primary", []string{"location"}
	}
	if str(st["state"]) != "running" || str(st["role"]) != wantRole {
		errs = append(errs, fmt.Errorf("state/role %v/%v, want running/%s", st["state"], st["role"], wantRole))
	}
	errs = append(errs, numAtLeast(st, "timeline", 1))
	xlog, _ := st["xlog"].(map[string]any)
	for _, f := range lsnFields {
		if err := numAtLeast(xlog, f, 1); err != nil {
			errs = append(errs, fmt.Errorf("xlog.%w", err))
		}
	}
	return errors.Join(errs...)
}

// checkHealthEndpoints: /primary is 200 only on the leader, /replica only
// on the replicas, /health on all.
func checkHealthEndpoints(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node) {
	t.Helper()
	ctx := t.Context()
	for _, n := range c.Nodes() {
		want := map[string]int{"/primary": http.StatusServiceUnavailable, "/replica": http.StatusOK, "/health": http.StatusOK}
		if n == leader {
			want["/primary"], want["/replica"] = http.StatusOK, http.StatusServiceUnavailable
		}
		for _, path := range []string{"/primary", "/replica", "/health"} {
			code, body, err := n.Get(ctx, path)
			if err != nil {
				t.Error(err)
				continue
			}
			if code != want[path] {
				t.Errorf("%s GET %s = %d, want %d (body %s)", n.Name, path, code, want[path], body)
			}
		}
	}
}

// TestReplicaRestartRejoins: a replica stopped cleanly (its PostgreSQL
// stops with it) misses writes, then rejoins and catches up.
func TestReplicaRestartRejoins(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	replica := c.Others(leader.Name)[0]
	ctx := t.Context()

	if err := leader.Exec(ctx, "CREATE TABLE e2e_rejoin (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := leader.Exec(ctx, "INSERT INTO e2e_rejoin VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, []*testcluster.Node{replica}, 1, "SELECT count(*) FROM e2e_rejoin")

	replica.StopAgent(t)
	if pid, alive := replica.PostmasterPID(); alive {
		t.Errorf("%s: the agent exited on SIGTERM but left PostgreSQL running (pid %d)", replica.Name, pid)
	}
	if err := leader.Exec(ctx, "INSERT INTO e2e_rejoin SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}

	replica.Start(t)
	if l := c.WaitHealthy(t, rejoinTimeout); l != leader {
		t.Errorf("leader changed from %s to %s while a replica restarted", leader.Name, l.Name)
	}
	waitRows(t, []*testcluster.Node{replica}, 101, "SELECT count(*) FROM e2e_rejoin")
}
