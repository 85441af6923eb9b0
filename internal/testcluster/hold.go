package testcluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/postgres"
)

// Holding replication back: tests that need one replica behind another, or
// WAL that only the primary has, SIGSTOP single PostgreSQL processes (the
// test runs as root; PostgreSQL as the postgres user). A stopped WAL
// receiver keeps its reported receive position while the primary moves on
// (what the kernel buffered for it arrives after SIGCONT); a stopped
// walsender sends nothing, so WAL written meanwhile stays on the primary.

// QueryInts runs a query returning one integer column on a fresh
// connection and returns every row's value.
func (n *Node) QueryInts(ctx context.Context, sql string, args ...any) ([]int64, error) {
	conn, err := n.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer CloseConn(ctx, conn)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query on %s: %w", n.Name, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("query on %s: %w", n.Name, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query on %s: %w", n.Name, err)
	}
	return out, nil
}

// HoldWALReceiver SIGSTOPs the node's WAL receiver (the pid in its
// pg_stat_wal_receiver) and returns once it is stopped. The returned
// release SIGCONTs it; it is idempotent and also runs at the test's
// cleanup. It fails the test when the node has no WAL receiver.
func (n *Node) HoldWALReceiver(t testing.TB) (release func()) {
	t.Helper()
	return n.hold(t, "WAL receiver", "SELECT pid FROM pg_stat_wal_receiver WHERE pid IS NOT NULL")
}

// HoldWALSenders SIGSTOPs every walsender of the node (the pids in its
// pg_stat_replication) and returns once they are stopped; release as for
// HoldWALReceiver. It fails the test when the node has no walsender.
func (n *Node) HoldWALSenders(t testing.TB) (release func()) {
	t.Helper()
	return n.hold(t, "walsenders", "SELECT pid FROM pg_stat_replication")
}

func (n *Node) hold(t testing.TB, what, query string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	pids, err := n.QueryInts(ctx, query)
	cancel()
	if err != nil {
		t.Fatalf("testcluster: hold %s of %s: %v", what, n.Name, err)
	}
	if len(pids) == 0 {
		t.Fatalf("testcluster: hold %s of %s: none running", what, n.Name)
	}
	var stopped []int
	var once sync.Once
	release := func() {
		once.Do(func() {
			for _, pid := range stopped {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
			n.c.log.logf("[%s] released %s %v (SIGCONT)", n.Name, what, stopped)
		})
	}
	t.Cleanup(release)
	for _, p := range pids {
		pid := int(p)
		// Guard against pid reuse: never signal anything but PostgreSQL.
		if !postgres.IsPostgresBinary(pid) {
			t.Fatalf("testcluster: hold %s of %s: pid %d is not a postgres process", what, n.Name, pid)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("testcluster: hold %s of %s: SIGSTOP %d: %v", what, n.Name, pid, err)
		}
		stopped = append(stopped, pid)
	}
	if err := proc.WaitStopped(stopped); err != nil {
		t.Fatalf("testcluster: hold %s of %s: %v", what, n.Name, err)
	}
	n.c.log.logf("[%s] holding %s %v (SIGSTOP)", n.Name, what, stopped)
	return release
}
