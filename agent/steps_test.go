package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/switchover"
)

// The steps after decide in tick (scheduled restart, on_role_change, the
// failover key, synchronous mode) decide as pure functions; these tables
// cover every branch of each.

func TestDecideScheduledRestart(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want scheduledRestartStep
	}{
		{"none scheduled", time.Time{}, restartNotDue},
		{"in the future", t0.Add(time.Second), restartNotDue},
		{"exactly now", t0, restartDue},
		{"late within 1.5·loop_wait + 1 min", t0.Add(-(15*time.Second + time.Minute)), restartDue},
		{"overdue past 1.5·loop_wait + 1 min", t0.Add(-(15*time.Second + time.Minute + time.Millisecond)), restartOverdue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snap(func(s *Snapshot) { s.ScheduledRestart, s.Config.LoopWait = tt.at, 10*time.Second })
			if got := decideScheduledRestart(s); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDecideRoleChange(t *testing.T) {
	tests := []struct {
		name         string
		reported     Role
		role         Role
		wantFire     bool
		wantRemember Role
	}{
		{"first role is remembered, not reported", "", RoleReplica, false, RoleReplica},
		{"unchanged", RoleReplica, RoleReplica, false, RoleReplica},
		{"promoted", RoleReplica, RolePrimary, true, RolePrimary},
		{"demoted back to replica", RolePrimary, RoleReplica, true, RoleReplica},
		{"between roles: demoted is not a role change", RolePrimary, RoleDemoted, false, RolePrimary},
		{"between roles: uninitialized", "", RoleUninitialized, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fire, remember := decideRoleChange(tt.reported, tt.role)
			if fire != tt.wantFire || remember != tt.wantRemember {
				t.Errorf("got (%v, %q), want (%v, %q)", fire, remember, tt.wantFire, tt.wantRemember)
			}
		})
	}
}

func TestDecideFailoverKey(t *testing.T) {
	// pg2 leads; the key asks for pg3 unless a case says otherwise.
	withKey := func(f dcs.Failover) func(*Snapshot) {
		return func(s *Snapshot) {
			s.View.Leader = &dcs.Leader{Name: "pg2"}
			s.View.Failover = f
			s.Config.LoopWait = 10 * time.Second
		}
	}
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	tests := []struct {
		name      string
		snap      Snapshot
		leading   bool
		quiescing bool
		want      failoverKeyStep
	}{
		{"no view", snap(func(s *Snapshot) { s.View = nil }), true, false, failoverKeyIdle},
		{"not leading (after act)", snap(withKey(dcs.Failover{Member: "pg3"})), false, false, failoverKeyIdle},
		{"no request", snap(withKey(dcs.Failover{})), true, false, failoverKeyIdle},
		{"a switchover already runs", snap(withKey(dcs.Failover{Member: "pg3"}), func(s *Snapshot) { s.Switchover = &switchover.Record{ID: "x"} }), true, false, failoverKeyIdle},
		{"quiescing (after the switchover step)", snap(withKey(dcs.Failover{Member: "pg3"})), true, true, failoverKeyIdle},
		{"names me as candidate", snap(withKey(dcs.Failover{Member: "pg2"})), true, false, failoverKeyClear},
		{"names another leader", snap(withKey(dcs.Failover{Leader: "pg1", Member: "pg3"})), true, false, failoverKeyClear},
		{"unparsable scheduled_at", snap(withKey(dcs.Failover{Member: "pg3", ScheduledAt: "tomorrow"})), true, false, failoverKeyClear},
		{"scheduled beyond loop_wait: not due", snap(withKey(dcs.Failover{Member: "pg3", ScheduledAt: at(11 * time.Second)})), true, false, failoverKeyIdle},
		{"scheduled within loop_wait: due", snap(withKey(dcs.Failover{Member: "pg3", ScheduledAt: at(10 * time.Second)})), true, false, failoverKeyStart},
		{"scheduled 1.5·loop_wait ago: still due", snap(withKey(dcs.Failover{Member: "pg3", ScheduledAt: at(-15 * time.Second)})), true, false, failoverKeyStart},
		{"scheduled longer ago: overdue", snap(withKey(dcs.Failover{Member: "pg3", ScheduledAt: at(-16 * time.Second)})), true, false, failoverKeyClear},
		{"immediate, naming me as leader", snap(withKey(dcs.Failover{Leader: "pg2", Member: "pg3"})), true, false, failoverKeyStart},
		{"immediate, any candidate", snap(withKey(dcs.Failover{Leader: "pg2"})), true, false, failoverKeyStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideFailoverKey(tt.snap, tt.leading, tt.quiescing)
			if got.Step != tt.want {
				t.Errorf("step %d (%s), want %d", got.Step, got.Why, tt.want)
			}
			if (got.Step == failoverKeyClear) != (got.Why != "") {
				t.Errorf("step %d with reason %q: a clear says why, nothing else does", got.Step, got.Why)
			}
		})
	}
}

func TestDecideSync(t *testing.T) {
	// pg2 leads with standbys pg1 and pg3; pg3 streams as sync, flushed 0x100.
	leader := func(mut ...func(*Snapshot)) Snapshot {
		return snap(append([]func(*Snapshot){func(s *Snapshot) {
			s.View.Leader = &dcs.Leader{Name: "pg2"}
			s.View.Members = syncMembers("pg1", "pg2", "pg3")
			s.PG = primary(0x200)
			s.PG.Status.Replication = []postgres.Replica{rep("pg3", "sync", 0x100)}
			s.Config.SynchronousMode = config.SyncOn
			s.Config.SynchronousNodeCount = 1
		}}, mut...)...)
	}
	key := func(leader string, standbys ...string) func(*Snapshot) {
		return func(s *Snapshot) {
			s.View.SyncRev = 7
			s.View.Sync = dcs.Sync{Leader: leader}
			if len(standbys) > 0 {
				j := standbys[0]
				s.View.Sync.SyncStandby = &j
			}
		}
	}
	tests := []struct {
		name      string
		snap      Snapshot
		current   []string
		changedAt postgres.LSN
		want      syncDecision
	}{
		{"off, no key: empty the setting",
			leader(func(s *Snapshot) { s.Config.SynchronousMode = config.SyncOff }), []string{"pg3"}, 0,
			syncDecision{Off: true}},
		{"off, a key left: delete it",
			leader(key("pg2", "pg3"), func(s *Snapshot) { s.Config.SynchronousMode = config.SyncOff }), []string{"pg3"}, 0,
			syncDecision{Off: true, DeleteKey: true}},
		{"the key names another leader: take it over, naming nobody yet",
			leader(key("pg1", "pg2")), nil, 0,
			syncDecision{Shrink: true, SSN: "pg3"}},
		{"a standby in the key is no longer picked: shrink before the setting drops it",
			leader(key("pg2", "pg3"), func(s *Snapshot) { s.PG.Status.Replication = nil }), []string{"pg3"}, 0,
			syncDecision{Shrink: true, SSN: ""}},
		{"a standby in the key is not confirmed since the change: shrink",
			leader(key("pg2", "pg3")), []string{"pg3"}, 0x101,
			syncDecision{Shrink: true, SSN: "pg3"}},
		{"the setting changes: grow only under it, next tick",
			leader(key("pg2")), nil, 0,
			syncDecision{SSN: "pg3"}},
		{"confirmed under the setting in force: grow the key",
			leader(key("pg2")), []string{"pg3"}, 0x100,
			syncDecision{SSN: "pg3", Grow: true, Grown: []string{"pg3"}}},
		{"steady: nothing to write",
			leader(key("pg2", "pg3")), []string{"pg3"}, 0x100,
			syncDecision{SSN: "pg3"}},
		{"no standby, not strict: degraded, asynchronous",
			leader(key("pg2"), func(s *Snapshot) { s.PG.Status.Replication = nil }), nil, 0,
			syncDecision{SSN: "", Degraded: true}},
		{"no standby, strict: writes wait for any standby",
			leader(key("pg2"), func(s *Snapshot) { s.PG.Status.Replication = nil; s.Config.SynchronousModeStrict = true }), nil, 0,
			syncDecision{SSN: "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideSync(tt.snap, tt.current, tt.changedAt)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
