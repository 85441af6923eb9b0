package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestPostgresCrashRestartsInPlace: PostgreSQL dies on the primary while
// its agent lives. The agent restarts it in place within
// primary_start_timeout, keeping the leader key on the same lease: no
// failover, writes work again on the same node.
func TestPostgresCrashRestartsInPlace(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	seedTable(t, c, leader, "e2e_crash", "id int PRIMARY KEY", "VALUES (1)", 1)
	before := readLeaderKey(t, c)

	killed := time.Now()
	leader.KillPostgres(t)
	var moved []string
	testcluster.Poll(t, primaryStartTimeout+replicateTimeout, "writes accepted by "+leader.Name+" again", func(ctx context.Context) error {
		if k, err := leaderKey(ctx, c); err == nil && k != before {
			moved = append(moved, fmt.Sprintf("%+v", k))
		}
		return tryWrite(ctx, leader, "INSERT INTO e2e_crash VALUES (2) ON CONFLICT DO NOTHING")
	})
	down := time.Since(killed)
	t.Logf("RTO postgres-crash (restart in place): %.1fs", down.Seconds())
	if down >= primaryStartTimeout {
		t.Errorf("%s took %s to accept writes again, want < primary_start_timeout %s", leader.Name, down.Round(time.Millisecond), primaryStartTimeout)
	}
	if after := readLeaderKey(t, c); after != before || len(moved) > 0 {
		t.Errorf("the leader key changed while PostgreSQL restarted: before %+v, meanwhile %v, after %+v", before, moved, after)
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+leader.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, leader)
	})
	d := awaitDecision(t, leader, replicateTimeout, "restart_primary", leader.Name, killed, nil)
	t.Logf("decision: %s", d)
	if l := c.WaitHealthy(t, rejoinTimeout); l != leader {
		t.Errorf("leader changed from %s to %s", leader.Name, l.Name)
	}
	waitRows(t, c.Others(leader.Name), 2, "SELECT count(*) FROM e2e_crash")
}

// TestPostgresCrashCannotRestart: PostgreSQL dies on the primary and
// cannot start again (its data directory became unreadable). After
// primary_start_timeout the agent releases the leader key and a replica
// takes over; once the directory is readable again the old primary
// rejoins as a replica.
func TestPostgresCrashCannotRestart(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	seedTable(t, c, old, "e2e_nostart", "id int PRIMARY KEY", "VALUES (1)", 1)

	fi, err := os.Stat(old.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.Chmod(old.DataDir, fi.Mode().Perm()); err != nil {
			t.Errorf("restore the mode of %s: %v", old.DataDir, err)
		}
	}
	t.Cleanup(restore) // before the cluster's cleanup, which stops the agents
	if err := os.Chmod(old.DataDir, 0); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	old.KillPostgres(t)

	winner := waitNewLeader(t, c, old.Name, primaryStartTimeout+failoverWait)
	took := time.Since(killed)
	t.Logf("RTO postgres-cannot-restart: %.1fs (new primary %s)", took.Seconds(), winner.Name)
	if bound := primaryStartTimeout + rtoSlack; took >= bound {
		t.Errorf("a replica took over %s after PostgreSQL died on %s, want < primary_start_timeout + %s = %s", took.Round(time.Millisecond), old.Name, rtoSlack, bound)
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
	rel := awaitDecision(t, winner, replicateTimeout, "release", old.Name, killed, nil)
	t.Logf("release decision: %s", rel)
	fo := awaitDecision(t, winner, replicateTimeout, "failover", winner.Name, killed, nil)
	t.Logf("failover decision: %s", fo)
	if fo.PreviousLeader != old.Name {
		t.Errorf("failover record: previous_leader = %q, want %q", fo.PreviousLeader, old.Name)
	}
	if err := tryWrite(t.Context(), winner, "INSERT INTO e2e_nostart VALUES (2)"); err != nil {
		t.Fatal(err)
	}

	restore()
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	waitRows(t, []*testcluster.Node{old}, 2, "SELECT count(*) FROM e2e_nostart")
}

// leaderKeyState identifies one holding of the leader key: a new holder,
// a new lease or a re-created key all differ.
type leaderKeyState struct {
	Holder         string
	Lease          int64
	CreateRevision int64
}

func leaderKey(ctx context.Context, c *testcluster.Cluster) (leaderKeyState, error) {
	resp, err := c.Etcd().Get(ctx, c.Keys().Leader())
	if err != nil {
		return leaderKeyState{}, fmt.Errorf("read the leader key: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return leaderKeyState{}, nil
	}
	kv := resp.Kvs[0]
	return leaderKeyState{Holder: string(kv.Value), Lease: kv.Lease, CreateRevision: kv.CreateRevision}, nil
}

func readLeaderKey(t *testing.T, c *testcluster.Cluster) leaderKeyState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	k, err := leaderKey(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if k.Holder == "" {
		t.Fatal("no leader key")
	}
	return k
}
