package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of patronictl runs.
const (
	// patronictlTimeout bounds one patronictl run: it hangs forever when
	// etcd is unreachable (patroni-compat.md §4.1).
	patronictlTimeout = 20 * time.Second
	// patronictlLong bounds a patronictl command that waits for the
	// cluster (switchover, failover, restart).
	patronictlLong = 60 * time.Second
)

// TestPatronictlList: Patroni's own CLI (3.0.2) reads our etcd keys and
// lists the cluster as it would a Patroni cluster.
func TestPatronictlList(t *testing.T) {
	needPatronictl(t)
	c, leader := startHealthy(t, testcluster.Options{})
	cfg := c.PatronictlConfig(t)

	// Replicas' lag is /status.optime − their member xlog_location: it is
	// small only once both were refreshed after the last write.
	var rows []map[string]any
	testcluster.Poll(t, 30*time.Second, "patronictl list: 1 Leader + 2 Replicas, running, lag ≤ 1 MB", func(context.Context) error {
		out, err := patronictl(t, cfg, "list", "-f", "json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &rows); err != nil {
			return fmt.Errorf("parse %q: %w", out, err)
		}
		return checkList(rows, c, leader)
	})
	table, err := patronictl(t, cfg, "list")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("patronictl list:\n%s", table)
}

// needPatronictl fails the test unless Patroni's CLI is on PATH: the
// compatibility tests cannot run without it.
func needPatronictl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("patronictl"); err != nil {
		t.Fatalf("patronictl not on PATH (%v): install patroni (apt-get install -y patroni)", err)
	}
}

func patronictl(t *testing.T, cfg string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(t.Context(), patronictlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "patronictl", append([]string{"-c", cfg}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("patronictl %v: %w: %s", args, err, ee.Stderr)
		}
		return nil, fmt.Errorf("patronictl %v: %w", args, err)
	}
	return out, nil
}

// checkList checks patronictl's rows: Member, Host, Role, State, TL, Lag in MB.
func checkList(rows []map[string]any, c *testcluster.Cluster, leader *testcluster.Node) error {
	if len(rows) != len(c.Nodes()) {
		return fmt.Errorf("%d members listed, want %d: %v", len(rows), len(c.Nodes()), rows)
	}
	var errs []error
	for _, row := range rows {
		n := c.Node(str(row["Member"]))
		if n == nil {
			errs = append(errs, fmt.Errorf("unknown member %v", row))
			continue
		}
		wantRole := "Replica"
		if n == leader {
			wantRole = "Leader"
		}
		if got := str(row["Role"]); got != wantRole {
			errs = append(errs, fmt.Errorf("%s: Role %q, want %q", n.Name, got, wantRole))
		}
		if got := str(row["State"]); got != "running" {
			errs = append(errs, fmt.Errorf("%s: State %q, want running", n.Name, got))
		}
		if got, want := str(row["Host"]), fmt.Sprintf("127.0.0.1:%d", n.PGPort); got != want {
			errs = append(errs, fmt.Errorf("%s: Host %q, want %q", n.Name, got, want))
		}
		if tl, ok := row["TL"].(float64); !ok || tl < 1 {
			errs = append(errs, fmt.Errorf("%s: TL %v, want ≥ 1", n.Name, row["TL"]))
		}
		if n != leader {
			if lag, ok := row["Lag in MB"].(float64); !ok || lag > 1 {
				errs = append(errs, fmt.Errorf("%s: Lag in MB %v, want 0 or 1", n.Name, row["Lag in MB"]))
			}
		}
	}
	return errors.Join(errs...)
}

// TestPatronictlCommands: Debian's patronictl 3.0.2 drives a Regent
// cluster through its everyday commands, each exiting 0 and doing what it
// says: list, topology, show-config, edit-config, pause/resume --wait,
// switchover, failover, history, restart and reload of one member.
func TestPatronictlCommands(t *testing.T) {
	needPatronictl(t)
	c := testcluster.New(t, testcluster.Options{})
	first := waitHealthyForSwitchover(t, c)
	cfg := c.PatronictlConfig(t)
	pctl := func(bound time.Duration, args ...string) ctlResult {
		t.Helper()
		r := runTool(t, bound, "patronictl", append([]string{"-c", cfg}, args...)...)
		mustSucceed(t, r)
		return r
	}

	checkPatronictlReads(t, c, first, pctl)
	checkPatronictlConfig(t, c, pctl)
	checkPatronictlPause(t, c, pctl)

	x := c.Others(first.Name)[0]
	r := pctl(patronictlLong, "switchover", "--force", "--candidate", x.Name)
	if want := `Successfully switched over to "` + x.Name + `"`; !strings.Contains(r.stdout, want) {
		t.Errorf("patronictl switchover output lacks %q", want)
	}
	if l := waitNewLeader(t, c, first.Name, replicateTimeout); l != x {
		t.Fatalf("after switchover to %s the leader is %s", x.Name, l.Name)
	}
	waitHealthyForSwitchover(t, c)
	y := c.Others(x.Name)[0]
	r = pctl(patronictlLong, "failover", "--candidate", y.Name, "--force")
	if want := `Successfully failed over to "` + y.Name + `"`; !strings.Contains(r.stdout, want) {
		t.Errorf("patronictl failover output lacks %q", want)
	}
	if l := waitNewLeader(t, c, x.Name, replicateTimeout); l != y {
		t.Fatalf("after failover to %s the leader is %s", y.Name, l.Name)
	}
	c.WaitHealthy(t, rejoinTimeout)
	checkPatronictlHistory(t, pctl, x.Name, y.Name)

	z := c.Others(y.Name)[0]
	started := pgText(t, z, "SELECT pg_postmaster_start_time()::text")
	pctl(patronictlLong, "restart", c.Scope(), z.Name, "--force")
	if now := pgTextEventually(t, z, "SELECT pg_postmaster_start_time()::text"); now == started {
		t.Errorf("patronictl restart %s: postmaster start time unchanged (%s)", z.Name, now)
	}
	waitStreamingFrom(t, z, y, rejoinTimeout)
	loaded := pgText(t, z, "SELECT pg_conf_load_time()::text")
	pctl(patronictlTimeout, "reload", c.Scope(), z.Name, "--force")
	waitConfReload(t, z, loaded)
}

// pgTextEventually is pgText once n accepts connections again.
func pgTextEventually(t *testing.T, n *testcluster.Node, sql string) string {
	t.Helper()
	var v string
	testcluster.Poll(t, replicateTimeout, n.Name+" answering "+sql, func(ctx context.Context) error {
		var err error
		v, err = queryString(ctx, n, sql)
		return err
	})
	return v
}

// checkPatronictlReads: list and topology show every member and the
// leader; show-config prints the config key as YAML.
func checkPatronictlReads(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, pctl func(time.Duration, ...string) ctlResult) {
	t.Helper()
	for _, cmd := range []string{"list", "topology"} {
		r := pctl(patronictlTimeout, cmd)
		for _, n := range c.Nodes() {
			if !strings.Contains(r.stdout, n.Name) {
				t.Errorf("patronictl %s does not show %s", cmd, n.Name)
			}
		}
		if !strings.Contains(r.stdout, "| "+leader.Name+" ") || !strings.Contains(r.stdout, "Leader") {
			t.Errorf("patronictl %s does not show %s as Leader", cmd, leader.Name)
		}
	}
	r := pctl(patronictlTimeout, "show-config")
	var shown map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("patronictl show-config: not YAML: %v", err)
	}
	if str(shown["ttl"]) != "10" || str(shown["loop_wait"]) != "1" {
		t.Errorf("patronictl show-config: %v, want ttl 10 and loop_wait 1", shown)
	}
}

// checkPatronictlConfig: edit-config -s loop_wait=2 --force writes the
// config key (a CAS transaction, not REST) and every agent applies it.
func checkPatronictlConfig(t *testing.T, c *testcluster.Cluster, pctl func(time.Duration, ...string) ctlResult) {
	t.Helper()
	logs := map[string]*testcluster.LogCapture{}
	for _, n := range c.Nodes() {
		logs[n.Name] = n.CaptureLog(t)
	}
	_, rev := configRevision(t, c)
	pctl(patronictlTimeout, "edit-config", "-s", "loop_wait=2", "--force")
	cfg, after := configRevision(t, c)
	if str(cfg["loop_wait"]) != "2" || str(cfg["ttl"]) != "10" || after == rev {
		t.Errorf("config key after edit-config: %v (ModRevision %d → %d), want loop_wait 2 and ttl kept", cfg, rev, after)
	}
	for _, n := range c.Nodes() {
		logs[n.Name].Wait(t, configApplyWait, "timings changed to loop_wait 2s", func(l string) bool {
			return strings.Contains(l, `msg="timings changed"`) && strings.Contains(l, "loop_wait=2s")
		})
	}
}

// checkPatronictlPause: pause --wait and resume --wait set and clear
// pause in the config key and in every member key; list says so.
func checkPatronictlPause(t *testing.T, c *testcluster.Cluster, pctl func(time.Duration, ...string) ctlResult) {
	t.Helper()
	pctl(patronictlTimeout, "pause", "--wait")
	if cfg, _ := configRevision(t, c); str(cfg["pause"]) != "true" {
		t.Errorf("config key after patronictl pause: %v", cfg)
	}
	testcluster.Poll(t, configApplyWait, "pause in every member key and GET /patroni", func(ctx context.Context) error {
		return checkPause(ctx, c, "true")
	})
	if r := pctl(patronictlTimeout, "list"); !strings.Contains(r.stdout, "Maintenance mode: on") {
		t.Errorf("patronictl list while paused lacks \"Maintenance mode: on\"")
	}
	pctl(patronictlTimeout, "resume", "--wait")
	if cfg, _ := configRevision(t, c); cfg["pause"] != nil {
		t.Errorf("config key after patronictl resume: %v, want no pause", cfg)
	}
	testcluster.Poll(t, configApplyWait, "no pause in any member key or GET /patroni", func(ctx context.Context) error {
		return checkPause(ctx, c, "")
	})
}

// checkPatronictlHistory: history lists the two promotions, the last
// ones naming their new leaders in order.
func checkPatronictlHistory(t *testing.T, pctl func(time.Duration, ...string) ctlResult, leaders ...string) {
	t.Helper()
	r := pctl(patronictlTimeout, "history", "-f", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("patronictl history -f json: %v", err)
	}
	if len(rows) < len(leaders) {
		t.Fatalf("patronictl history: %d rows, want ≥ %d: %v", len(rows), len(leaders), rows)
	}
	for i, want := range leaders {
		row := rows[len(rows)-len(leaders)+i]
		if got := str(row["New Leader"]); got != want {
			t.Errorf("patronictl history row %v: New Leader %q, want %q", row, got, want)
		}
	}
	if r := pctl(patronictlTimeout, "history"); !strings.Contains(r.stdout, fmt.Sprint(leaders[len(leaders)-1])) {
		t.Errorf("patronictl history (table) does not name %s", leaders[len(leaders)-1])
	}
}
