package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

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
