package chaos

import (
	"testing"
	"time"
)

// TestChaosCatchesUnsafeBuild is the suite's self-test against a real,
// deliberately broken agent: built with -tags regent_unsafe_nofence, a
// leader that loses its lease keeps PostgreSQL writable. A primary cut
// from etcd and from the replicas but reachable by clients, held well past
// the lease, must then make the split-brain and lease checkers fail.
// (The broken agent never rejoins as a replica, so the round does not
// recover; only the history checkers are run.)
func TestChaosCatchesUnsafeBuild(t *testing.T) {
	cfg := Config{
		Seed: 1, Rounds: 1, Sync: false, Kinds: []FaultKind{PartitionPrimaryAll},
		Actions: []ActionKind{}, Watchdog: WatchdogOn,
		MinHold: 20 * time.Second, MaxHold: 21 * time.Second,
		RecoveryTimeout: 20 * time.Second,
		Cluster:         Options{BuildTags: "regent_unsafe_nofence", KeepLogs: *flagKeep},
	}
	run := NewRun(t, cfg)
	rep := run.CheckHistory(run.Rounds())
	t.Logf("report of the deliberately broken build (failures expected):\n%s", rep.Summary())
	for _, v := range rep.Verdicts {
		switch v.Name {
		case "split-brain", "lease":
			if v.OK {
				t.Errorf("the %s checker passed a build without self-fencing: %s", v.Name, v)
			} else {
				t.Logf("caught, as it must be: %s\n%s", v, v.Details)
			}
		}
	}
}
