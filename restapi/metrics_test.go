package restapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// primaryHelp is patroni_primary's help text, as Patroni 3.0.2 writes it.
const primaryHelp = "1 if this node is the leader (primary)."

// patroniRegistry is a fresh registry holding ts's collector (scope demo).
func patroniRegistry(ts testServer) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPatroniCollector(ts.Server, "demo"))
	return reg
}

// gauge is the exposition text of one gauge of scope demo.
func gauge(name, help, value string) string {
	return fmt.Sprintf("# HELP %s %s\n# TYPE %s gauge\n%s{scope=\"demo\"} %s\n", name, help, name, name, value)
}

func TestPatroniCollectorExportsTheStatus(t *testing.T) {
	ts := newTestServer(t, nil)
	reg := patroniRegistry(ts)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before the first publish: %d series, %v; want none", n, err)
	}
	ts.Publish(primarySnap())
	want := gauge("patroni_primary", primaryHelp, "1") +
		gauge("patroni_replica", "1 if this node is a running replica.", "0") +
		gauge("patroni_xlog_location", "Current WAL location on the primary (bytes).", "5.24288e+07")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "patroni_primary", "patroni_replica", "patroni_xlog_location"); err != nil {
		t.Error(err)
	}
	if n, _ := testutil.GatherAndCount(reg); n != len(patroniSeries) {
		t.Errorf("%d series, want all %d of Patroni's", n, len(patroniSeries))
	}
	// The leader check is time-bounded like /primary.
	ts.clock.Set(primarySnap().LeaderUntil)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(gauge("patroni_primary", primaryHelp, "0")), "patroni_primary"); err != nil {
		t.Errorf("past LeaderUntil: %v", err)
	}
}

// TestPatroniCollectorStandbyLeader: the leader of a standby cluster
// holds the lock but is no primary (Patroni's gauges).
func TestPatroniCollectorStandbyLeader(t *testing.T) {
	ts := newTestServer(t, nil)
	reg := patroniRegistry(ts)
	snap := primarySnap()
	snap.StandbyCluster = true
	snap.Status.Role = "standby_leader"
	ts.Publish(snap)
	want := gauge("patroni_primary", primaryHelp, "0") +
		gauge("patroni_standby_leader", "1 if this node is a standby leader.", "1")
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
