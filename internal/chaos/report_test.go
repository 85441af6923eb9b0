package chaos

import (
	"strings"
	"testing"
	"time"
)

// leaseRound is a round whose lease check applied with the given margin.
func leaseRound(n int, kind FaultKind, wd bool, act *Action, margin time.Duration) *Round {
	l := &LeaseCheck{Node: "pg1", Timeline: 1, Bound: sec(20), TTL: sec(10), LastAck: sec(20) - margin, Applies: true, OK: margin >= 0}
	return &Round{N: n, Kind: kind, Watchdog: wd, Action: act, Hold: sec(25), Heal: sec(26), Recovered: sec(30),
		LeaderBefore: "pg1", LeaderAfter: "pg2", Failover: true, RTO: sec(10), Lease: l}
}

func TestReportLeaseMarginsByKindActionAndWatchdog(t *testing.T) {
	pause := &Action{Kind: ActionPause, Node: "pg2", Detail: "pause", Offset: -sec(0.5), Start: sec(1), Done: sec(1.1), Code: 200}
	ttl := &Action{Kind: ActionTTLDown, Node: "pg3", Detail: "ttl 10→7 s", Offset: sec(2), Start: sec(3), Err: "context deadline exceeded"}
	rounds := []*Round{
		leaseRound(1, PartitionPrimaryEtcd, true, nil, sec(2.5)),
		leaseRound(2, PartitionPrimaryEtcd, true, pause, sec(2.1)),
		leaseRound(3, SlowEtcdPrimary, false, ttl, sec(1.4)),
		{N: 4, Kind: KillReplica, Watchdog: false, LeaderBefore: "pg2", LeaderAfter: "pg2", Lease: &LeaseCheck{Node: "pg2", Bound: sec(40)}},
	}
	rep := &Report{Seed: 9, Mode: "sync", Rounds: rounds, Timeline: &Timeline{}, Verdicts: []Verdict{CheckLease(rounds)}}
	out := rep.Summary()
	for _, want := range []string{
		"partition-primary-etcd      2  failovers   2  RTO 10.00 / 10.00 / 10.00 s  lease margin ≥ 2.100s (2)",
		"slow-etcd-primary           1  failovers   1  RTO 10.00 / 10.00 / 10.00 s  lease margin ≥ 1.400s (1)",
		"kill-replica                1  failovers   0\n",
		"pause                       1  answers 200×1",
		"ttl-down                    1  answers no-answer×1",
		"lease margin ≥ 1.400s (1)",
		"watchdog: 2 of 4 rounds without it (default configuration): 3 4",
		"with the watchdog 2.100s (2 rounds, 2 with acks), without 1.400s (1 rounds, 1 with acks)",
		"[no watchdog]",
		"action pause (pause) on pg2 before (-0.50s) → 200 in 0.10s",
		"action ttl-down (ttl 10→7 s) on pg3 during (+2.00s) → no-answer (context deadline exceeded)",
		"(ttl 10s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !rep.OK() {
		t.Fatalf("no violation, yet: %s", rep.Verdicts[0])
	}
	// A violation names the round's action and watchdog.
	rounds = append(rounds, leaseRound(5, EtcdQuorumLoss, false, &Action{Kind: ActionTTLUp, Start: sec(1), Code: 200}, -sec(0.3)))
	v := CheckLease(rounds)
	if v.OK || !strings.Contains(v.Details, "round 5 (etcd-quorum-loss + ttl-up on pg1, no watchdog): VIOLATED") {
		t.Fatalf("lease verdict: %s\n%s", v, v.Details)
	}
}

func TestReportWithoutActionsOrMeasuredMargins(t *testing.T) {
	rounds := []*Round{{N: 1, Kind: KillReplica, Watchdog: true}}
	rep := &Report{Rounds: rounds, Timeline: &Timeline{}, Verdicts: []Verdict{CheckLease(rounds)}}
	out := rep.Summary()
	for _, want := range []string{"operator actions: none", "watchdog: every round with the (journal) watchdog",
		"with the watchdog n/a (0 rounds), without n/a (0 rounds)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	var m margins
	m.add(&LeaseCheck{Applies: true, Bound: sec(10)}) // no ack at all
	if got := m.String(); got != "n/a (1 rounds, no ack after the injection)" || m.column() != "" {
		t.Errorf("margins without an ack = %q / %q", got, m.column())
	}
}

func TestActionOutcome(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want string
	}{
		{Action{}, "not-started"},
		{Action{Start: sec(1), Err: "timeout"}, "no-answer"},
		{Action{Start: sec(1), Code: 503}, "503"},
	} {
		if got := tc.a.Outcome(); got != tc.want {
			t.Errorf("%+v: outcome %q, want %q", tc.a, got, tc.want)
		}
	}
	a := Action{Kind: ActionSwitchoverScheduled, Node: "pg1", Detail: "leader pg1", Offset: sec(1), Start: sec(5), Done: sec(5.2),
		Code: 202, Answer: "Switchover scheduled", Result: "switchover records: x pg1→pg2 completed at CLEANUP"}
	want := `switchover-scheduled (leader pg1) on pg1 during (+1.00s) → 202 in 0.20s "Switchover scheduled"; switchover records: x pg1→pg2 completed at CLEANUP`
	if got := a.String(); got != want {
		t.Errorf("action = %s\nwant      %s", got, want)
	}
}
