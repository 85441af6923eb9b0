package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/switchover"
)

func standbyCluster(s *Snapshot) {
	s.Config.StandbyCluster = &config.StandbyCluster{Host: "dr-haproxy", Port: 5000}
}

// TestDecideStandbyCluster: the standby leader's rules — it holds the key
// in recovery and never promotes while standby_cluster is set; a primary
// under standby_cluster is demoted to it (key kept); without
// standby_cluster (promote-cluster) the same member promotes.
func TestDecideStandbyCluster(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want Action
	}{
		{"standby leader in recovery stays in recovery", snap(standbyCluster, leading), Action{Kind: ActStandbyLead}},
		{"promote-cluster: same member without standby_cluster promotes", snap(leading), Action{Kind: ActPromote}},
		{"demote-cluster: a primary under standby_cluster demotes, key kept", snap(standbyCluster, leading, func(s *Snapshot) { s.PG = primary(0x6000000) }), Action{Kind: ActDemoteStandby}},
		{"a primary cluster's leader leads", snap(leading, func(s *Snapshot) { s.PG = primary(0x6000000) }), Action{Kind: ActLead}},
		{"replicas cascade from the standby leader", snap(standbyCluster), Action{Kind: ActFollow, Leader: "pg1"}},
		{"uninitialized standby cluster bootstraps from the remote", snap(standbyCluster, uninitialized), Action{Kind: ActBootstrapStandby}},
		{"uninitialized primary cluster runs initdb", snap(uninitialized), Action{Kind: ActBootstrap}},
		{"uninitialized archive-only standby cluster bootstraps too", snap(uninitialized, func(s *Snapshot) {
			s.Config.StandbyCluster = &config.StandbyCluster{RestoreCommand: "cp /a/%f %p"}
		}), Action{Kind: ActBootstrapStandby}},
		{"crashed standby leader restarts in recovery", snap(standbyCluster, crashedLeader(time.Second)), Action{Kind: ActStartStandbyLeader}},
		{"crashed primary restarts as primary", snap(crashedLeader(time.Second)), Action{Kind: ActStartPrimary}},
		{"standby leader down too long releases", snap(standbyCluster, crashedLeader(time.Minute)), Action{Kind: ActRelease}},
		{"restart of the standby leader starts it in recovery", snap(standbyCluster, leading, func(s *Snapshot) {
			s.Restart, s.PG = RestartStarting, PGState{}
		}), Action{Kind: ActStartStandbyLeader}},
		{"standby leader with an empty data dir re-clones the remote", snap(standbyCluster, leading, func(s *Snapshot) { s.PG = PGState{DataDirEmpty: true} }), Action{Kind: ActCloneRemote}},
		{"archive-only standby leader with an empty data dir releases", snap(leading, func(s *Snapshot) {
			s.Config.StandbyCluster = &config.StandbyCluster{RestoreCommand: "cp /a/%f %p"}
			s.PG = PGState{DataDirEmpty: true}
		}), Action{Kind: ActRelease}},
		{"archive-only standby leader replays from the archive", snap(leading, func(s *Snapshot) {
			s.Config.StandbyCluster = &config.StandbyCluster{RestoreCommand: "cp /a/%f %p"}
		}), Action{Kind: ActStandbyLead}},
		{"paused standby leader keeps its key", snap(standbyCluster, leading, func(s *Snapshot) { s.Config.Pause = true }), Action{Kind: ActStandbyLead}},
		{"standby leader past its deadline fences like any leader", snap(standbyCluster, leading, func(s *Snapshot) { s.Now = t0.Add(2 * time.Second) }), Action{Kind: ActFence}},
		{"a leaderless standby cluster elects (the winner stays in recovery)", snap(standbyCluster, unlocked), Action{Kind: ActRace}},
		// A switchover inside the standby cluster (switchover/standby.go).
		{"switchover: the standby leader stopping on purpose waits", snap(standbyCluster, leading, func(s *Snapshot) { s.Quiescing = true }), Action{Kind: ActWait}},
		{"switchover: the stopped standby leader waits too (no restart while quiesced)", snap(standbyCluster, leading, func(s *Snapshot) {
			s.Quiescing, s.PG = true, PGState{DownSince: t0.Add(-time.Minute)}
		}), Action{Kind: ActWait}},
		{"switchover: the candidate behind the old standby leader's position waits", snap(standbyCluster, unlocked, designated, func(s *Snapshot) {
			s.Switchover = &switchover.Record{To: "pg2", Standby: true, FinalLSN: 0x5000001}
		}), Action{Kind: ActWait}},
		{"switchover: the candidate at the old standby leader's position races (it stays in recovery)", snap(standbyCluster, unlocked, designated, func(s *Snapshot) {
			s.Switchover = &switchover.Record{To: "pg2", Standby: true, FinalLSN: 0x5000000}
		}), Action{Kind: ActRace}},
		{"switchover: the new standby leader stays in recovery", snap(standbyCluster, leading, func(s *Snapshot) {
			s.Switchover = &switchover.Record{From: "pg1", To: "pg2", Standby: true, Stage: switchover.StagePromote, FinalLSN: 0x5000000}
		}), Action{Kind: ActStandbyLead}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.s)
			if d := cmp.Diff(tt.want, got.Action); d != "" {
				t.Errorf("decide (-want +got):\n%s\nreason: %s", d, got.Reason)
			}
		})
	}
}

func TestStandbyClusterUpstream(t *testing.T) {
	var off *config.StandbyCluster
	if off.Active() || off.Upstream() != nil {
		t.Fatal("nil standby_cluster is active")
	}
	sc := &config.StandbyCluster{Host: "h", Port: 6000, PrimarySlotName: "dr", RestoreCommand: "r", CreateReplicaMethods: []string{"basebackup"}}
	up := sc.Upstream()
	if !up.Remote || up.Host != "h" || up.Port != 6000 || up.Slot != "dr" || up.RestoreCommand != "r" || len(up.Methods) != 1 {
		t.Errorf("Upstream() = %+v", up)
	}
}

// TestClusterDocStandbyLeader: GET /cluster names a standby cluster's
// leader standby_leader (patroni-compat.md), a primary cluster's leader.
func TestClusterDocStandbyLeader(t *testing.T) {
	v := view("pg1", "pg1", "pg2")
	dyn := config.DefaultDynamic()
	if got := ClusterDoc(v, dyn).Members[0].Role; got != "leader" {
		t.Errorf("primary cluster: role %q, want leader", got)
	}
	dyn.StandbyCluster = &config.StandbyCluster{Host: "a", Port: 5432}
	doc := ClusterDoc(v, dyn)
	if doc.Members[0].Role != "standby_leader" || doc.Members[1].Role != "replica" {
		t.Errorf("standby cluster: roles %q, %q, want standby_leader, replica", doc.Members[0].Role, doc.Members[1].Role)
	}
}

// TestStandbyClusterIgnoresTheSyncKey: synchronous replication does not
// apply in a standby cluster (Patroni's rule), so a sync key left from
// the cluster's time as a primary cluster (demote-cluster deletes nothing)
// must not keep the best member from taking a vacant standby leader key.
// The config comes from the key's JSON, as a member reads it.
func TestStandbyClusterIgnoresTheSyncKey(t *testing.T) {
	dyn, err := config.ParseDynamic([]byte(`{"synchronous_mode": true, "standby_cluster": {"host": "dr-haproxy", "port": 5000}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := snap(unlocked, func(s *Snapshot) {
		s.Config = dyn
		standby := "pg3"
		s.View.Sync = dcs.Sync{Leader: "pg1", SyncStandby: &standby}
	})
	if got := decide(s); got.Action.Kind != ActRace {
		t.Fatalf("decide = %s (%s), want %s: the stale sync key must not bind a standby cluster", got.Action.Kind, got.Reason, ActRace)
	}
}
