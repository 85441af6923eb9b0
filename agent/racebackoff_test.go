package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/postgres"
)

// TestRaceBackoff: primary_race_backoff (default 5 s, loop_wait 1 s) keeps
// a replica whose own WAL still moves out of the race, bounded.
func TestRaceBackoff(t *testing.T) {
	const wal = postgres.LSN(0x5000000)
	leaderless := func(d time.Duration) func(*Snapshot) {
		return func(s *Snapshot) { s.LeaderlessSince = t0.Add(-d) }
	}
	seen := func(lsn postgres.LSN, ago time.Duration) func(*Snapshot) {
		return func(s *Snapshot) { s.WALSeen = WALSeen{LSN: lsn, MovedAt: t0.Add(-ago)} }
	}
	tests := []struct {
		name     string
		mut      []func(*Snapshot)
		wantRace bool
		want     string
	}{
		{"moved since the previous tick: waits", []func(*Snapshot){leaderless(time.Second), seen(wal-0x1000, 3*time.Second)},
			false, "received WAL still advancing (0/5000000, moved 0s ago); waiting for it to settle (leaderless 1s of primary_race_backoff 5s)"},
		{"unchanged since a tick 300 ms ago, moved within loop_wait: waits", []func(*Snapshot){leaderless(2 * time.Second), seen(wal, 300*time.Millisecond)},
			false, "moved 300ms ago"},
		{"still for loop_wait: settled, races", []func(*Snapshot){leaderless(2 * time.Second), seen(wal, time.Second)}, true, "racing"},
		{"still moving at the bound: races anyway", []func(*Snapshot){leaderless(5 * time.Second), seen(wal-0x1000, 0)}, true, "racing"},
		{"backoff 0 is off", []func(*Snapshot){leaderless(time.Second), seen(wal-0x1000, 0), func(s *Snapshot) { s.Config.PrimaryRaceBackoff = 0 }}, true, "racing"},
		{"no previous observation: nothing known to move, races", []func(*Snapshot){leaderless(time.Second)}, true, "racing"},
		{"leaderless episode unknown: races", []func(*Snapshot){seen(wal-0x1000, 0)}, true, "racing"},
		{"advancing member ahead of a settled peer: waits, the other rules still listed", []func(*Snapshot){leaderless(time.Second), seen(wal-0x1000, 0),
			func(s *Snapshot) { s.Peers = []PeerStatus{peer("pg3", wal-0x2000)} }}, false, "received WAL still advancing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(snap(append([]func(*Snapshot){unlocked}, tt.mut...)...))
			if (got.Action.Kind == ActRace) != tt.wantRace {
				t.Fatalf("race = %v, want %v: %s", got.Action.Kind == ActRace, tt.wantRace, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.want) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.want)
			}
		})
	}
}

// TestRaceBackoffSettledPeerWins: two replicas see the leader key go; the
// one whose WAL still trickles in (pg2) stands aside, the one that has
// finished (pg3, behind it) races, once pg2 is out of the way — pg2's
// own rules never let it race while it moves, and pg3 races only because
// pg2 is not ahead of it.
func TestRaceBackoffSettledPeerWins(t *testing.T) {
	trickling := snap(unlocked, func(s *Snapshot) {
		s.LeaderlessSince = t0.Add(-time.Second)
		s.WALSeen = WALSeen{LSN: 0x4ff0000, MovedAt: t0.Add(-200 * time.Millisecond)}
		s.PG = replica(0x4ff8000)
		s.Peers = []PeerStatus{peer("pg3", 0x5000000)}
	})
	finished := snap(unlocked, func(s *Snapshot) {
		s.Name = "pg3"
		s.LeaderlessSince = t0.Add(-time.Second)
		s.WALSeen = WALSeen{LSN: 0x5000000, MovedAt: t0.Add(-10 * time.Second)}
		s.Peers = []PeerStatus{peer("pg2", 0x4ff8000)}
	})
	if p := decide(trickling); p.Action.Kind == ActRace || !strings.Contains(p.Reason, "received WAL still advancing") {
		t.Errorf("trickling member: %s %q; want a wait naming the WAL still advancing", p.Action.Kind, p.Reason)
	}
	if p := decide(finished); p.Action.Kind != ActRace {
		t.Errorf("finished member: %s %q; want it to race", p.Action.Kind, p.Reason)
	}
}

// TestNoteWAL: the loop's memory of its own position.
func TestNoteWAL(t *testing.T) {
	t1 := t0.Add(time.Second)
	tests := []struct {
		name string
		prev WALSeen
		pg   PGState
		want WALSeen
	}{
		{"first sight", WALSeen{}, replica(0x100), WALSeen{LSN: 0x100, MovedAt: t1}},
		{"unchanged keeps when it moved", WALSeen{LSN: 0x100, MovedAt: t0}, replica(0x100), WALSeen{LSN: 0x100, MovedAt: t0}},
		{"moved", WALSeen{LSN: 0x100, MovedAt: t0}, replica(0x200), WALSeen{LSN: 0x200, MovedAt: t1}},
		{"a primary forgets", WALSeen{LSN: 0x100, MovedAt: t0}, primary(0x300), WALSeen{}},
		{"stopped forgets", WALSeen{LSN: 0x100, MovedAt: t0}, PGState{}, WALSeen{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.prev.noteWAL(tt.pg, t1)); diff != "" {
				t.Errorf("noteWAL (-want +got):\n%s", diff)
			}
		})
	}
}
