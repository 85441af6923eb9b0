package bench

import (
	"path/filepath"
	"testing"

	"github.com/regent-ha/regent/internal/chaos"
	"github.com/regent-ha/regent/internal/testcluster"
)

// KindHostDeathFenced is KindHostDeath on a cluster with the fence fast
// path (#19): fence.command is the harness's hook and fence.fast_failover
// is on, so the replicas that lose the primary agree, have the hook kill
// its host's processes (it confirms them gone and exits 0: the old
// primary can no longer acknowledge writes) and take over without waiting
// for the lease.
const KindHostDeathFenced = "host_death_fenced"

// FenceFastProfile is the default timings, named for the fast-path run.
var FenceFastProfile = Profile{Name: "fence_fast", TTL: 10, LoopWait: 1, RetryTimeout: 3, SafetyMargin: 3}

// newFencedCluster starts a 3-node cluster at prof's timings with the
// harness's fence hook (internal/chaos/fencehook.go: it SIGKILLs the
// target's agent and PostgreSQL and waits until they are gone) as
// fence.command and fence.fast_failover on.
func newFencedCluster(t *testing.T, prof Profile) *testcluster.Cluster {
	user, err := testcluster.LookupOSUser()
	if err != nil {
		t.Fatal(err)
	}
	hook, err := chaos.WriteFenceHook(filepath.Join(testcluster.OpenTempDir(t), "fence"), user.MkdirOwned)
	if err != nil {
		t.Fatal(err)
	}
	c := newClusterWith(t, prof, func(cfg map[string]any) {
		cfg["fence"] = map[string]any{"command": []string{hook.Path}, "fast_failover": true}
	})
	// The hook runs only at a failover: the targets are there long before.
	for _, n := range c.Nodes() {
		if err := hook.SetTarget(n.Name, chaos.FenceTarget{Config: n.ConfigPath, DataDir: n.DataDir}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
