package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// fastFailoverConfig: fence.command is the node's fence script, with the
// fence-confirmed fast path on (suspect_after 1 s, the default).
func fastFailoverConfig(node string, cfg map[string]any) {
	fenceHookConfig(node, cfg)
	f := cfg["fence"].(map[string]any)
	f["fast_failover"] = true
	f["suspect_after"] = 1
}

// fenceDoneFile is where the fast-path fence script writes when it
// returned (Unix nanoseconds), right before its exit 0.
const fenceDoneFile = "fence.done"

// Files of the fast-path fence script's hand-shake with the test: the
// script asks for its target's death (fenceKillRequest), the test kills
// it through the harness (Node.Kill, which knows the agent's and
// PostgreSQL's processes) and answers (fenceKilled).
const (
	fenceKillRequest = "fence.request"
	fenceKilled      = "fence.killed"
)

// writeKillingFenceScript (re)writes n's fence script: it records the call
// and, for the first failRuns runs, exits 1; afterwards it asks the test
// to kill its target's agent and PostgreSQL (killOnRequest), waits for
// the answer (at most 5 s), records the time and exits 0 — a host
// power-off, with processes a frozen host still has.
func writeKillingFenceScript(t *testing.T, n *testcluster.Node, failRuns int) {
	t.Helper()
	file := func(name string) string { return filepath.Join(n.Dir, name) }
	script := fmt.Sprintf(`#!/bin/sh
# Regent e2e fast-path fence hook.
printf '%%s|%%s|%%s\n' "$REGENT_FENCE_TARGET" "$REGENT_FENCE_TARGET_CONN_URL" "$REGENT_SCOPE" >> '%[1]s'
echo run >> '%[2]s'
if [ "$(wc -l < '%[2]s')" -le %[3]d ]; then echo "e2e fence hook: failing on purpose"; exit 1; fi
echo "$REGENT_FENCE_TARGET" > '%[4]s'
i=0
until [ -e '%[5]s' ]; do i=$((i+1)); [ $i -lt 500 ] || { echo "e2e fence hook: the test did not kill $REGENT_FENCE_TARGET"; exit 1; }; sleep 0.01; done
date +%%s%%N > '%[6]s'
echo "e2e fence hook: $REGENT_FENCE_TARGET killed"
exit 0
`, file(fenceCallsFile), file("fence.runs"), failRuns, file(fenceKillRequest), file(fenceKilled), file(fenceDoneFile))
	n.WriteFile(t, fenceScriptFile, []byte(script), 0o755)
}

// killOnRequest serves the fence scripts of nodes until ctx ends: the
// first request naming old kills it (agent and PostgreSQL, waiting until
// they are gone) and answers every requesting script.
func killOnRequest(ctx context.Context, t *testing.T, old *testcluster.Node, nodes []*testcluster.Node) {
	killed := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range nodes {
			target, err := os.ReadFile(filepath.Join(n.Dir, fenceKillRequest))
			if err != nil {
				continue
			}
			if strings.TrimSpace(string(target)) != old.Name {
				t.Errorf("%s's fence script asked to kill %q, want %s", n.Name, target, old.Name)
				return
			}
			if !killed {
				old.Kill(t)
				killed = true
			}
			if err := os.Remove(filepath.Join(n.Dir, fenceKillRequest)); err != nil {
				t.Error(err)
			}
			n.WriteFile(t, fenceKilled, []byte("yes\n"), 0o644)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// fenceDone reads when n's fence script returned 0 (zero if it did not).
func fenceDone(t *testing.T, n *testcluster.Node) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(n.Dir, fenceDoneFile))
	if err != nil {
		return time.Time{}
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatalf("%s's %s: %v", n.Name, fenceDoneFile, err)
	}
	return time.Unix(0, ns)
}

// fastPhases are the RTO budget's phases of a fence-confirmed fast
// failover (agent/rto.go).
var fastPhases = []string{"detect", "suspect_agree", "fence", "elect", "promote", "first_write"}

// TestFastFailoverFencedHostDeath (#19): 3 nodes, ttl 10, fast_failover on.
// The primary's host stalls (SIGSTOP of its agent and PostgreSQL: nothing
// answers, the processes are still there); the replicas agree it is gone
// after suspect_after, the best one runs fence.command, which kills the
// old host's processes and exits 0, deletes the old leader key by its
// revision and promotes — well before the lease (ttl 10 s) could expire.
// No write is acknowledged by the old primary after the hook returned.
func TestFastFailoverFencedHostDeath(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: fastFailoverConfig})
	replicas := c.Others(old.Name)
	waitStreamingSeen(t, replicas)
	seedTable(t, c, old, "e2e_frozen", "id bigint PRIMARY KEY, phase text NOT NULL", "SELECT g, 'before' FROM generate_series(1, 10) g", 10)
	for _, n := range replicas {
		writeKillingFenceScript(t, n, 0)
	}
	from := leaderKeyRevision(t, c)
	kctx, stopKiller := context.WithCancel(t.Context())
	defer stopKiller()
	go killOnRequest(kctx, t, old, replicas)

	// A client writing to the old primary all along, acknowledged before
	// the freeze.
	hctx, stopHammer := context.WithCancel(t.Context())
	defer stopHammer()
	results := make(chan hammerResult, 1)
	hammerStart := time.Now()
	go func() { results <- hammer(hctx, old, hammerStart) }()
	testcluster.Poll(t, replicateTimeout, "a write of the hammer acknowledged by "+old.Name, func(ctx context.Context) error {
		n, err := old.QueryInt(ctx, "SELECT count(*) FROM e2e_frozen WHERE phase = 'old primary'")
		if err == nil && n == 0 {
			err = errors.New("none yet")
		}
		return err
	})
	frozen := time.Now()
	old.Freeze(t)
	t.Cleanup(func() { old.Thaw(t) })

	newLeader := waitNewLeader(t, c, old.Name, failoverWait)
	elected := time.Since(frozen)
	winner, wrote := waitFirstWrite(t, replicas, failoverWait, "INSERT INTO e2e_frozen VALUES (1000, 'after')")
	stopHammer()
	h := <-results
	t.Logf("fast failover: %s leads %.2fs after the freeze, first write accepted after %.2fs (ttl %s)",
		newLeader.Name, elected.Seconds(), wrote.Sub(frozen).Seconds(), c.TTL())
	if winner != newLeader {
		t.Errorf("first write on %s, but %s holds the leader key", winner.Name, newLeader.Name)
	}
	if bound := 8 * time.Second; elected >= bound {
		t.Errorf("new leader after %s, want < %s (the lease, ttl %s, must not be what ended the old leadership)", elected.Round(time.Millisecond), bound, c.TTL())
	}
	done := fenceDone(t, newLeader)
	if done.IsZero() {
		t.Fatalf("%s's fence script did not report a confirmed fence", newLeader.Name)
	}
	for i, at := range h.ackedAt {
		if hammerStart.Add(at).After(done) {
			t.Errorf("split brain: the old primary %s acknowledged write %d at +%s after the freeze, after the hook returned at +%s",
				old.Name, h.acked[i], hammerStart.Add(at).Sub(frozen), done.Sub(frozen))
		}
	}
	if len(h.acked) == 0 {
		t.Fatal("the hammer saw no write acknowledged, not even before the freeze")
	}
	t.Logf("old primary's writes: %d acknowledged, the last at %+.3fs from the freeze; the hook returned at +%.3fs; last error: %v",
		len(h.acked), hammerStart.Add(h.ackedAt[len(h.ackedAt)-1]).Sub(frozen).Seconds(), done.Sub(frozen).Seconds(), h.lastErr)
	if hist := leaderKeyHistory(t, c, from); len(hist) != 2 || hist[0].Holder != "" || hist[1].Holder != newLeader.Name {
		t.Errorf("leader key since the freeze: %+v; want deleted (by the fast path), then %s", hist, newLeader.Name)
	}

	d := awaitDecision(t, newLeader, replicateTimeout, "failover", newLeader.Name, frozen, func(d decisionEntry) error {
		if d.PreviousLeader != old.Name || d.Stonith == nil || !d.Stonith.Ran || d.Stonith.ExitCode != 0 || d.Timings == nil {
			return fmt.Errorf("want previous leader %s, the fence run with exit 0 and timings", old.Name)
		}
		return nil
	})
	var names []string
	for _, p := range d.Timings.Phases {
		names = append(names, fmt.Sprintf("%s=%dms", p.Phase, p.Ms))
		if !slices.Contains(fastPhases, p.Phase) {
			t.Errorf("unexpected phase %q in %s", p.Phase, d)
		}
	}
	t.Logf("RTO budget: %s", strings.Join(names, " "))
	if len(d.Timings.Phases) != len(fastPhases) {
		t.Errorf("phases %v, want %v", names, fastPhases)
	}
	mfs := scrapeAll(t, []*testcluster.Node{newLeader})[newLeader.Name]
	for _, p := range []string{"suspect_agree", "fence"} {
		if n, err := mfs.count("regent_failover_phase_seconds", map[string]string{"phase": p}); err != nil || n < 1 {
			t.Errorf("GET /metrics on %s: regent_failover_phase_seconds{phase=%q} count %d, %v; want ≥ 1", newLeader.Name, p, n, err)
		}
	}
	if n, err := newLeader.QueryInt(t.Context(), "SELECT count(*) FROM e2e_frozen WHERE phase = 'before'"); err != nil || n != 10 {
		t.Errorf("new primary %s has %d of the 10 rows replicated before the freeze (err %v)", newLeader.Name, n, err)
	}
}

// TestFastFailoverFailedHookWaitsForTheLease (#19): the fast path's fence
// fails (exit 1): nobody promotes before the old leader's lease could
// expire, the candidate's decision record names the hook's failure, and
// the failover happens on the lease path (where the hook, run again,
// succeeds).
func TestFastFailoverFailedHookWaitsForTheLease(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: fastFailoverConfig})
	replicas := c.Others(old.Name)
	waitStreamingSeen(t, replicas)
	for _, n := range replicas {
		writeKillingFenceScript(t, n, 1)
	}
	kctx, stopKiller := context.WithCancel(t.Context())
	defer stopKiller()
	go killOnRequest(kctx, t, old, replicas)
	frozen := time.Now()
	old.Freeze(t)
	t.Cleanup(func() { old.Thaw(t) })
	// The old leader renewed at most loop_wait before the freeze: its
	// lease lasts until at least ttl − loop_wait after it. 1 s of margin
	// for the renewal's own round trip.
	holdLeaderless(t, c, old.Name, frozen.Add(c.TTL()-2*time.Second))
	newLeader := waitNewLeader(t, c, old.Name, failoverWait)
	elected := time.Since(frozen)
	t.Logf("fast path's fence failed: %s leads %.2fs after the freeze (ttl %s)", newLeader.Name, elected.Seconds(), c.TTL())

	var fallback *decisionEntry
	for _, n := range replicas {
		ds, err := readDecisions(t.Context(), n.API())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Kind == "fast_failover_fallback" && d.PreviousLeader == old.Name {
				fallback = &d
			}
		}
	}
	switch {
	case fallback == nil:
		t.Fatalf("no fast_failover_fallback record naming %s", old.Name)
	case !strings.Contains(fallback.Reason, "exit status 1") || fallback.Stonith == nil || fallback.Stonith.ExitCode != 1:
		t.Errorf("fallback record does not name the hook's failure: %s", fallback)
	}
	t.Logf("fallback record: %s", fallback)
	if fallback.At.Sub(frozen) >= c.TTL()-2*time.Second {
		t.Errorf("the fast path's fence ran only at +%s; the test no longer shows its fallback before the lease expiry", fallback.At.Sub(frozen))
	}
}
