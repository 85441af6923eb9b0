package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// previousRelease is the commit of the release before this one, whose
// agents the rolling-upgrade test upgrades: main has no tags, and
// c8d2e75 ("agent: the leader removes a switchover lock no running
// record backs") is the last release landed on main before the release
// tooling of #23 (its binaries print version 0.1.0). Move it to the
// current release's commit once the next one is under way. The test
// builds it from this clone's history (a shallow clone fails, saying so).
const previousRelease = "c8d2e752ff7e001a8c3fa2b2af21cabf9180c5be"

// TestRollingUpgrade follows docs/operations.md's rolling upgrade with a
// writer running: three members on the previous release's binary; the
// replicas upgraded one at a time (agent stopped — which stops its
// PostgreSQL — and started on the new binary), each rejoining and
// streaming, the first one also rolled back to the old binary and
// upgraded again; then, with versions mixed, a switchover from the old-binary
// primary to an upgraded member, one back to the old binary (the rollback
// path) and one to the other upgraded member; last the former primary
// upgraded as a replica. No acknowledged write is lost, every member ends
// running and streaming, its member key shows the new version, and the new
// regentctl lists the cluster while the versions are mixed and after.
func TestRollingUpgrade(t *testing.T) {
	const table = "e2e_upgrade"
	if testing.Short() {
		t.Skip("builds the previous release and runs real PostgreSQL servers") // as testcluster.New does
	}
	prev := testcluster.BinaryAt(t, previousRelease, "./cmd/regent")
	next := testcluster.AgentBinary(t)
	prevVersion, nextVersion := agentVersion(t, prev), agentVersion(t, next)
	if prevVersion == nextVersion {
		t.Fatalf("the previous release %s and this build both print version %q: the member keys could not tell them apart", previousRelease[:12], prevVersion)
	}
	t.Logf("upgrading %s (commit %s) → %s", prevVersion, previousRelease[:12], nextVersion)

	c := testcluster.New(t, testcluster.Options{Binary: func(string) string { return prev }})
	primary := waitHealthyForSwitchover(t, c)
	for _, n := range c.Nodes() {
		waitVersion(t, c, n, prevVersion)
	}
	mustExec(t, primary, fmt.Sprintf(createLoadTable, table))
	w := startWriter(t, c, table)
	waitAcked(t, w, primary.Name, time.Time{}, 50, replicateTimeout)
	began := time.Now()

	others := c.Others(primary.Name)
	a, b := others[0], others[1]
	replaceBinary(t, c, w, a, next, nextVersion, primary)
	waitListed(t, c, primary) // one new, two old
	// A member's rollback, then its upgrade again.
	replaceBinary(t, c, w, a, prev, prevVersion, primary)
	replaceBinary(t, c, w, a, next, nextVersion, primary)
	replaceBinary(t, c, w, b, next, nextVersion, primary)
	waitListed(t, c, primary) // the primary old, both replicas new

	rollingSwitchover(t, c, w, primary, a) // old → new
	rollingSwitchover(t, c, w, a, primary) // new → old: the rollback path
	rollingSwitchover(t, c, w, primary, b) // old → new
	replaceBinary(t, c, w, primary, next, nextVersion, b)

	waitAcked(t, w, b.Name, time.Now(), 50, replicateTimeout)
	w.Stop()
	acks := w.Snapshot().Acked
	checkAcked(t, b, table, acks)
	g := testcluster.LongestGap(acks)
	t.Logf("rolling upgrade: %d writes acknowledged; longest write pause %.1fs (ids %d on %s → %d on %s, at +%s)",
		len(acks), g.Duration.Seconds(), g.From.ID, g.From.Node, g.To.ID, g.To.Node, g.From.At.Sub(began).Round(time.Second))
	if g.Duration > unavailabilityBound {
		t.Errorf("longest write pause %s > %s", g.Duration.Round(time.Millisecond), unavailabilityBound)
	}
	for _, n := range c.Others(b.Name) {
		waitStreamingFrom(t, n, b, rejoinTimeout)
	}
	for _, n := range c.Nodes() {
		waitVersion(t, c, n, nextVersion)
		if !n.Running() {
			t.Errorf("the agent of %s is not running", n.Name)
		}
	}
	waitListed(t, c, b)
}

// replaceBinary moves replica n to the binary bin (an upgrade, or its
// rollback) as the procedure says: stop its agent (a clean stop stops
// PostgreSQL too), start it on bin, then wait until it streams from
// primary again, its member key shows version and the writer still gets
// acknowledgements.
func replaceBinary(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, n *testcluster.Node, bin, version string, primary *testcluster.Node) {
	t.Helper()
	t.Logf("restarting %s on %s (primary %s)", n.Name, bin, primary.Name)
	n.StopAgent(t)
	if n.PostgresRunning() {
		t.Fatalf("%s: PostgreSQL still running after its agent stopped", n.Name)
	}
	n.SetBinary(bin)
	n.Start(t)
	waitStreamingFrom(t, n, primary, rejoinTimeout)
	waitVersion(t, c, n, version)
	waitAcked(t, w, primary.Name, time.Now(), 20, replicateTimeout)
}

// rollingSwitchover switches over from → to with the new regentctl (it
// exits 0 once the switchover completed), then waits until to takes
// acknowledged writes and from streams from it.
func rollingSwitchover(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, from, to *testcluster.Node) {
	t.Helper()
	if leader := waitHealthyForSwitchover(t, c); leader != from {
		t.Fatalf("leader %s before the switchover, want %s", leader.Name, from.Name)
	}
	t.Logf("switchover %s (%s) → %s (%s)", from.Name, from.Binary(), to.Name, to.Binary())
	mustSucceed(t, regentctl(t, c, switchoverWait, "switchover", "--to", to.Name, "--reason", "rolling upgrade", "--yes"))
	if name, _ := leaderRevision(t, c); name != to.Name {
		t.Fatalf("leader key names %q after the switchover, want %s", name, to.Name)
	}
	waitAcked(t, w, to.Name, time.Now(), 20, replicateTimeout)
	waitStreamingFrom(t, from, to, rejoinTimeout)
}

// agentVersion runs `<bin> version` and returns the version its first
// line prints ("regent 0.1.0").
func agentVersion(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(first), "regent ")
	if !ok || v == "" {
		t.Fatalf("%s version printed %q, want \"regent <version>\" first", bin, out)
	}
	return v
}

// waitVersion waits until n's member key carries version.
func waitVersion(t *testing.T, c *testcluster.Cluster, n *testcluster.Node, version string) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, n.Name+"'s member key with version "+version, func(ctx context.Context) error {
		m, err := c.Member(ctx, n.Name)
		if err != nil {
			return err
		}
		if got := str(m["version"]); got != version {
			return fmt.Errorf("version %q", got)
		}
		return nil
	})
}
