package agent

import (
	"maps"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// failsafeHeldBy: pg1 made a failsafe call age ago (ttl 10 s).
func failsafeHeldBy(leader string, age time.Duration) func(*Snapshot) {
	return func(s *Snapshot) {
		s.FailsafeHold = FailsafeHold{Leader: leader, At: t0.Add(-age), TTL: 10 * time.Second}
	}
}

func failsafeOn(s *Snapshot) { s.Config.FailsafeMode = true }

// topology sets the /failsafe key's members.
func topology(names ...string) func(*Snapshot) {
	return func(s *Snapshot) {
		s.FailsafeTopology = map[string]string{}
		for _, n := range names {
			s.FailsafeTopology[n] = "http://127.0.0.1:8008/patroni"
		}
	}
}

// TestDecideFailsafe: a member that accepted a failsafe call younger than
// its ttl never races or promotes, even when it sees the leader key gone
// (it reaches etcd, the leader does not); with failsafe_mode on, a member
// the /failsafe key does not name never races (Patroni's rule).
func TestDecideFailsafe(t *testing.T) {
	checkPlans(t, []planCase{
		{"a fresh hold forbids the race although the key expired",
			snap(unlocked, failsafeHeldBy("pg1", 3*time.Second)),
			Action{Kind: ActWait}, "leader pg1 confirmed 3s ago"},
		{"a fresh hold forbids a designated candidate's race too",
			snap(unlocked, designated, failsafeHeldBy("pg1", 9*time.Second)),
			Action{Kind: ActWait}, "not racing"},
		{"a hold binds whatever failsafe_mode says now",
			snap(unlocked, failsafeHeldBy("pg1", time.Second), func(s *Snapshot) { s.Config.FailsafeMode = false }),
			Action{Kind: ActWait}, "failsafe: leader pg1"},
		{"a hold of ttl age no longer binds: election as usual",
			snap(unlocked, failsafeHeldBy("pg1", 10*time.Second)),
			Action{Kind: ActRace}, "racing"},
		{"a hold does not stop following a leader key that exists",
			snap(failsafeHeldBy("pg1", time.Second)),
			Action{Kind: ActFollow, Leader: "pg1"}, "following"},
		{"a hold naming this member itself does not bind it",
			snap(unlocked, failsafeHeldBy("pg2", time.Second)),
			Action{Kind: ActRace}, "racing"},
		{"failsafe mode: a member the /failsafe key does not name never races",
			snap(unlocked, failsafeOn, topology("pg1", "pg3")),
			Action{Kind: ActWait}, "/failsafe key does not name me"},
		{"failsafe mode: a member the /failsafe key names races as usual",
			snap(unlocked, failsafeOn, topology("pg1", "pg2", "pg3")),
			Action{Kind: ActRace}, "racing"},
		{"failsafe mode without a /failsafe key: election as usual",
			snap(unlocked, failsafeOn),
			Action{Kind: ActRace}, "racing"},
		{"failsafe mode off: the /failsafe key is not consulted",
			snap(unlocked, topology("pg1")),
			Action{Kind: ActRace}, "racing"},
		{"paused: a running primary does not take the key under a hold",
			snap(unlocked, failsafeHeldBy("pg1", time.Second), func(s *Snapshot) {
				s.Config.Pause = true
				s.PG = primary(0x5000000)
			}),
			Action{Kind: ActWait}, "paused: the cluster has no leader, but failsafe"},
		{"paused: an explicit failover to me waits for the hold",
			snap(unlocked, designated, failsafeHeldBy("pg1", time.Second), func(s *Snapshot) { s.Config.Pause = true }),
			Action{Kind: ActWait}, "not taking the leader key"},
		{"paused: a replica under a hold and no request waits as before",
			snap(unlocked, failsafeHeldBy("pg1", time.Second), func(s *Snapshot) { s.Config.Pause = true }),
			Action{Kind: ActWait}, "paused: no automatic action"},
		{"the leader keeps leading in failsafe (its deadline decides)",
			snap(leading, func(s *Snapshot) {
				s.PG = primary(0x5000000)
				s.Lease.Failsafe = true
			}),
			Action{Kind: ActLead}, "leading"},
	})
}

// TestFailsafeTopology: whom a failsafe round must reach.
func TestFailsafeTopology(t *testing.T) {
	withKey := func(key string, members ...string) *dcs.Cluster {
		v := view("pg1", members...)
		v.Extra = map[string]dcs.Value{}
		if key != "" {
			v.Extra["failsafe"] = dcs.Value{Data: []byte(key)}
		}
		return v
	}
	const api = "http://127.0.0.1:8008/patroni"
	tests := []struct {
		name string
		v    *dcs.Cluster
		on   bool
		want map[string]string
	}{
		{"no view", nil, true, nil},
		{"failsafe off", withKey(`{"pg1":"a"}`, "pg1"), false, nil},
		{"no key", withKey("", "pg1", "pg2"), true, nil},
		{"garbage key", withKey(`[1]`, "pg1", "pg2"), true, nil},
		{"key without me", withKey(`{"pg2":"b"}`, "pg1", "pg2"), true, nil},
		{"alone", withKey(`{"pg1":"a"}`, "pg1"), true, map[string]string{}},
		{"key and view together", withKey(`{"pg1":"a","pg2":"b","pg4":"d"}`, "pg1", "pg2", "pg3"), true,
			map[string]string{"pg2": "b", "pg3": api, "pg4": "d"}},
		{"an empty api_url in the key takes the view's", withKey(`{"pg1":"a","pg2":""}`, "pg1", "pg2"), true,
			map[string]string{"pg2": api}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failsafeTopology(tt.v, "pg1", tt.on)
			if (got == nil) != (tt.want == nil) || !maps.Equal(got, tt.want) {
				t.Errorf("topology = %v, want %v", got, tt.want)
			}
		})
	}
}
