package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// closeWait bounds closing a connection whose server may be frozen.
const closeWait = 500 * time.Millisecond

// startWriter starts the load writer of the switchover tests on table (id
// bigint PRIMARY KEY, node text): a row every 10 ms on whichever node
// answers GET /primary with 200, each try bounded by 500 ms on the client
// and the server (testcluster's defaults).
func startWriter(t *testing.T, c *testcluster.Cluster, table string) *testcluster.Writer {
	return runWriter(t, c, testcluster.WriterOptions{Table: table, AppName: "e2e-writer", ServerTimeout: true})
}

// startLoaded starts a cluster ready for a switchover (see
// waitHealthyForSwitchover) and the load writer on table, and returns the
// cluster, its leader and the writer once the leader has acknowledged 50
// writes.
func startLoaded(t *testing.T, table string) (*testcluster.Cluster, *testcluster.Node, *testcluster.Writer) {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	mustExec(t, old, fmt.Sprintf(createLoadTable, table))
	w := startWriter(t, c, table)
	waitAcked(t, w, old.Name, time.Time{}, 50, replicateTimeout)
	return c, old, w
}

// runWriter starts a writer that stops at the test's end at the latest.
func runWriter(t *testing.T, c *testcluster.Cluster, opts testcluster.WriterOptions) *testcluster.Writer {
	w := c.StartWriter(t.Context(), opts)
	t.Cleanup(w.Stop)
	return w
}

// waitAcked waits until node ("" = any) acknowledged n writes at or after
// since, and returns when the first of them was acknowledged; it fails the
// test otherwise.
func waitAcked(t *testing.T, w *testcluster.Writer, node string, since time.Time, n int, timeout time.Duration) time.Time {
	t.Helper()
	first, err := w.WaitAcked(t.Context(), node, since, n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// checkAcked fails the test unless every acknowledged id is in n's table.
func checkAcked(t *testing.T, n *testcluster.Node, table string, acks []testcluster.Ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	lost, rows, err := testcluster.MissingAcks(ctx, n, table, acks)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on %s: %v", len(lost), len(acks), n.Name, testcluster.DescribeAcks(lost, 20))
	}
	t.Logf("writer: %d writes acknowledged, %d missing on %s (%d rows there)", len(acks), len(lost), n.Name, rows)
}

func closeQuietly(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeWait)
	defer cancel()
	_ = conn.Close(ctx)
}
