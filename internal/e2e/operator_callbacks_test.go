package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The on_role_change callback of these tests: a script in each node
// directory recording its runs in roleChangeCalls.
const (
	roleChangeScript = "on_role_change.sh"
	roleChangeCalls  = "on_role_change.calls"
)

func roleChangeConfig(timeout string) func(string, map[string]any) {
	return func(_ string, cfg map[string]any) {
		cfg["callbacks"] = map[string]any{
			"on_role_change": []string{filepath.Join(nodeDirOf(cfg), roleChangeScript)},
			"timeout":        timeout,
		}
	}
}

// writeRoleChangeScripts installs the callback on every node.
func writeRoleChangeScripts(t *testing.T, c *testcluster.Cluster, hang bool) {
	t.Helper()
	for _, n := range c.Nodes() {
		n.WriteFile(t, roleChangeScript, []byte(callbackScript(filepath.Join(n.Dir, roleChangeCalls), hang)), 0o755)
	}
}

// waitCalls waits until n's callback recorded a run and checks that its
// runs are exactly want (the argument strings).
func waitCalls(t *testing.T, n *testcluster.Node, timeout time.Duration, want ...string) []callbackCall {
	t.Helper()
	path := filepath.Join(n.Dir, roleChangeCalls)
	var calls []callbackCall
	testcluster.Poll(t, timeout, fmt.Sprintf("%d on_role_change run(s) on %s", len(want), n.Name), func(context.Context) error {
		var err error
		if calls, err = readCalls(path); err != nil {
			return err
		}
		if len(calls) < len(want) {
			return fmt.Errorf("runs: %+v", calls)
		}
		return nil
	})
	var got []string
	for _, call := range calls {
		got = append(got, call.Args)
	}
	if !slices.Equal(got, want) {
		t.Errorf("on_role_change runs on %s: %q, want %q", n.Name, got, want)
	}
	return calls
}

// TestOperatorRoleChangeCallback: in a failover where both agents live
// (the primary's host stalls, then resumes), on_role_change runs on the
// new primary with "on_role_change primary <scope>" and on the old one,
// once it rejoins, with "on_role_change replica <scope>"; the replica that
// stayed a replica runs nothing.
func TestOperatorRoleChangeCallback(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: roleChangeConfig("10s")})
	writeRoleChangeScripts(t, c, false)

	old.Freeze(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	old.Thaw(t)
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	waitCalls(t, old, configApplyWait, "on_role_change replica "+c.Scope())
	for _, n := range c.Others(old.Name) {
		if n == winner {
			continue
		}
		if calls, err := readCalls(filepath.Join(n.Dir, roleChangeCalls)); err != nil || len(calls) > 0 {
			t.Errorf("%s stayed a replica but its on_role_change ran: %+v (err %v)", n.Name, calls, err)
		}
	}
	// No further runs once the cluster settled.
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	waitCalls(t, old, configApplyWait, "on_role_change replica "+c.Scope())
}

// TestOperatorCallbackTimeout: an on_role_change that never returns is
// killed at callbacks.timeout (2 s) with its whole process group (the
// agent logs "callback killed at its timeout"; neither the script nor its
// sleep is left), and the failover it was started by completes.
func TestOperatorCallbackTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: roleChangeConfig(timeout.String())})
	writeRoleChangeScripts(t, c, true)
	logs := map[string]*testcluster.LogCapture{}
	for _, n := range c.Others(old.Name) {
		logs[n.Name] = n.CaptureLog(t)
	}

	killed := time.Now()
	old.Kill(t)
	winner, wrote := waitFirstWrite(t, c.Others(old.Name), failoverWait, "CREATE TABLE IF NOT EXISTS e2e_callback (id int)")
	t.Logf("failover: %s writable %.1fs after the kill", winner.Name, wrote.Sub(killed).Seconds())
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	run := waitHangRun(t, winner)
	line := logs[winner.Name].Wait(t, timeout+configApplyWait, "callback killed at its timeout", func(l string) bool {
		return strings.Contains(l, "callback killed at its timeout") && strings.Contains(l, "action=on_role_change")
	})
	t.Logf("%s: %s", winner.Name, line)
	var gone time.Time
	testcluster.Poll(t, configApplyWait, "the callback's script and sleep gone", func(context.Context) error {
		if liveProcess(run.script, roleChangeScript) || liveProcess(run.sleep, "sleep 86399") {
			return fmt.Errorf("script pid %d or sleep pid %d still alive", run.script, run.sleep)
		}
		gone = time.Now()
		return nil
	})
	// The script notes its start a moment after the agent started it: on
	// a loaded machine it may look shorter than the timeout, never near 0.
	if ran := gone.Sub(run.started); ran < timeout/2 || ran > timeout+3*time.Second {
		t.Errorf("the hanging callback ran %s before being killed, want its timeout %s (+ ≤ 3 s)", ran.Round(time.Millisecond), timeout)
	} else {
		t.Logf("the hanging callback ran %s before being killed", ran.Round(time.Millisecond))
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
	for _, n := range c.Others(old.Name) {
		if n != winner {
			waitStreamingFrom(t, n, winner, rejoinTimeout)
		}
	}
}

// waitHangRun waits for the hanging callback on n to record its run.
func waitHangRun(t *testing.T, n *testcluster.Node) hangRun {
	t.Helper()
	var run hangRun
	path := filepath.Join(n.Dir, roleChangeCalls+".sleep")
	testcluster.Poll(t, configApplyWait, n.Name+"'s hanging callback started", func(context.Context) error {
		runs, err := readHangRuns(path)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return fmt.Errorf("%s: no run recorded", path)
		}
		run = runs[0]
		return nil
	})
	return run
}
