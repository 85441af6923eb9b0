package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestTricklingReplicaDoesNotRace (primary_race_backoff): the primary's
// agent hangs (PostgreSQL keeps running, as with a dead agent) while one
// replica has all the WAL and the other still receives a backlog through
// a throttled walsender when the leader key expires. The replica whose
// WAL still moves stays out of the race, saying so, and the finished one
// takes over.
func TestTricklingReplicaDoesNotRace(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{DCS: map[string]any{
		// Lag must not be the reason the trickling replica stands aside.
		"maximum_lag_on_failover": 1 << 30, "primary_race_backoff": 5,
	}})
	replicas := c.Others(old.Name)
	finished, trickling := replicas[0], replicas[1]
	seedTable(t, c, old, "e2e_trickle", "id int PRIMARY KEY, pad text", "", 0)

	// A backlog only the trickling replica still has to receive.
	hold := trickling.HoldWALReceiver(t)
	const rows = 100000
	mustExec(t, old, fmt.Sprintf("INSERT INTO e2e_trickle SELECT g, repeat('x', 1000) FROM generate_series(1, %d) g", rows))
	waitRows(t, []*testcluster.Node{finished}, rows, "SELECT count(*) FROM e2e_trickle")
	log := trickling.CaptureLog(t)

	frozeAt := time.Now()
	old.FreezeAgent(t)
	// Let the backlog trickle from shortly before the lease expires, so it
	// is still arriving when the key goes (the lease runs ttl from the
	// frozen agent's last renewal).
	key := readLeaderKey(t, c)
	testcluster.Poll(t, c.TTL()+replicateTimeout, "the leader's lease within 3 s of expiry", func(ctx context.Context) error {
		ttl, err := c.Etcd().TimeToLive(ctx, clientv3.LeaseID(key.Lease))
		if err != nil {
			return err
		}
		if ttl.TTL > 3 {
			return fmt.Errorf("lease %x: %d s left", key.Lease, ttl.TTL)
		}
		return nil
	})
	throttle := old.ThrottleWALSender(t, trickling.Name, 5*time.Millisecond, time.Second)
	hold()

	winner := waitNewLeader(t, c, old.Name, failoverWait)
	t.Logf("new leader %s %.1fs after the freeze", winner.Name, time.Since(frozeAt).Seconds())
	if winner != finished {
		t.Fatalf("%s took over while its WAL was still arriving; want %s, which had finished receiving", winner.Name, finished.Name)
	}
	// Still behind the finished replica when it decided: the backlog was
	// really still arriving (else the test proves nothing).
	line := log.Wait(t, replicateTimeout, "a decision not to race because its WAL still arrives", func(l string) bool {
		return strings.Contains(l, "msg=decision") && strings.Contains(l, "received WAL still advancing")
	})
	t.Logf("%s: %s", trickling.Name, line)
	if !strings.Contains(line, finished.Name+" is more advanced") {
		t.Errorf("%s had received all WAL when it decided (the throttle let the backlog through too fast): %s", trickling.Name, line)
	}
	if raced := log.Matching(func(l string) bool { return strings.Contains(l, "msg=decision") && strings.Contains(l, "action=race") }); len(raced) > 0 {
		t.Errorf("%s raced while its WAL still arrived: %q", trickling.Name, raced)
	}

	throttle()
	waitStreamingFrom(t, trickling, winner, rejoinTimeout)
	waitRows(t, []*testcluster.Node{trickling}, rows, "SELECT count(*) FROM e2e_trickle")
	old.Thaw(t)
}
