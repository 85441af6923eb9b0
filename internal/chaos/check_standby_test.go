package chaos

import (
	"slices"
	"strings"
	"testing"
)

// The standby checkers' self-test: fabricated probes, key events and
// catch-ups with a writable member, two holders, a missed write or a
// diverged standby must fail; their correct counterparts must pass.

func TestCheckStandbyReadOnly(t *testing.T) {
	ro := func(node string, at int) StandbyProbe {
		return StandbyProbe{Node: node, At: ms(at), Answered: true, InRecovery: true, Err: "read-only"}
	}
	for _, tc := range []struct {
		name   string
		probes []StandbyProbe
		ok     bool
		want   string
	}{
		{"every probe in recovery and refused", []StandbyProbe{ro("dr1", 0), ro("dr2", 10), ro("dr1", 500)}, true, "3 probes"},
		{"nothing answered", nil, false, "nothing was checked"},
		{"out of recovery", []StandbyProbe{ro("dr1", 0), {Node: "dr2", At: ms(10), Answered: true, Err: "sqlstate 42P01"}}, false, "dr2 out of recovery"},
		{"a write accepted", []StandbyProbe{ro("dr1", 0), {Node: "dr1", At: ms(600), Answered: true, InRecovery: true, Wrote: true}}, false, "dr1 accepted a write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckStandbyReadOnly(tc.probes)
			if v.OK != tc.ok || !strings.Contains(v.Summary+v.Details, tc.want) {
				t.Errorf("got %s\n%s; want ok=%v mentioning %q", v, v.Details, tc.ok, tc.want)
			}
		})
	}
}

func TestCheckStandbyLeaderKey(t *testing.T) {
	put := func(rev int64, holder string, created bool) KeyEvent {
		return KeyEvent{At: ms(int(rev) * 100), Rev: rev, Holder: holder, Created: created}
	}
	del := func(rev int64) KeyEvent { return KeyEvent{At: ms(int(rev) * 100), Rev: rev} }
	for _, tc := range []struct {
		name   string
		events []KeyEvent
		ok     bool
		want   string
	}{
		{"renewals and a handover through an expiry",
			[]KeyEvent{put(1, "dr1", true), put(2, "dr1", false), del(3), put(4, "dr2", true), put(5, "dr2", false)}, true, "2 holders"},
		// A missed delete (a watch resumed after a compaction) is no
		// violation: the new holder created the key.
		{"a missed delete", []KeyEvent{put(1, "dr1", true), put(5, "dr2", true)}, true, "2 holders"},
		{"never held", []KeyEvent{del(1)}, false, "never seen held"},
		{"taken over while held", []KeyEvent{put(1, "dr1", true), put(2, "dr2", false)}, false, "dr2 put over dr1's key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckStandbyLeaderKey(tc.events)
			if v.OK != tc.ok || !strings.Contains(v.Summary+v.Details, tc.want) {
				t.Errorf("got %s\n%s; want ok=%v mentioning %q", v, v.Details, tc.ok, tc.want)
			}
		})
	}
}

func rows(ids ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestCheckStandbyReplay(t *testing.T) {
	// Acked inserts 1–4 before 10 s, 5 after it; 3 was lost by the
	// primary cluster (an asynchronous failover); 6 failed.
	ops := []Op{ack(1, "pg1", 1, 0, 100), ack(2, "pg1", 1, 200, 300), ack(3, "pg1", 1, 400, 500),
		ack(4, "pg2", 2, 5000, 5100), ack(5, "pg2", 2, 10500, 10600),
		{Kind: OpInsert, ID: 6, Node: "pg2", Invoke: ms(6000), Complete: ms(6100), Outcome: Fail}}
	whole := map[string]string{"dr1": "standby_leader/running", "dr2": "replica/running"}
	good := StandbyCatchUp{Round: 1, At: ms(10000), Primary: rows(1, 2, 4, 5), Holder: "dr1", Roles: whole,
		Standby: rows(1, 2, 4)} // 5 was acked after the rows were read: not required
	with := func(f func(*StandbyCatchUp)) StandbyCatchUp {
		cu := good
		f(&cu)
		return cu
	}
	for _, tc := range []struct {
		name string
		cu   StandbyCatchUp
		ok   bool
		want string
	}{
		{"caught up", good, true, "1 checks"},
		{"final check counts", with(func(cu *StandbyCatchUp) { cu.Round = 0 }), true, "at the end 3 of 3 acknowledged writes"},
		{"a write not replayed", with(func(cu *StandbyCatchUp) { cu.Standby = rows(1, 4) }), false, "1 acknowledged writes not replayed [2]"},
		{"a lost write kept: diverged", with(func(cu *StandbyCatchUp) { cu.Standby = rows(1, 2, 3, 4) }), false, "diverged, not rewound) [3]"},
		{"two standby leaders", with(func(cu *StandbyCatchUp) {
			cu.Roles = map[string]string{"dr1": "standby_leader/running", "dr2": "standby_leader/running"}
		}), false, "standby leaders [dr1 dr2]"},
		{"the leader is not the holder", with(func(cu *StandbyCatchUp) { cu.Holder = "dr2" }), false, `key holder "dr2"`},
		{"a member not replicating", with(func(cu *StandbyCatchUp) {
			cu.Roles = map[string]string{"dr1": "standby_leader/running", "dr2": ""}
		}), false, `dr2 ""`},
		{"rows unread", with(func(cu *StandbyCatchUp) { cu.Standby, cu.Err = nil, "standby leader's rows: timeout" }), false, "rows not read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckStandbyReplay(ops, []StandbyCatchUp{tc.cu})
			if v.OK != tc.ok || !strings.Contains(v.Summary+v.Details, tc.want) {
				t.Errorf("got %s\n%s; want ok=%v mentioning %q", v, v.Details, tc.ok, tc.want)
			}
		})
	}
	if v := CheckStandbyReplay(ops, nil); v.OK {
		t.Errorf("no check passed: %s", v)
	}
}

func TestStandbyFaultSelection(t *testing.T) {
	kinds, err := ParseFaults("standby", false)
	if err != nil || !slices.Equal(kinds, StandbyFaults) {
		t.Fatalf(`ParseFaults("standby", false) = %v, %v; want %v`, kinds, err, StandbyFaults)
	}
	for _, k := range DefaultFaults() {
		if slices.Contains(StandbyFaults, k) {
			t.Errorf("default mix has standby kind %s", k)
		}
	}
	mix := StandbyMix(DefaultFaults())
	if want := append(DefaultFaults(), StandbyFaults...); !slices.Equal(mix, want) {
		t.Errorf("standby mix = %v, want the default kinds and the standby ones", mix)
	}
	if f := (Config{Standby: true}).favor(); !slices.Equal(f, StandbyFaults) {
		t.Errorf("a standby run favors %v, want the standby kinds", f)
	}
	if f := (Config{Standby: true, Routing: true}).favor(); len(f) != len(RoutingFaults)+len(StandbyFaults) {
		t.Errorf("a standby run in routing mode favors %v, want the routing and the standby kinds", f)
	}
	chosen := []FaultKind{KillStandbyLeader, KillNodePrimary}
	if got := StandbyMix(chosen); !slices.Equal(got, chosen) {
		t.Errorf("StandbyMix(%v) = %v: a list naming a standby kind is taken as it is", chosen, got)
	}
	if err := checkStandbyKinds(chosen, false); err == nil || !strings.Contains(err.Error(), "kill-standby-leader needs a standby cluster") {
		t.Errorf("standby kind without a standby cluster: %v", err)
	}
	if err := checkStandbyKinds(chosen, true); err != nil {
		t.Errorf("standby kind with a standby cluster: %v", err)
	}
	if err := checkStandbyKinds(DefaultFaults(), false); err != nil {
		t.Errorf("default mix without a standby cluster: %v", err)
	}
	// A run without the watchdog may draw every standby kind: none stops
	// the primary's agent while it could still write.
	for _, k := range StandbyFaults {
		if s, _ := specOf(k); s.stopsAgent {
			t.Errorf("%s stops the agent: it would need the watchdog", k)
		}
	}
}
