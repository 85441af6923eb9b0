package chaos

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regent-ha/regent/dcs"
)

// okProbe is a probe at ms where PgBouncer routes to leader.
func okProbe(at int, leader string) RoutingProbe {
	return RoutingProbe{At: ms(at), Leader: leader, LeaderAfter: leader, Host: "10.0.0.1", Landed: leader}
}

func TestRoutingProbeOK(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    RoutingProbe
		want bool
	}{
		{"routed to the leader", okProbe(0, "pg2"), true},
		{"paused", func() RoutingProbe { p := okProbe(0, "pg2"); p.Paused = true; return p }(), false},
		{"landed on a former primary", func() RoutingProbe { p := okProbe(0, "pg2"); p.Landed = "pg1"; return p }(), false},
		{"the leader changed across the write", func() RoutingProbe { p := okProbe(0, "pg2"); p.LeaderAfter = "pg3"; return p }(), false},
		{"no leader key", RoutingProbe{Landed: "pg1"}, false},
		{"write failed", func() RoutingProbe { p := okProbe(0, "pg2"); p.Landed, p.WriteErr = "", "timeout"; return p }(), false},
		{"admin console unreachable", func() RoutingProbe { p := okProbe(0, "pg2"); p.AdminErr = "refused"; return p }(), false},
	} {
		if got := tc.p.OK(); got != tc.want {
			t.Errorf("%s: OK = %v, want %v (%s)", tc.name, got, tc.want, tc.p)
		}
	}
}

// TestRoutingChecker: a round whose PgBouncer routes to the leader within
// the bound passes; one left paused, or routed only past the bound,
// fails with its probes; rounds without a check (not routing mode, not
// recovered) are left to the other checkers.
func TestRoutingChecker(t *testing.T) {
	paused := RoutingProbe{At: ms(40000), Leader: "pg2", LeaderAfter: "pg2", Paused: true, Host: "10.0.0.11", WriteErr: "timeout"}
	good := &Round{N: 1, Kind: PgBouncerCutCandidate, Target: "pg2", LeaderBefore: "pg1", LeaderAfter: "pg2",
		Routing: &RoutingCheck{From: ms(40000), Probes: []RoutingProbe{paused, okProbe(45000, "pg2")}}}
	stuck := &Round{N: 2, Kind: PgBouncerCutCandidate, Target: "pg3", LeaderBefore: "pg2", LeaderAfter: "pg3",
		Routing: &RoutingCheck{From: ms(40000), Probes: []RoutingProbe{paused, paused}}}
	late := &Round{N: 3, Kind: KillAgentAfterPause, Target: "pg1", LeaderBefore: "pg1", LeaderAfter: "pg3",
		Routing: &RoutingCheck{From: ms(40000), Probes: []RoutingProbe{paused, okProbe(40000+31000, "pg3")}}}
	none := &Round{N: 4, Kind: KillReplica}
	ops := []Op{
		{Kind: OpInsert, ID: 1, Via: ViaPgBouncer, Node: "pg1", Outcome: OK},
		{Kind: OpInsert, ID: 2, Via: ViaPgBouncer, Node: "pg2", Outcome: OK},
		{Kind: OpInsert, ID: 3, Via: ViaPgBouncer, Node: ViaPgBouncer, Outcome: Unknown},
		{Kind: OpInsert, ID: 4, Via: ViaPgBouncer, Node: ViaPgBouncer, Outcome: Fail},
		{Kind: OpInsert, ID: 5, Node: "pg1", Outcome: OK},
	}
	lost := []LostWrite{{Op: ops[1]}, {Op: ops[4]}}

	v := CheckRouting([]*Round{good, none}, ops, lost, routingBound)
	if !v.OK {
		t.Fatalf("routed within the bound failed: %s\n%s", v, v.Details)
	}
	for _, want := range []string{"1 rounds", "slowest 5.000s", "4 writes through PgBouncer: 2 acknowledged (pg1 1, pg2 1), 1 failed, 1 unknown; 1 acknowledged lost"} {
		if !strings.Contains(v.Summary, want) {
			t.Errorf("summary %q lacks %q", v.Summary, want)
		}
	}

	v = CheckRouting([]*Round{good, stuck, late, none}, ops, nil, routingBound)
	if v.OK {
		t.Fatalf("a PgBouncer left paused and one routed late passed: %s", v)
	}
	for _, want := range []string{"2 of 3 rounds", "round 2 (pgbouncer-cut-candidate", "NOT routed", "paused=true host=10.0.0.11",
		"round 3 (kill-agent-after-pause", "routed to the leader 31.000s after recovery"} {
		if !strings.Contains(v.Summary+v.Details, want) {
			t.Errorf("verdict lacks %q:\n%s\n%s", want, v, v.Details)
		}
	}
	if strings.Contains(v.Details, "round 1 ") {
		t.Errorf("details name the round that passed:\n%s", v.Details)
	}
}

// TestLostWritesThroughPgBouncer: the lost-write and split-brain checkers
// judge writes acknowledged through PgBouncer by the node that took them.
func TestLostWritesThroughPgBouncer(t *testing.T) {
	via := func(o Op) Op { o.Via = ViaPgBouncer; return o }
	ops := append(failover(), via(ack(6, "pg2", 2, 21000, 21100)))
	final := FinalState{Rows: map[int64]bool{1: true, 2: true, 3: true, 4: true, 5: true}, History: []dcs.HistoryEntry{{Timeline: 1, SwitchLSN: 4000}}}
	v, lost := CheckLostWrites(ops, final, true, 1<<20)
	if v.OK || len(lost) != 1 || lost[0].Op.ID != 6 {
		t.Fatalf("a lost write through PgBouncer not caught: %s (%v)", v, lost)
	}
	if !strings.Contains(v.Details, "pgbouncer→pg2") {
		t.Errorf("details do not say the write went through PgBouncer:\n%s", v.Details)
	}
	// pg1 acknowledging through PgBouncer inside pg2's tenure: split brain.
	ops = append(failover(), via(ack(7, "pg1", 1, 15000, 15050)), via(ack(8, "pg1", 1, 16000, 16050)))
	if v := CheckSplitBrain(ops); v.OK {
		t.Fatalf("a split brain through PgBouncer not caught: %s", v)
	}
}

// TestClassifyViaPgBouncer: through PgBouncer only PostgreSQL's read-only
// refusal is a certain failure; PgBouncer's own ERRORs (a server
// connection lost after the statement went out) are unknown.
func TestClassifyViaPgBouncer(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, OK},
		{&pgconn.PgError{Severity: "ERROR", Code: "25006", Message: "cannot execute INSERT in a read-only transaction"}, Fail},
		{&pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "server conn crashed?"}, Unknown},
		{&pgconn.PgError{Severity: "ERROR", Code: "08P01", Message: "query_wait_timeout"}, Unknown},
		{&pgconn.PgError{Severity: "FATAL", Code: "57P01"}, Unknown},
		{errors.New("read: connection reset by peer"), Unknown},
	} {
		o, reason := classify(tc.err)
		if got, _ := classifyVia(o, reason, tc.err); got != tc.want {
			t.Errorf("classifyVia(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestParseRoutingFaults: "routing" names the routing kinds; they need
// routing mode, whose default mix adds them to the default one.
func TestParseRoutingFaults(t *testing.T) {
	if got, err := ParseFaults("routing", true); err != nil || !slices.Equal(got, RoutingFaults) {
		t.Errorf("ParseFaults(routing) = %v, %v", got, err)
	}
	if _, err := ParseFaults("kill-replica,pgbouncer-cut-candidate", false); err == nil || !strings.Contains(err.Error(), "routing mode") {
		t.Errorf("a routing kind outside routing mode: %v, want an error naming routing mode", err)
	}
	def, err := ParseFaults("", true)
	if err != nil || !slices.Equal(def, append(DefaultFaults(), RoutingFaults...)) {
		t.Errorf("routing mode's default mix = %v, %v", def, err)
	}
	if plain, _ := ParseFaults("", false); slices.ContainsFunc(plain, func(k FaultKind) bool { return slices.Contains(RoutingFaults, k) }) {
		t.Errorf("the default mix has routing kinds: %v", plain)
	}
}

// TestPlanRoutingKinds: in routing mode a third of the rounds or so draw a
// routing kind, each with its switchover (right before the injection for
// kill-agent-after-pause, during the hold for the cuts), never without the
// watchdog for the kind that stops the agent.
func TestPlanRoutingKinds(t *testing.T) {
	sc := schedule{Rounds: 60, Kinds: RoutingMix(), Actions: AllActions(), Favor: RoutingFaults}
	plans := planFor(t, 11, sc)
	n := 0
	for i, p := range plans {
		s, _ := specOf(p.Kind)
		if !s.routing {
			continue
		}
		n++
		if p.Action != ActionSwitchover {
			t.Errorf("round %d (%s): action %q, want a switchover", i+1, p.Kind, p.Action)
		}
		switch {
		case s.stopsAgent && (!p.Watchdog || p.ActionAt != -time.Millisecond):
			t.Errorf("round %d (%s): watchdog %v, action at %s", i+1, p.Kind, p.Watchdog, p.ActionAt)
		case !s.stopsAgent && (p.ActionAt < 200*time.Millisecond || p.ActionAt > time.Second):
			t.Errorf("round %d (%s): action at %s, want during the hold", i+1, p.Kind, p.ActionAt)
		}
	}
	if n < 60/6 || n > 60/2 {
		t.Errorf("%d of 60 rounds drew a routing kind, want about a third", n)
	}
}
