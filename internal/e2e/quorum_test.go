package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Quorum commit (synchronous_mode: quorum, issue #21): with three nodes
// the primary runs synchronous_standby_names = 'ANY 1 (b,c)' and the sync
// key names both standbys with quorum 1. Losing one standby does not
// block commits; the primary's death promotes a standby holding every
// acknowledged write.

const (
	// quorumRounds is how many primaries TestQuorumFailoverKeepsAckedWrites kills.
	quorumRounds = 3
	// quorumAcksWithoutB: writes the primary must acknowledge with one
	// standby dead, each within syncWriteTimeout (the writer's bound).
	quorumAcksWithoutB = 50
)

// TestQuorumFailoverKeepsAckedWrites: in quorum mode with ANY 1 of the two
// standbys, killing one standby (no release courtesy) does not block
// commits; then, quorumRounds times, killing the primary promotes a
// member of the sync key's set that holds every acknowledged id.
func TestQuorumFailoverKeepsAckedWrites(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{TTL: 6, RetryTimeout: 2, DCS: map[string]any{"synchronous_mode": "quorum"}})
	waitQuorum(t, c, leader, rejoinTimeout)
	checkPatronictlQuorum(t, c)
	mustExec(t, leader, "CREATE TABLE e2e_quorum (id bigint PRIMARY KEY, node text NOT NULL)")
	w := startSyncWriter(t, c, "e2e_quorum")

	// One standby dies: ANY 1 keeps committing through the other.
	b := c.Others(leader.Name)[0]
	errsBefore := w.Snapshot().Errors
	b.Kill(t)
	stopped := time.Now()
	waitAcked(t, w, leader.Name, stopped, quorumAcksWithoutB, replicateTimeout)
	st := w.Snapshot()
	t.Logf("with %s killed, %s acknowledged %d writes within %.1fs; write errors since the kill: %d",
		b.Name, leader.Name, quorumAcksWithoutB, time.Since(stopped).Seconds(), st.Errors-errsBefore)
	if st.Errors != errsBefore {
		t.Errorf("%d writes failed after %s was killed (a commit waited more than %s): ANY 1 must commit through the other standby",
			st.Errors-errsBefore, b.Name, syncWriteTimeout)
	}
	b.Start(t)
	waitStreamingFrom(t, b, leader, rejoinTimeout)

	syncFailoverRounds(t, c, w, leader, quorumRounds, quorumFailover)
}

// quorumFailover: before the kill the quorum state is complete
// (waitQuorum) and old acknowledged syncAcksPerRound writes; the winner
// must be in the sync key's set and record its failover decision.
var quorumFailover = syncFailover{
	table: "e2e_quorum",
	arm: func(t *testing.T, c *testcluster.Cluster, w *testcluster.Writer, old *testcluster.Node, since time.Time, _ int) syncKey {
		t.Helper()
		k := waitQuorum(t, c, old, rejoinTimeout)
		waitAcked(t, w, old.Name, since, syncAcksPerRound, replicateTimeout)
		return k
	},
	checkWinner: func(t *testing.T, _ *testcluster.Cluster, round int, _, winner *testcluster.Node, k syncKey, killed time.Time, _ time.Duration) {
		t.Helper()
		if !slices.Contains(k.Standbys(), winner.Name) {
			t.Errorf("round %d: %s was promoted, but the sync key's set was %v", round, winner.Name, k.Standbys())
		}
		d := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
		t.Logf("round %d: failover decision: %s", round, d)
	},
}

// waitQuorum waits until leader runs ANY 1 of both other nodes and the
// sync key names leader, both standbys and quorum 1; it returns the key.
func waitQuorum(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, timeout time.Duration) syncKey {
	t.Helper()
	var others []string
	for _, n := range c.Others(leader.Name) {
		others = append(others, n.Name)
	}
	slices.Sort(others)
	want := "ANY 1 (" + strings.Join(others, ",") + ")"
	var k syncKey
	testcluster.Poll(t, timeout, fmt.Sprintf("%s to run %s with the sync key naming them, quorum 1", leader.Name, want), func(ctx context.Context) error {
		ssn, err := showSSN(ctx, leader)
		if err != nil {
			return err
		}
		var ok bool
		k, ok, err = readSyncKey(ctx, c)
		switch {
		case err != nil:
			return err
		case !ok:
			return errors.New("no sync key")
		case ssn != want || k.Leader != leader.Name || !slices.Equal(k.Standbys(), others) || k.QuorumValue() != 1:
			return fmt.Errorf("synchronous_standby_names %q, sync key %s quorum %d", ssn, k, k.QuorumValue())
		}
		return nil
	})
	return k
}

// checkPatronictlQuorum: patronictl 3.0.2 reads the quorum-mode sync key
// (it ignores the quorum field) and lists both standbys as Sync Standby.
func checkPatronictlQuorum(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	needPatronictl(t)
	cfg := c.PatronictlConfig(t)
	testcluster.Poll(t, 30*time.Second, "patronictl list: a Leader and 2 Sync Standbys", func(context.Context) error {
		out, err := patronictl(t, cfg, "list", "-f", "json")
		if err != nil {
			return err
		}
		var rows []map[string]any
		if err := json.Unmarshal(out, &rows); err != nil {
			return fmt.Errorf("parse %q: %w", out, err)
		}
		roles := map[string]int{}
		for _, r := range rows {
			role, _ := r["Role"].(string)
			roles[role]++
		}
		if roles["Leader"] != 1 || roles["Sync Standby"] != 2 {
			return fmt.Errorf("roles %v", roles)
		}
		return nil
	})
}

// TestQuorumModeChangesAtRuntime: PATCH /config moves a running cluster
// from one named synchronous standby to quorum commit (ANY 1 of both,
// quorum 1), to ANY 2 of both (quorum 0: each standby holds every
// commit), and back to one named standby, with commits working at each
// step and no PostgreSQL restart.
func TestQuorumModeChangesAtRuntime(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	before := postmasters(t, c)
	waitSyncStandby(t, c, leader, replicateTimeout)
	mustExec(t, leader, "CREATE TABLE e2e_qmode (id int PRIMARY KEY)")

	patchConfig(t, leader, map[string]any{"synchronous_mode": "quorum"})
	waitQuorum(t, c, leader, replicateTimeout)
	mustExec(t, leader, "INSERT INTO e2e_qmode VALUES (1)")

	patchConfig(t, leader, map[string]any{"synchronous_node_count": 2})
	others := c.Others(leader.Name)
	names := []string{others[0].Name, others[1].Name}
	slices.Sort(names)
	waitSSN(t, leader, replicateTimeout, "ANY 2 ("+strings.Join(names, ",")+")")
	testcluster.Poll(t, replicateTimeout, "the sync key: both standbys, quorum 0", func(ctx context.Context) error {
		k, _, err := readSyncKey(ctx, c)
		if err != nil {
			return err
		}
		if !slices.Equal(k.Standbys(), names) || k.QuorumValue() != 0 || k.Quorum == nil {
			return fmt.Errorf("sync key %s quorum %v", k, k.Quorum)
		}
		return nil
	})
	mustExec(t, leader, "INSERT INTO e2e_qmode VALUES (2)")

	patchConfig(t, leader, map[string]any{"synchronous_mode": true, "synchronous_node_count": 1})
	sb := waitSyncStandby(t, c, leader, replicateTimeout)
	waitSSN(t, leader, replicateTimeout, sb.Name)
	mustExec(t, leader, "INSERT INTO e2e_qmode VALUES (3)")
	waitRows(t, c.Nodes(), 3, "SELECT count(*) FROM e2e_qmode")
	if after := postmasters(t, c); !maps.Equal(before, after) {
		t.Errorf("PostgreSQL restarted while the synchronous mode changed: before %v, after %v", before, after)
	}
}
