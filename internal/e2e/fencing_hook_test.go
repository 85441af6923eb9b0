package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The fence hook of these tests: a script in each node directory that
// appends the environment it was given to fenceCallsFile and exits with
// the status the test chose.
const (
	fenceScriptFile = "fence.sh"
	fenceCallsFile  = "fence.calls"
)

// fenceCall is one run of the fence script as it recorded it.
type fenceCall struct{ Target, ConnURL, Scope string }

// writeFenceScript (re)writes n's fence script to exit with status.
func writeFenceScript(t *testing.T, n *testcluster.Node, status int) {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/sh
# Regent e2e fence hook: record what we were asked to fence, then exit %d.
printf '%%s|%%s|%%s\n' "$REGENT_FENCE_TARGET" "$REGENT_FENCE_TARGET_CONN_URL" "$REGENT_SCOPE" >> '%s'
echo "e2e fence hook: target $REGENT_FENCE_TARGET, exit %d"
exit %d
`, status, filepath.Join(n.Dir, fenceCallsFile), status, status)
	n.WriteFile(t, fenceScriptFile, []byte(script), 0o755)
}

// fenceCalls reads the runs n's fence script recorded (none if the file
// does not exist yet).
func fenceCalls(t *testing.T, n *testcluster.Node) []fenceCall {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.Dir, fenceCallsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []fenceCall
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "|")
		if len(f) != 3 {
			t.Fatalf("%s's %s: bad line %q", n.Name, fenceCallsFile, line)
		}
		calls = append(calls, fenceCall{Target: f[0], ConnURL: f[1], Scope: f[2]})
	}
	return calls
}

// fenceHookConfig configures the node's fence script as fence.command. It
// goes on every node: the hook never targets its own node, and the test
// learns which nodes are replicas only after bootstrap.
func fenceHookConfig(_ string, cfg map[string]any) {
	cfg["fence"] = map[string]any{
		"command": []string{filepath.Join(nodeDirOf(cfg), fenceScriptFile)},
		"timeout": "10s",
	}
}

// TestFenceCommandGatesFailover: a leader that vanished without releasing
// its key (host death) is fenced by fence.command before anyone promotes.
// While the command fails nobody promotes and the failure is recorded;
// once it succeeds a replica promotes and records the fence result.
func TestFenceCommandGatesFailover(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: fenceHookConfig})
	for _, n := range c.Nodes() {
		writeFenceScript(t, n, 1)
	}
	replicas := c.Others(old.Name)

	from := leaderKeyRevision(t, c)
	killedAt := time.Now()
	old.Kill(t)
	holdLeaderless(t, c, old.Name, killedAt.Add(c.TTL()+10*time.Second))
	failed := waitFenceDecision(t, replicas[0], replicateTimeout, "fence_failed against "+old.Name, func(d decisionEntry) bool {
		return d.Kind == "fence_failed" && d.Fence != nil && d.Fence.Target == old.Name
	})
	t.Logf("while the hook fails: %s recorded %q, fence %+v", failed.Member, failed.Reason, *failed.Fence)
	if !failed.Fence.Ran || failed.Fence.ExitCode != 1 || !strings.Contains(failed.Fence.Output, "target "+old.Name+", exit 1") {
		t.Errorf("fence_failed record: %+v; want ran, exit code 1 and the script's output", *failed.Fence)
	}
	checkFenceCalls(t, c, c.Node(failed.Member), old)

	allowed := time.Now()
	for _, n := range replicas {
		writeFenceScript(t, n, 0)
	}
	newLeader := c.WaitLeader(t, 30*time.Second)
	t.Logf("hook exits 0 from +%s after the kill: %s leads %s later",
		allowed.Sub(killedAt).Round(time.Millisecond), newLeader.Name, time.Since(allowed).Round(time.Millisecond))
	if h := leaderKeyHistory(t, c, from); len(h) != 2 || h[0].Holder != "" || h[1].Holder != newLeader.Name {
		t.Errorf("leader key since the kill: %+v; want deleted (lease expiry), then %s only", h, newLeader.Name)
	}
	d := waitFenceDecision(t, newLeader, replicateTimeout, newLeader.Name+" failover over "+old.Name, func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == newLeader.Name && d.PreviousLeader == old.Name
	})
	switch {
	case d.Fence == nil:
		t.Errorf("failover record of %s has no fence result", newLeader.Name)
	case d.Fence.Target != old.Name || !d.Fence.Ran || d.Fence.ExitCode != 0:
		t.Errorf("failover record of %s: fence %+v; want target %s, ran, exit code 0", newLeader.Name, *d.Fence, old.Name)
	case d.Timings == nil || !d.Timings.ElectedAt.After(allowed):
		t.Errorf("failover record of %s: timings %+v; want elected after the hook was allowed to succeed", newLeader.Name, d.Timings)
	}
}

// TestFenceCommandSkippedAfterCleanStepDown: a leader whose agent shuts
// down cleanly (PostgreSQL stopped, leader key released, member key says
// stopped) is not fenced: a replica promotes without running the hook.
// Its own cluster keeps it to one failover from the bootstrap timeline.
func TestFenceCommandSkippedAfterCleanStepDown(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{ExtraConfig: fenceHookConfig})
	for _, n := range c.Nodes() {
		writeFenceScript(t, n, 0) // a wrong run would not even block the failover
	}
	from := leaderKeyRevision(t, c)
	stopped := time.Now()
	leader.StopAgent(t)
	next := c.WaitLeader(t, c.TTL()+rejoinTimeout)
	t.Logf("%s stopped cleanly; %s leads %s later", leader.Name, next.Name, time.Since(stopped).Round(time.Millisecond))
	if h := leaderKeyHistory(t, c, from); len(h) != 2 || h[0].Holder != "" || h[1].Holder != next.Name {
		t.Errorf("leader key since the stop: %+v; want released, then %s", h, next.Name)
	}
	d := waitFenceDecision(t, next, replicateTimeout, next.Name+" failover after "+leader.Name+" stepped down", func(d decisionEntry) bool {
		return d.Kind == "failover" && d.Member == next.Name && d.PreviousLeader == leader.Name
	})
	if d.Fence != nil {
		t.Errorf("%s fenced %s, which had stepped down cleanly: %+v", next.Name, leader.Name, *d.Fence)
	}
	for _, n := range c.Others(leader.Name) {
		if calls := fenceCalls(t, n); len(calls) > 0 {
			t.Errorf("%s ran its fence script after a clean step-down: %+v", n.Name, calls)
		}
	}
}

// holdLeaderless fails the test if a member other than old holds the
// leader key before until (it is read every 100 ms).
func holdLeaderless(t *testing.T, c *testcluster.Cluster, old string, until time.Time) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	reads := 0
	defer func() {
		if reads == 0 && !t.Failed() {
			t.Fatalf("could not read the leader key while checking for a leader: %v", lastErr)
		}
	}()
	for time.Now().Before(until) {
		holder, err := c.Leader(t.Context())
		switch {
		case err == nil && holder != old:
			t.Fatalf("%s took the leader key although fence.command fails", holder)
		case err != nil && !errors.Is(err, testcluster.ErrNoLeader):
			lastErr = err
		default:
			reads++
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while checking for a leader (%d reads, last error %v)", reads, lastErr)
		case <-tick.C:
		}
	}
}

// checkFenceCalls: the script ran against old with its member name and
// the cluster's scope, and only against old.
func checkFenceCalls(t *testing.T, c *testcluster.Cluster, n *testcluster.Node, old *testcluster.Node) {
	t.Helper()
	calls := fenceCalls(t, n)
	t.Logf("%s's fence script ran %d times; first: %+v", n.Name, len(calls), calls[:min(1, len(calls))])
	if len(calls) == 0 {
		t.Fatalf("%s recorded a fence_failed but its script never ran", n.Name)
	}
	for _, call := range calls {
		if call.Target != old.Name || call.Scope != c.Scope() {
			t.Errorf("%s's fence script got %+v; want target %s, scope %s", n.Name, call, old.Name, c.Scope())
		}
	}
	if want := fmt.Sprintf("postgres://127.0.0.1:%d/postgres", old.PGPort); calls[0].ConnURL != want {
		// Documented as empty if unknown; the member key expired with the
		// lease, so the agent may not know it. Reported, not asserted.
		t.Logf("note: REGENT_FENCE_TARGET_CONN_URL = %q (the target's conn_url is %s)", calls[0].ConnURL, want)
	}
}
