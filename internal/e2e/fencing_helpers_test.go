package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/testcluster"
)

// journalFile is the journal watchdog device's file in each node directory.
const journalFile = "watchdog.journal"

// nodeDirOf finds the node directory from the config map ExtraConfig gets
// (the harness puts the data directory in it): ExtraConfig runs before the
// cluster's directories are known to the test.
func nodeDirOf(cfg map[string]any) string {
	pg, _ := cfg["postgres"].(map[string]any)
	dataDir, _ := pg["data_dir"].(string)
	return filepath.Dir(dataDir)
}

// journalWatchdog configures a required watchdog on the journal device in
// the node directory (fencing.JournalPrefix: it records what a device would
// see instead of resetting the host).
func journalWatchdog(cfg map[string]any, safetyMargin time.Duration) {
	cfg["watchdog"] = map[string]any{
		"mode":          "required",
		"device":        "journal:" + filepath.Join(nodeDirOf(cfg), journalFile),
		"safety_margin": safetyMargin.String(),
	}
}

// lastSession returns the newest session of n's journal.
func lastSession(n *testcluster.Node) (fencing.JournalSession, error) {
	sessions, err := fencing.ReadJournal(filepath.Join(n.Dir, journalFile))
	if err != nil {
		return fencing.JournalSession{}, err
	}
	if len(sessions) == 0 {
		return fencing.JournalSession{}, errors.New("watchdog journal has no session")
	}
	return sessions[len(sessions)-1], nil
}

// waitArmed waits until n's watchdog is armed and has been pinged at least
// pings times in the current session, and returns that session.
func waitArmed(t *testing.T, n *testcluster.Node, pings int, timeout time.Duration) fencing.JournalSession {
	t.Helper()
	var s fencing.JournalSession
	testcluster.Poll(t, timeout, fmt.Sprintf("%s's watchdog armed with %d pings", n.Name, pings), func(context.Context) error {
		var err error
		if s, err = lastSession(n); err != nil {
			return err
		}
		if !s.Close.IsZero() || len(s.Pings) < pings {
			return fmt.Errorf("last session: opened %s, %d pings, closed %t", s.Open.Format(time.StampMilli), len(s.Pings), !s.Close.IsZero())
		}
		return nil
	})
	return s
}

// pingGaps returns the intervals between consecutive pings.
func pingGaps(pings []time.Time) []time.Duration {
	var gaps []time.Duration
	for i := 1; i < len(pings); i++ {
		gaps = append(gaps, pings[i].Sub(pings[i-1]))
	}
	return gaps
}

// waitFenceDecision waits until GET /decisions on n has a record match accepts,
// and returns the newest such record.
func waitFenceDecision(t *testing.T, n *testcluster.Node, timeout time.Duration, what string, match func(decisionEntry) bool) decisionEntry {
	t.Helper()
	var found decisionEntry
	testcluster.Poll(t, timeout, "decision record: "+what, func(ctx context.Context) error {
		ds, err := readDecisions(ctx, n.API())
		if err != nil {
			return err
		}
		for _, d := range ds {
			if match(d) {
				found = d
				return nil
			}
		}
		kinds := make([]string, 0, len(ds))
		for _, d := range ds {
			kinds = append(kinds, d.Member+":"+d.Kind)
		}
		return fmt.Errorf("%d records, none matches: %v", len(ds), kinds)
	})
	return found
}

// leaderKeyRevision is the etcd revision now: leaderKeyHistory reads the leader
// key's changes after it.
func leaderKeyRevision(t *testing.T, c *testcluster.Cluster) int64 {
	t.Helper()
	return getKey(t, c, c.Keys().Leader()).Header.Revision
}

// leaderChange is one change of the leader key: a holder, or "" (deleted).
type leaderChange struct {
	Revision int64
	Holder   string
}

// leaderKeyHistory returns every change of the leader key after revision
// from, up to its current value (which must exist), replayed from etcd's
// history: unlike polling, it cannot miss a short-lived holder.
func leaderKeyHistory(t *testing.T, c *testcluster.Cluster, from int64) []leaderChange {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	key := c.Keys().Leader()
	resp, err := c.Etcd().Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read the leader key: %d values, err %v", len(resp.Kvs), err)
	}
	last := resp.Kvs[0].ModRevision
	var out []leaderChange
	for wr := range c.Etcd().Watch(ctx, key, clientv3.WithRev(from+1)) {
		if err := wr.Err(); err != nil {
			t.Fatalf("replay the leader key's history: %v", err)
		}
		for _, ev := range wr.Events {
			ch := leaderChange{Revision: ev.Kv.ModRevision}
			if ev.Type == clientv3.EventTypePut {
				ch.Holder = string(ev.Kv.Value)
			}
			out = append(out, ch)
			if ev.Kv.ModRevision >= last {
				return out
			}
		}
	}
	t.Fatalf("replay the leader key's history: watch ended before revision %d (%v); got %v", last, ctx.Err(), out)
	return nil
}

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
