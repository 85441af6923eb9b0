package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/demo"
	"github.com/regent-ha/regent/internal/syncbuf"
	"github.com/regent-ha/regent/internal/testcluster"
)

// TestDemo is `make demo` as a newcomer runs it: the cluster comes up
// healthy — seen from outside, exactly one member answers GET /primary
// with 200 and the others GET /replica — and stopping it (Ctrl-C) leaves
// no process, port or directory behind.
func TestDemo(t *testing.T) {
	var roles []string
	out, c := runDemo(t, demo.Options{}, func(ctx context.Context, c *demo.Cluster, _ string) {
		for _, n := range c.Nodes {
			roles = append(roles, fmt.Sprintf("%s primary=%d replica=%d", n.Name,
				getCode(ctx, n.APIPort, "/primary"), getCode(ctx, n.APIPort, "/replica")))
		}
	})
	got := strings.Join(roles, "; ")
	if len(roles) != 3 || strings.Count(got, "primary=200") != 1 || strings.Count(got, "replica=200") != 2 {
		t.Errorf("roles when ready: %s; want one primary (GET /primary 200) and two replicas (GET /replica 200)", got)
	}
	for _, want := range []string{"Try (in another terminal)", "regentctl --etcd", "Stopping the demo cluster"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PgBouncer") {
		t.Errorf("demo without -routing mentions PgBouncer:\n%s", out)
	}
	checkDemoStopped(t, c)
}

// TestDemoRouting is `make demo ROUTING=1` as a newcomer runs it: the
// client loop the demo prints writes through the printed PgBouncer port
// (here 4 clients in transactions, every 10 ms) while a switchover runs:
// 0 failed transactions, 0 lost, the new primary behind the port. Ctrl-C
// then leaves no process (PgBouncer and HAProxy included), port or
// directory behind.
func TestDemoRouting(t *testing.T) {
	const table = "e2e_demo_routing"
	var failed []string
	var acked, lost int
	var longest time.Duration
	out, c := runDemo(t, demo.Options{Routing: true}, func(ctx context.Context, c *demo.Cluster, printed string) {
		m := regexp.MustCompile(`psql -h 127\.0\.0\.1 -p (\d+) -U postgres -qAtc "INSERT INTO ` + demo.WritesTable).FindStringSubmatch(printed)
		if m == nil {
			t.Fatalf("the demo prints no client loop through PgBouncer:\n%s", printed)
		}
		port, _ := strconv.Atoi(m[1])
		if port != c.Routers.PgBouncerPort {
			t.Fatalf("printed PgBouncer port %d, the demo's is %d", port, c.Routers.PgBouncerPort)
		}
		bouncer := &pgbouncerProc{port: port}
		conn, err := bouncer.connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, client int NOT NULL)")
		closeQuietly(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		from := demoLeader(t, ctx, c)
		tc := startTxClients(t, bouncer, table, 4)
		tc.waitProgress(t, 50, "50 transactions through PgBouncer before the switchover")
		api := testcluster.API{Name: from.Name, URL: fmt.Sprintf("http://127.0.0.1:%d", from.APIPort)}
		// Right after a burst of writes a candidate's published lag can
		// exceed maximum_lag_on_failover for a moment (a legitimate 412).
		var started struct{ ID string }
		testcluster.Poll(t, replicateTimeout, "PATCH /switchover accepted", func(ctx context.Context) error {
			code, body, err := api.Do(ctx, http.MethodPatch, "/switchover", switchoverReq{Reason: "demo routing e2e"})
			if err != nil {
				return err
			}
			if code != http.StatusAccepted {
				return fmt.Errorf("PATCH /switchover on %s: %d %s", from.Name, code, body)
			}
			return json.Unmarshal(body, &started)
		})
		testcluster.Poll(t, time.Minute, "switchover "+started.ID+" completed", func(ctx context.Context) error {
			var r switchoverRecord
			if _, err := getJSON(ctx, api, "/switchover/"+started.ID, &r); err != nil {
				return err
			}
			if r.State != "completed" {
				return fmt.Errorf("state %q at %s", r.State, r.Stage)
			}
			return nil
		})
		if to := demoLeader(t, ctx, c); to == from {
			t.Fatalf("%s still leads after the switchover", from.Name)
		}
		tc.waitProgress(t, 50, "50 transactions through PgBouncer after the switchover")
		tc.Stop()
		acked, failed = tc.counts()
		longest = tc.longest
		conn, err = bouncer.connect(ctx) // through PgBouncer: on the new primary
		if err != nil {
			t.Fatal(err)
		}
		defer closeQuietly(ctx, conn)
		lost = len(tc.missingOn(t, ctx, conn, table))
	})
	t.Logf("%d transactions acknowledged through the demo's PgBouncer, longest %s", acked, longest.Round(time.Millisecond))
	if len(failed) > 0 {
		t.Errorf("%d failed transactions through PgBouncer during the switchover, want 0: %v", len(failed), failed)
	}
	if lost > 0 {
		t.Errorf("%d acknowledged transactions missing on the new primary", lost)
	}
	for _, want := range []string{"switchover --yes", fmt.Sprintf("HAProxy   127.0.0.1:%d", c.Routers.HAProxyPort)} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	checkDemoStopped(t, c, c.Routers.PgBouncerPort, c.Routers.HAProxyPort)
}

// runDemo runs the demo with o until it is ready, calls during with the
// cluster and what the demo printed so far (the demo keeps running
// meanwhile), then stops it like Ctrl-C — also when during fails the
// test — and returns its whole output once it has returned.
func runDemo(t *testing.T, o demo.Options, during func(context.Context, *demo.Cluster, string)) (string, *demo.Cluster) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var out syncbuf.Buffer // written by the demo goroutine, read by the test
	ready := make(chan *demo.Cluster, 1)
	var runErr error
	finished := make(chan struct{})
	o.Agent, o.Stdout = testcluster.AgentBinary(t), &out
	o.Ready = func(c *demo.Cluster) { ready <- c }
	go func() {
		defer close(finished)
		runErr = demo.Run(ctx, o)
	}()
	waitStopped := func() {
		stop()
		select {
		case <-finished:
		case <-time.After(2 * time.Minute):
			t.Errorf("the demo did not stop within 2 min of Ctrl-C; output:\n%s", out.String())
		}
	}
	var c *demo.Cluster
	select {
	case c = <-ready:
	case <-finished:
		t.Fatalf("the demo returned before it was ready: %v\n%s", runErr, out.String())
	case <-time.After(3 * time.Minute):
		waitStopped()
		t.Fatalf("the demo neither got healthy nor failed within 3 min; output:\n%s", out.String())
	}
	func() {
		defer waitStopped() // like Ctrl-C
		during(ctx, c, out.String())
	}()
	if runErr != nil {
		t.Fatalf("demo: %v\n%s", runErr, out.String())
	}
	return out.String(), c
}

// checkDemoStopped checks that a stopped demo left no directory, no
// listening port (its members' and extra) and no process behind.
func checkDemoStopped(t *testing.T, c *demo.Cluster, extra ...int) {
	t.Helper()
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo directory %s after stop: %v, want it removed", c.Dir, err)
	}
	ports := extra
	for _, n := range c.Nodes {
		ports = append(ports, n.PGPort, n.APIPort)
	}
	for _, port := range ports {
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still accepts connections after the demo stopped", port)
		}
	}
	if pids := processesIn(c.Dir); len(pids) > 0 {
		t.Errorf("processes still running in %s after the demo stopped: %v", c.Dir, pids)
	}
}

// demoLeader is the member answering GET /primary with 200.
func demoLeader(t *testing.T, ctx context.Context, c *demo.Cluster) *demo.Node {
	t.Helper()
	for _, n := range c.Nodes {
		if getCode(ctx, n.APIPort, "/primary") == http.StatusOK {
			return n
		}
	}
	t.Fatal("no demo member answers GET /primary with 200")
	return nil
}

func getCode(ctx context.Context, port int, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// processesIn lists the pids whose working directory is dir or below it
// (PostgreSQL chdirs into its data directory).
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
