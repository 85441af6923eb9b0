package restapi

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPatroniCollectorExportsTheStatus(t *testing.T) {
	ts := newTestServer(t, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPatroniCollector(ts.Server, "demo"))
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before the first publish: %d series, %v; want none", n, err)
	}
	ts.Publish(primarySnap())
	want := `
# HELP patroni_primary 1 if this node is the leader (primary).
# TYPE patroni_primary gauge
patroni_primary{scope="demo"} 1
# HELP patroni_replica 1 if this node is a running replica.
# TYPE patroni_replica gauge
patroni_replica{scope="demo"} 0
# HELP patroni_xlog_location Current WAL location on the primary (bytes).
# TYPE patroni_xlog_location gauge
patroni_xlog_location{scope="demo"} 5.24288e+07
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patroni_primary", "patroni_replica", "patroni_xlog_location"); err != nil {
		t.Error(err)
	}
	if n, _ := testutil.GatherAndCount(reg); n != len(patroniSeries) {
		t.Errorf("%d series, want all %d of Patroni's", n, len(patroniSeries))
	}
	// The leader check is time-bounded like /primary.
	ts.clock.Set(primarySnap().LeaderUntil)
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP patroni_primary 1 if this node is the leader (primary).\n# TYPE patroni_primary gauge\npatroni_primary{scope=\"demo\"} 0\n"), "patroni_primary"); err != nil {
		t.Errorf("past LeaderUntil: %v", err)
	}
}

// TestPatroniCollectorStandbyLeader: the leader of a standby cluster
// holds the lock but is no primary (Patroni's gauges).
func TestPatroniCollectorStandbyLeader(t *testing.T) {
	ts := newTestServer(t, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPatroniCollector(ts.Server, "demo"))
	snap := primarySnap()
	snap.StandbyCluster = true
	snap.Status.Role = "standby_leader"
	ts.Publish(snap)
	want := `
# HELP patroni_primary 1 if this node is the leader (primary).
# TYPE patroni_primary gauge
patroni_primary{scope="demo"} 0
# HELP patroni_standby_leader 1 if this node is a standby leader.
# TYPE patroni_standby_leader gauge
patroni_standby_leader{scope="demo"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patroni_primary", "patroni_standby_leader"); err != nil {
		t.Error(err)
	}
}

func TestVersionNumber(t *testing.T) {
	for v, want := range map[string]float64{"3.0.2": 30002, "0.1.0": 100, "1.2": 10200, "x": 0} {
		if got := versionNumber(v); got != want {
			t.Errorf("versionNumber(%q) = %v, want %v", v, got, want)
		}
	}
}
