package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// leaderlessHold is how long a cluster with no eligible member is watched
// for a leader appearing: several loop_waits, each a chance to race.
const leaderlessHold = 5 * time.Second

// TestNoFailoverTag: a replica tagged nofailover never promotes. pg1 is
// tagged (it cannot bootstrap, so it is a replica, and it would win an
// equal-WAL tie-break by name): the other replica wins. With only pg1
// left alive the cluster stays leaderless and says why.
func TestNoFailoverTag(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{Tags: map[string]map[string]any{"pg1": {"nofailover": true}}})
	tagged := c.Node("pg1")
	if old == tagged {
		t.Fatalf("%s is tagged nofailover but bootstrapped the cluster", tagged.Name)
	}
	var other *testcluster.Node
	for _, n := range c.Others(old.Name) {
		if n != tagged {
			other = n
		}
	}
	seedTable(t, c, old, "e2e_nofail", "id int PRIMARY KEY", "VALUES (1)", 1)

	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	if winner != other {
		t.Fatalf("%s was promoted; want %s (%s is tagged nofailover)", winner.Name, other.Name, tagged.Name)
	}
	t.Logf("%s promoted %.1fs after %s died", winner.Name, time.Since(killed).Seconds(), old.Name)
	waitStreamingFrom(t, tagged, winner, rejoinTimeout)
	fd := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	if cand, ok := fd.candidate(tagged.Name); ok && cand.Eligible {
		t.Errorf("failover record lists %s (nofailover) as eligible: %s", tagged.Name, fd)
	}

	killed = time.Now()
	winner.Kill(t)
	why := waitClusterDecision(t, tagged, c.TTL()+rtoSlack+replicateTimeout, tagged.Name, "nofailover")
	t.Logf("GET /cluster on %s, its decision: %q", tagged.Name, why)
	holdsFor(t, leaderlessHold, "no leader with only the nofailover member alive", noLeader(c, tagged))
	d := awaitDecision(t, tagged, replicateTimeout, "stood_down", tagged.Name, killed, func(d decisionEntry) error {
		if !strings.Contains(d.Reason, "tag nofailover") {
			return fmt.Errorf("reason %q does not name the tag", d.Reason)
		}
		return nil
	})
	t.Logf("stood_down record: %s", d)
}

// TestNoEligibleLagging: a replica further behind the last known leader
// position than maximum_lag_on_failover never promotes, even when it
// would win every other rule (the name tie-break), and alone it leaves the
// cluster leaderless, saying why.
func TestNoEligibleLagging(t *testing.T) {
	const maxLag = 64 << 10 // 64 kB: the held replica falls ~1 MB behind
	c, old := startHealthy(t, testcluster.Options{DCS: map[string]any{"maximum_lag_on_failover": maxLag}})
	ctx := t.Context()
	replicas := c.Others(old.Name)
	held, ahead := replicas[0], replicas[1] // held would win an equal-WAL tie-break
	mustExec(t, old, "CREATE TABLE e2e_lag (id int PRIMARY KEY, pad text NOT NULL)")
	waitRows(t, replicas, 0, "SELECT count(*) FROM e2e_lag")

	release := held.HoldWALReceiver(t)
	mustExec(t, old, "INSERT INTO e2e_lag SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g")
	target := queryLSN(t, old, "pg_current_wal_lsn()")
	testcluster.Poll(t, replicateTimeout, ahead.Name+" replayed the writes", func(ctx context.Context) error {
		pos, err := ahead.QueryInt(ctx, lsnInt("pg_last_wal_replay_lsn()"))
		if err == nil && pos < target {
			err = fmt.Errorf("replayed %X < %X", pos, target)
		}
		return err
	})
	// The leader publishes its position in the status key at most every
	// 10 s: wait for it, so that the lag rule has a position to compare to.
	optime := waitOptime(t, c, target, 15*time.Second)
	heldPos, err := walPosition(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status optime %X; %s held at %X (%d kB behind, maximum_lag_on_failover %d kB)", optime, held.Name, heldPos, (optime-heldPos)>>10, maxLag>>10)
	if optime-heldPos <= maxLag {
		t.Fatalf("%s is only %d bytes behind the status optime; the scenario needs > %d", held.Name, optime-heldPos, maxLag)
	}

	killed := time.Now()
	old.Kill(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	if winner != ahead {
		t.Fatalf("%s was promoted; want %s (%s lags by more than maximum_lag_on_failover)", winner.Name, ahead.Name, held.Name)
	}
	d := awaitDecision(t, winner, replicateTimeout, "stood_down", held.Name, killed, lagReason)
	t.Logf("%s promoted; %s stood down: %s", winner.Name, held.Name, d.Reason)

	// Now only the lagging replica survives: no eligible member.
	killed = time.Now()
	winner.Kill(t)
	why := waitClusterDecision(t, held, c.TTL()+rtoSlack+replicateTimeout, held.Name, "maximum_lag_on_failover")
	t.Logf("GET /cluster on %s, its decision: %q", held.Name, why)
	holdsFor(t, leaderlessHold, "no leader with only the lagging member alive", noLeader(c, held))
	d = awaitDecision(t, held, replicateTimeout, "stood_down", held.Name, killed, lagReason)
	t.Logf("stood_down record: %s", d)
	release()
}

func lagReason(d decisionEntry) error {
	if !strings.Contains(d.Reason, "maximum_lag_on_failover") {
		return fmt.Errorf("reason %q does not name maximum_lag_on_failover", d.Reason)
	}
	return nil
}

// waitOptime waits until the status key's optime reaches at least lsn and
// returns it.
func waitOptime(t *testing.T, c *testcluster.Cluster, lsn int64, timeout time.Duration) int64 {
	t.Helper()
	var optime int64
	testcluster.Poll(t, timeout, fmt.Sprintf("status key optime ≥ %X", lsn), func(ctx context.Context) error {
		raw, err := c.Get(ctx, "status")
		if err != nil {
			return err
		}
		var st struct {
			Optime int64 `json:"optime"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("status key %q: %w", raw, err)
		}
		if optime = st.Optime; optime < lsn {
			return fmt.Errorf("optime %X", optime)
		}
		return nil
	})
	return optime
}
