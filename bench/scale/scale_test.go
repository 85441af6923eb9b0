package scale

import (
	"testing"
	"time"

	"github.com/regent-ha/regent/bench"
)

// TestRunOneCluster runs the measurement at its smallest: one cluster of
// three in-process agents on an embedded etcd (no PostgreSQL process).
// The agents renew their leases, so etcd must see keep-alives.
func TestRunOneCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded etcd and three agents; skipped with -short")
	}
	got := Run(t, bench.FastProfile, []int{1}, 2*time.Second, t.Logf)
	if len(got) != 1 || got[0].Clusters != 1 || got[0].Nodes != 3 || got[0].KeepAlivesPerNodeS <= 0 {
		t.Fatalf("scale points = %+v, want one point of 1 cluster, 3 nodes, with keep-alives", got)
	}
}
