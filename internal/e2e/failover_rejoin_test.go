package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestRejoinDiverged: the old primary holds WAL the new primary never
// received (its walsenders were stopped while it acknowledged a few rows,
// then its host died). Restarted, it must not stream on its own diverged
// history: it is rewound (or re-cloned) onto the new primary's timeline,
// its extra rows are gone, and it replicates the new primary's writes.
func TestRejoinDiverged(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	ctx := t.Context()
	replicas := c.Others(old.Name)
	seedTable(t, c, old, "e2e_div", "id int PRIMARY KEY, origin text NOT NULL", "SELECT g, 'common' FROM generate_series(1, 10) g", 10)

	// A few rows only: the replicas must stay within maximum_lag_on_failover
	// of the status key's optime to be electable.
	release := old.HoldWALSenders(t)
	mustExec(t, old, "INSERT INTO e2e_div SELECT g, 'diverged' FROM generate_series(11, 15) g")
	oldLSN := queryLSN(t, old, "pg_current_wal_lsn()")
	for _, r := range replicas {
		if n, err := r.QueryInt(ctx, "SELECT count(*) FROM e2e_div"); err != nil || n != 10 {
			t.Fatalf("%s has %d rows (err %v): the held walsenders let the diverging rows through", r.Name, n, err)
		}
	}
	old.Kill(t)
	release() // the walsenders died with the postmaster; nothing left to resume

	winner := waitNewLeader(t, c, old.Name, failoverWait)
	t.Logf("old primary %s stopped at %X; new primary %s", old.Name, oldLSN, winner.Name)
	if err := tryWrite(ctx, winner, "INSERT INTO e2e_div VALUES (100, 'new primary')"); err != nil {
		t.Fatal(err)
	}
	if n, err := winner.QueryInt(ctx, "SELECT count(*) FROM e2e_div WHERE origin = 'diverged'"); err != nil || n != 0 {
		t.Fatalf("new primary %s has %d diverged rows (err %v); the scenario did not diverge", winner.Name, n, err)
	}

	restarted := time.Now()
	old.Start(t)
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	t.Logf("%s streams from %s %.1fs after its restart", old.Name, winner.Name, time.Since(restarted).Seconds())
	waitRows(t, []*testcluster.Node{old}, 1, "SELECT count(*) FROM e2e_div WHERE id = 100 AND origin = 'new primary'")
	if n, err := old.QueryInt(ctx, "SELECT count(*) FROM e2e_div WHERE origin = 'diverged'"); err != nil || n != 0 {
		t.Errorf("%s still has %d of the 5 diverged rows after rejoining (err %v)", old.Name, n, err)
	}
	if n, err := old.QueryInt(ctx, "SELECT count(*) FROM e2e_div"); err != nil || n != 11 {
		t.Errorf("%s has %d rows, want the new primary's 11 (err %v)", old.Name, n, err)
	}
	testcluster.Poll(t, replicateTimeout, old.Name+" on the new primary's timeline", func(ctx context.Context) error {
		a, err1 := old.Status(ctx)
		b, err2 := winner.Status(ctx)
		if err1 != nil || err2 != nil {
			return errors.Join(err1, err2)
		}
		if str(a["timeline"]) != str(b["timeline"]) {
			return fmt.Errorf("%s timeline %v, %s timeline %v", old.Name, a["timeline"], winner.Name, b["timeline"])
		}
		return nil
	})
	mustExec(t, winner, "INSERT INTO e2e_div VALUES (101, 'new primary')")
	waitRows(t, c.Others(winner.Name), 12, "SELECT count(*) FROM e2e_div")
}

// queryLSN evaluates an LSN expression on n as an integer.
func queryLSN(t *testing.T, n *testcluster.Node, expr string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	v, err := n.QueryInt(ctx, lsnInt(expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
