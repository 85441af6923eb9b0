package agent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

func syncMembers(specs ...string) map[string]dcs.Member {
	out := map[string]dcs.Member{}
	for _, s := range specs {
		name, tag, _ := strings.Cut(s, ":")
		m := dcs.Member{State: "running"}
		if tag != "" {
			// "name:tag" sets a boolean tag, "name:tag=N" a number.
			var v any = true
			if k, n, ok := strings.Cut(tag, "="); ok {
				tag, v = k, n
			}
			m.Tags = map[string]any{tag: v}
		}
		out[name] = m
	}
	return out
}

func rep(name, syncState string, flush postgres.LSN) postgres.Replica {
	return postgres.Replica{ApplicationName: name, State: "streaming", SyncState: syncState, FlushLSN: flush}
}

func TestPickSyncStandbys(t *testing.T) {
	tests := []struct {
		name    string
		repl    []postgres.Replica
		members map[string]dcs.Member
		count   int
		want    []string
	}{
		{"most advanced first", []postgres.Replica{rep("pg2", "async", 10), rep("pg3", "async", 20)}, syncMembers("pg2", "pg3"), 1, []string{"pg3"}},
		{"already sync wins over more advanced", []postgres.Replica{rep("pg2", "sync", 10), rep("pg3", "async", 20)}, syncMembers("pg2", "pg3"), 1, []string{"pg2"}},
		{"nosync never picked", []postgres.Replica{rep("pg2", "async", 30), rep("pg3", "async", 20)}, syncMembers("pg2:nosync", "pg3"), 1, []string{"pg3"}},
		{"nofailover only as a last resort", []postgres.Replica{rep("pg2", "async", 30), rep("pg3", "async", 20)}, syncMembers("pg2:nofailover", "pg3"), 1, []string{"pg3"}},
		{"not a member is ignored", []postgres.Replica{rep("pg_basebackup", "async", 30)}, syncMembers("pg2"), 1, nil},
		{"not streaming is ignored", []postgres.Replica{{ApplicationName: "pg2", State: "catchup"}}, syncMembers("pg2"), 1, nil},
		{"higher sync_priority wins over already sync and more advanced", []postgres.Replica{rep("pg2", "sync", 30), rep("pg3", "async", 20)}, syncMembers("pg2", "pg3:sync_priority=5"), 1, []string{"pg3"}},
		{"sync_priority 0 never picked", []postgres.Replica{rep("pg2", "async", 30), rep("pg3", "async", 20)}, syncMembers("pg2:sync_priority=0", "pg3"), 1, []string{"pg3"}},
		{"count two", []postgres.Replica{rep("pg2", "async", 10), rep("pg3", "async", 20), rep("pg4", "async", 5)}, syncMembers("pg2", "pg3", "pg4"), 2, []string{"pg2", "pg3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, pickSyncStandbys(tt.repl, tt.members, tt.count)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestSSNValueRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		picked []string
		strict bool
		want   string
	}{
		{nil, false, ""}, {nil, true, "*"}, {[]string{"pg2"}, false, "pg2"},
		{[]string{"pg-2", "pg3"}, false, `2 ("pg-2",pg3)`},
	} {
		got := ssnValue(tt.picked, tt.strict)
		if got != tt.want {
			t.Errorf("ssnValue(%v, %v) = %q, want %q", tt.picked, tt.strict, got, tt.want)
		}
		if d := cmp.Diff(tt.picked, ssnNames(got)); d != "" {
			t.Errorf("ssnNames(%q) (-want +got):\n%s", got, d)
		}
	}
}

// TestConfirmedSyncNeedsTheChangePoint: a standby counts as synchronous
// only once it flushed the WAL written before the setting named it.
func TestConfirmedSyncNeedsTheChangePoint(t *testing.T) {
	repl := []postgres.Replica{rep("pg2", "sync", 0x100), rep("pg3", "sync", 0x300), rep("pg4", "async", 0x400)}
	got := confirmedSync(repl, []string{"pg2", "pg3", "pg4"}, 0x200)
	if d := cmp.Diff([]string{"pg3"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := confirmedSync(repl, []string{"pg2"}, 0); !cmp.Equal(got, []string{"pg2"}) {
		t.Errorf("only names in the current setting count: %v", got)
	}
}

func TestSyncModeElection(t *testing.T) {
	syncOn := func(s *Snapshot) {
		s.Config.SynchronousMode = config.SyncOn
		sb := "pg3"
		s.View.Sync = dcs.Sync{Leader: "pg1", SyncStandby: &sb}
	}
	// pg2 is more advanced but not synchronous: it must not race.
	s := snap(unlocked, syncOn, func(s *Snapshot) { s.Peers = []PeerStatus{peer("pg3", 0x4000000)} })
	if p := decide(s); p.Action.Kind == ActRace || !strings.Contains(p.Reason, "not a synchronous standby") {
		t.Errorf("async member: %s %s", p.Action.Kind, p.Reason)
	}
	// pg3 is the sync standby, behind an async peer: it races anyway.
	s = snap(unlocked, syncOn, func(s *Snapshot) {
		s.Name = "pg3"
		s.Peers = []PeerStatus{peer("pg2", 0x9000000)}
	})
	if p := decide(s); p.Action.Kind != ActRace {
		t.Errorf("sync standby must race over a more advanced async peer: %s", p.Reason)
	}
}

// TestSyncModeIgnoresFormerSyncLeader: the fenced former leader (now in
// recovery) is equally advanced and would win the name tie-break, but it
// cannot take over; the sync standby races.
func TestSyncModeIgnoresFormerSyncLeader(t *testing.T) {
	s := snap(unlocked, func(s *Snapshot) {
		s.Config.SynchronousMode = config.SyncOn
		sb := "pg2"
		s.View.Sync = dcs.Sync{Leader: "pg1", SyncStandby: &sb}
		s.Peers = []PeerStatus{peer("pg1", 0x5000000)}
	})
	if p := decide(s); p.Action.Kind != ActRace {
		t.Errorf("sync standby must not wait for the former sync leader: %s", p.Reason)
	}
	s.Peers[0].InRecovery = false // still a running primary: never ignored
	if p := decide(s); p.Action.Kind == ActRace {
		t.Errorf("raced while the former leader still runs as primary: %s", p.Reason)
	}
}
