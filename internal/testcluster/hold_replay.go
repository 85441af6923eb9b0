package testcluster

import "testing"

// HoldWALReplay SIGSTOPs the node's startup process (the one replaying
// WAL on a standby) and returns once it is stopped; release as for
// HoldWALReceiver. Unlike a held WAL receiver, the node keeps receiving
// and flushing WAL (so its primary's walsenders, and a fast shutdown
// waiting for them, are not held up) but its replay position stands
// still. It fails the test when the node has no startup process (it is
// not a standby).
func (n *Node) HoldWALReplay(t testing.TB) (release func()) {
	t.Helper()
	return n.hold(t, "WAL replay (startup process)", "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'")
}
