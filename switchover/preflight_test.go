package switchover

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

// healthy is a replica streaming from the leader on its timeline, 1 kB behind.
func healthy(name string) Peer {
	return Peer{Name: name, Reachable: true, State: "running", InRecovery: true, Timeline: 3, WAL: 0x5000000 - 1024}
}

var leaderPeer = Peer{Name: "pg1", Reachable: true, State: "running", Timeline: 3, WAL: 0x5000000, Streaming: []string{"pg2", "pg3"}}

func TestCheckCandidate(t *testing.T) {
	const maxLag = 1 << 20
	for _, tt := range []struct {
		name    string
		p       Peer
		leader  Peer
		reasons []string
		lag     int64
	}{
		{"qualifies", healthy("pg2"), leaderPeer, nil, 1024},
		{"ahead of the leader: no negative lag", func() Peer { p := healthy("pg2"); p.WAL = 0x5000010; return p }(), leaderPeer, nil, 0},
		{"stopped, a primary, watchdog failed", Peer{Name: "pg2", Reachable: true, State: "stopped", WatchdogFailed: true, Timeline: 3, WAL: 0x5000000},
			leaderPeer, []string{"PostgreSQL is stopped", "running as a primary", "watchdog failed"}, 0},
		{"leader unreachable", healthy("pg2"), Peer{Name: "pg1", Err: "connection refused"},
			[]string{"leader pg1 unreachable: connection refused"}, 0},
		{"not streaming, other timeline, lagging", Peer{Name: "pg4", Reachable: true, State: "running", InRecovery: true, Timeline: 2, WAL: 0x4000000},
			leaderPeer, []string{"not streaming from pg1", "timeline 2 differs from the leader's 3", "lag 16.0 MB > 1.0 MB"}, 0x1000000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reasons, lag := CheckCandidate(tt.p, tt.leader, "pg1", maxLag)
			if diff := cmp.Diff(tt.reasons, reasons); diff != "" || lag != tt.lag {
				t.Errorf("CheckCandidate lag %d (want %d), reasons (-want +got):\n%s", lag, tt.lag, diff)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	sync := "pg3"
	c := &dcs.Cluster{Members: map[string]dcs.Member{
		"pg1": {}, "pg2": {}, "pg3": {}, "pg4": {Tags: map[string]any{"nofailover": true}}, "pg5": {},
	}, Sync: dcs.Sync{Leader: "pg1", SyncStandby: &sync}}
	pg3 := healthy("pg3")
	pg3.WAL = 0x5000000
	peers := map[string]Peer{"pg1": leaderPeer, "pg2": healthy("pg2"), "pg3": pg3, "pg4": healthy("pg4"), "pg5": {Name: "pg5", Err: "timeout"}}
	policy := Policy{MaximumLag: 1 << 20}
	for _, tt := range []struct {
		name     string
		policy   Policy
		to       string
		verdicts []Verdict
		lags     map[string]int64
	}{
		{"every candidate", policy, "", []Verdict{
			{Member: "pg2", OK: true}, {Member: "pg3", OK: true},
			{Member: "pg4", Reasons: []string{"tag nofailover", "not streaming from pg1"}},
			{Member: "pg5", Reasons: []string{"unreachable: timeout"}},
		}, map[string]int64{"pg2": 1024, "pg3": 0, "pg4": 1024}},
		{"synchronous mode: only the sync standby", Policy{MaximumLag: 1 << 20, SynchronousMode: true}, "pg2", []Verdict{
			{Member: "pg2", Reasons: []string{"not a synchronous standby"}},
		}, map[string]int64{"pg2": 1024}},
		{"named candidate only", policy, "pg3", []Verdict{{Member: "pg3", OK: true}}, map[string]int64{"pg3": 0}},
		{"not a member", policy, "pg9", []Verdict{{Member: "pg9", Reasons: []string{"not a member of the cluster"}}}, map[string]int64{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			verdicts, lags := Preflight(c, peers, tt.policy, "pg1", tt.to)
			if diff := cmp.Diff(tt.verdicts, verdicts); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.lags, lags); diff != "" {
				t.Errorf("lags (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("leader unreachable: no lag measured", func(t *testing.T) {
		down := map[string]Peer{"pg1": {Name: "pg1", Err: "refused"}, "pg2": healthy("pg2")}
		verdicts, lags := Preflight(c, down, policy, "pg1", "pg2")
		if len(lags) != 0 || len(verdicts) != 1 || verdicts[0].OK {
			t.Errorf("verdicts %+v, lags %v; want pg2 rejected and no lag", verdicts, lags)
		}
	})
}

func TestChooseCandidate(t *testing.T) {
	ok := func(name string) Verdict { return Verdict{Member: name, OK: true} }
	bad := Verdict{Member: "pg4", Reasons: []string{"tag nofailover"}}
	for _, tt := range []struct {
		name     string
		verdicts []Verdict
		lags     map[string]int64
		to       string
		want     string
		err      *NoCandidateError
	}{
		{"least lag wins", []Verdict{ok("pg2"), ok("pg3"), bad}, map[string]int64{"pg2": 10, "pg3": 5}, "", "pg3", nil},
		{"equal lag: first by name", []Verdict{ok("pg2"), ok("pg3")}, map[string]int64{}, "", "pg2", nil},
		{"named and passed", []Verdict{ok("pg3")}, nil, "pg3", "pg3", nil},
		{"named and rejected", []Verdict{bad}, nil, "pg4", "", &NoCandidateError{Message: "candidate pg4 does not qualify", Rejected: []Verdict{bad}}},
		{"nobody qualifies", []Verdict{bad}, nil, "", "", &NoCandidateError{Message: "no member qualifies as switchover candidate", Rejected: []Verdict{bad}}},
		{"no member but the leader", nil, nil, "", "", &NoCandidateError{Message: "the cluster has no member except the leader"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseCandidate(tt.verdicts, tt.lags, tt.to)
			if got != tt.want {
				t.Errorf("chose %q, want %q", got, tt.want)
			}
			if tt.err == nil {
				if err != nil {
					t.Errorf("err = %v, want none", err)
				}
				return
			}
			var nc *NoCandidateError
			if !errors.As(err, &nc) {
				t.Fatalf("err = %v, want a *NoCandidateError", err)
			}
			if diff := cmp.Diff(tt.err, nc); diff != "" || nc.Error() != tt.err.Message {
				t.Errorf("error %q (-want +got):\n%s", nc.Error(), diff)
			}
		})
	}
}

func TestPreflightMessages(t *testing.T) {
	verdicts := []Verdict{{Member: "pg2", OK: true}, {Member: "pg3", Reasons: []string{"watchdog failed", "lag 2.0 MB > 1.0 MB"}}}
	for _, tt := range []struct{ got, want string }{
		{CandidateList("", verdicts), "best of [pg2, pg3]"},
		{CandidateList("pg3", verdicts), "pg3"},
		{VerdictSummary(verdicts, "pg2"), "candidate pg2 qualifies; pg3 rejected: watchdog failed, lag 2.0 MB > 1.0 MB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
