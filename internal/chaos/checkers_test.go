package chaos

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// The checkers' self-test: fabricated histories with a split brain, a lost
// write, a stale read and a late acknowledgement must fail the checkers;
// their correct counterparts must pass. Proof that the checkers can fail.

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// ack is an acknowledged insert on node/timeline over [inv, comp] ms.
func ack(id int64, node string, tl, inv, comp int) Op {
	return Op{Kind: OpInsert, ID: id, Node: node, Timeline: tl, Invoke: ms(inv), Complete: ms(comp), Outcome: OK, LSN: uint64(1000 * id)}
}

// failover is a clean history: pg1 on timeline 1 until 10 s, a gap, then
// pg2 on timeline 2. Its last pg1 write overlaps pg2's first in time, but
// its commit may have come first: not a split brain.
func failover() []Op {
	return []Op{
		ack(1, "pg1", 1, 0, 100),
		ack(2, "pg1", 1, 5000, 5100),
		ack(3, "pg1", 1, 9900, 12500), // slow ack: committed ≥ 9.9 s, seen at 12.5 s
		ack(4, "pg2", 2, 12000, 12100),
		ack(5, "pg2", 2, 20000, 20100),
	}
}

func TestSplitBrainCheckerPassesAFailover(t *testing.T) {
	v := CheckSplitBrain(failover())
	if !v.OK {
		t.Fatalf("a clean failover failed the checker: %s\n%s", v, v.Details)
	}
	if got := len(Tenures(failover())); got != 2 {
		t.Errorf("tenures = %d, want 2", got)
	}
}

func TestSplitBrainCheckerCatchesTwoPrimaries(t *testing.T) {
	// pg1 keeps acknowledging after pg2 was promoted: a partitioned old
	// primary that never fenced.
	ops := append(failover(), ack(6, "pg1", 1, 15000, 15050), ack(7, "pg1", 1, 16000, 16050))
	v := CheckSplitBrain(ops)
	if v.OK {
		t.Fatalf("split brain not caught: %s", v)
	}
	for _, want := range []string{"pg1 on timeline 1", "pg2 on timeline 2", "insert id=6"} {
		if !strings.Contains(v.Details, want) {
			t.Errorf("details lack %q:\n%s", want, v.Details)
		}
	}
}

func TestSplitBrainCheckerCatchesOneWriteInsideAnotherTenure(t *testing.T) {
	// A single acknowledged write on pg3 strictly inside pg2's tenure.
	ops := append(failover(), ack(6, "pg3", 2, 14000, 14100))
	if v := CheckSplitBrain(ops); v.OK {
		t.Fatalf("a write inside another node's tenure not caught: %s", v)
	}
}

func TestSplitBrainCheckerCatchesReadsOfALatePrimary(t *testing.T) {
	// In synchronous mode a primary cut from its standbys acknowledges no
	// write; if it fenced late, only the reads it answered show it.
	read := func(node string, tl, inv, comp int) Op {
		return Op{Kind: OpRead, Plain: true, Key: 1, Node: node, Timeline: tl, Invoke: ms(inv), Complete: ms(comp), Outcome: OK}
	}
	ops := append(failover(), read("pg1", 1, 15000, 15001))
	v := CheckSplitBrain(ops)
	if v.OK {
		t.Fatalf("a read answered as primary inside another tenure not caught: %s", v)
	}
	if !strings.Contains(v.Details, "plain read k=1") {
		t.Errorf("details lack the read:\n%s", v.Details)
	}
	// The same read answered by a replica (no timeline) is no tenure.
	replica := read("pg1", 0, 15000, 15001)
	if v := CheckSplitBrain(append(failover(), replica)); !v.OK {
		t.Fatalf("a replica's read counted as primary: %s\n%s", v, v.Details)
	}
}

func TestSplitBrainCheckerIgnoresSameNodeAndFailures(t *testing.T) {
	ops := append(failover(),
		ack(6, "pg1", 3, 30000, 30100), // pg1 again, new timeline, later
		Op{Kind: OpInsert, ID: 7, Node: "pg3", Invoke: ms(15000), Complete: ms(15010), Outcome: Fail},
		Op{Kind: OpInsert, ID: 8, Node: "pg3", Invoke: ms(15000), Complete: ms(18000), Outcome: Unknown},
	)
	if v := CheckSplitBrain(ops); !v.OK {
		t.Fatalf("%s\n%s", v, v.Details)
	}
}

func present(ids ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestLostWriteCheckerSyncMode(t *testing.T) {
	ops := failover()
	if v, _ := CheckLostWrites(ops, FinalState{Rows: present(1, 2, 3, 4, 5)}, true, 1<<20); !v.OK {
		t.Fatalf("nothing lost, yet: %s", v)
	}
	v, lost := CheckLostWrites(ops, FinalState{Rows: present(1, 2, 4, 5)}, true, 1<<20)
	if v.OK || len(lost) != 1 || lost[0].Op.ID != 3 {
		t.Fatalf("lost write 3 not caught: %s (lost %v)", v, lost)
	}
	if !strings.Contains(v.Details, "LOST") || !strings.Contains(v.Details, "insert id=3") {
		t.Errorf("details lack the lost write:\n%s", v.Details)
	}
}

func TestLostWriteCheckerAsyncBound(t *testing.T) {
	ops := failover()                                             // write 3 is at LSN 3000
	hist := []dcs.HistoryEntry{{Timeline: 1, SwitchLSN: 2500}}    // timeline 1 ended at 2500
	final := FinalState{Rows: present(1, 2, 4, 5), History: hist} // 3 lost, 500 bytes past the fork
	v, lost := CheckLostWrites(ops, final, false, 1000)
	if !v.OK || len(lost) != 1 || lost[0].PastForkB != 500 {
		t.Fatalf("async loss within the bound must pass and be counted: %s (lost %+v)", v, lost)
	}
	if v, _ := CheckLostWrites(ops, final, false, 100); v.OK {
		t.Fatalf("async loss beyond maximum_lag_on_failover passed: %s", v)
	}
}

func TestLostWriteCheckerCatchesPhantomsAndDivergence(t *testing.T) {
	ops := append(failover(), Op{Kind: OpInsert, ID: 9, Node: "pg2", Invoke: ms(21000), Complete: ms(21001), Outcome: Fail})
	if v, _ := CheckLostWrites(ops, FinalState{Rows: present(1, 2, 3, 4, 5, 9)}, true, 0); v.OK {
		t.Fatalf("a write reported failed but present passed: %s", v)
	}
	final := FinalState{Rows: present(1, 2, 3, 4, 5), Divergent: []string{"replica pg3 differs"}}
	if v, _ := CheckLostWrites(ops, final, true, 0); v.OK {
		t.Fatalf("a divergent replica passed: %s", v)
	}
}

func reg(kind OpKind, client int, key, value int64, inv, comp int, out Outcome) Op {
	return Op{Kind: kind, Client: client, Key: key, Value: value, Invoke: ms(inv), Complete: ms(comp), Outcome: out}
}

func TestLinearizabilityChecker(t *testing.T) {
	good := []Op{
		reg(OpWrite, 0, 1, 10, 0, 100, OK),
		reg(OpRead, 1, 1, 10, 200, 300, OK),
		reg(OpWrite, 0, 1, 11, 400, 500, Unknown), // may have happened
		reg(OpRead, 1, 1, 11, 600, 700, OK),
		reg(OpRead, 2, 2, 0, 0, 10, OK), // another row, never written
	}
	if v := CheckLinearizable(good, ""); !v.OK {
		t.Fatalf("a linearizable history failed: %s\n%s", v, v.Details)
	}
	stale := slices.Concat(good, []Op{reg(OpRead, 2, 1, 10, 800, 900, OK)}) // 11 was seen, then 10 again
	dir := t.TempDir()
	v := CheckLinearizable(stale, dir)
	if v.OK {
		t.Fatalf("a stale read passed: %s", v)
	}
	if !strings.Contains(v.Details, "row 1") || !strings.Contains(v.Details, "visualization: "+dir) {
		t.Errorf("details lack the row or the visualization:\n%s", v.Details)
	}
	lost := slices.Concat(good[:2], []Op{reg(OpRead, 1, 1, 0, 300, 400, OK)}) // an acknowledged write vanished
	if v := CheckLinearizable(lost, ""); v.OK {
		t.Fatalf("a lost register write passed: %s", v)
	}
}

// TestPlainReadsAreCheckedApart: the partitioned-primary history the long
// runs found. A write whose synchronous wait a timeout cancelled is seen
// by a plain read on the old primary, then lost in the failover. The
// durable register (writes and durable reads) stays linearizable and
// gates; the check with plain reads reports the row without failing.
func TestPlainReadsAreCheckedApart(t *testing.T) {
	plain := func(op Op) Op { op.Plain = true; return op }
	ops := []Op{
		reg(OpWrite, 0, 1, 10, 0, 100, OK),
		reg(OpRead, 1, 1, 10, 200, 300, OK),
		reg(OpWrite, 0, 1, 11, 400, 3400, Unknown),     // cancelled wait on the old primary
		plain(reg(OpRead, 1, 1, 11, 3410, 3411, OK)),   // the old primary exposes it
		reg(OpRead, 2, 1, 10, 12000, 12001, OK),        // the new primary never had it
		reg(OpWrite, 2, 1, 12, 12100, 12200, OK),       // and moves on
		plain(reg(OpRead, 3, 1, 12, 12300, 12301, OK)), // a plain read of an acknowledged write
	}
	if v := CheckLinearizable(ops, ""); !v.OK {
		t.Fatalf("the durable register failed on a plain read: %s\n%s", v, v.Details)
	}
	v := CheckPlainReads(ops, "")
	if !v.OK || !strings.Contains(v.Summary, "1 not linearizable") || !strings.Contains(v.Name, "informational") {
		t.Fatalf("plain-read verdict = %s, want informational, OK, 1 row not linearizable", v)
	}
	// A durable read of the cancelled write is a failure: its commit
	// waited for the standby, so the value had to survive.
	durable := slices.Clone(ops)
	durable[3].Plain = false
	if v := CheckLinearizable(durable, ""); v.OK {
		t.Fatalf("a durable read of a lost write passed: %s", v)
	}
}

func TestLeaseCheck(t *testing.T) {
	ops := []Op{ack(1, "pg1", 1, 900, 1000), ack(2, "pg1", 1, 7900, 8000), ack(3, "pg2", 2, 20000, 20100)}
	r := &Round{N: 1, Kind: PartitionPrimaryEtcd, Inject: ms(500), Heal: ms(25000), Recovered: ms(26000)}
	l := &LeaseCheck{Node: "pg1", Timeline: 1, Bound: ms(10000)}
	l.evaluate(ops, r, nil)
	if !l.Applies || !l.OK || l.LastAck != ms(8000) || l.Margin() != ms(2000) {
		t.Fatalf("got %+v, want applies, ok, last ack 8 s, margin 2 s", l)
	}
	late := slices.Concat(ops, []Op{ack(4, "pg1", 1, 10500, 10600)}) // acknowledged after the lease could expire
	l = &LeaseCheck{Node: "pg1", Timeline: 1, Bound: ms(10000)}
	l.evaluate(late, r, nil)
	if l.OK {
		t.Fatalf("an ack after the earliest lease expiry passed: %+v", l)
	}
	if v := CheckLease([]*Round{{N: 1, Kind: PartitionPrimaryEtcd, Lease: l}}); v.OK || !strings.Contains(v.Details, "VIOLATED") {
		t.Fatalf("lease verdict: %s\n%s", v, v.Details)
	}
	// A read answered as primary after the earliest expiry violates it too.
	lateRead := slices.Concat(ops, []Op{{Kind: OpRead, Plain: true, Key: 1, Node: "pg1", Timeline: 1, Invoke: ms(10400), Complete: ms(10401), Outcome: OK}})
	l = &LeaseCheck{Node: "pg1", Timeline: 1, Bound: ms(10000)}
	l.evaluate(lateRead, r, nil)
	if l.OK || l.LastAck != ms(10401) || l.LastWrite != ms(8000) {
		t.Fatalf("a read answered after the earliest lease expiry: %+v, want violated, last ack 10.401 s, last write 8 s", l)
	}
	short := &Round{N: 2, Inject: ms(500), Heal: ms(4000)}
	l = &LeaseCheck{Node: "pg1", Timeline: 1, Bound: ms(10000)}
	l.evaluate(late, short, nil)
	if l.Applies {
		t.Fatalf("a fault healed before the lease could expire must not apply: %+v", l)
	}
}

func TestLeaseCheckTimelineWithoutPatroniStatus(t *testing.T) {
	ops := []Op{ack(1, "pg1", 1, 900, 1000), ack(2, "pg2", 2, 2000, 2100), ack(3, "pg2", 2, 400, 3000), ack(4, "pg2", 3, 9000, 9100)}
	for _, tc := range []struct {
		node string
		want int
	}{
		{"pg1", 1}, // its last tenure before the injection
		{"pg2", 2}, // none before the injection: its first after (it had just taken over)
		{"pg3", 0},
	} {
		if got := tenureTimeline(ops, tc.node, ms(1500)); got != tc.want {
			t.Errorf("tenureTimeline(%s) = %d, want %d", tc.node, got, tc.want)
		}
	}
	// A check whose GET /patroni failed still measures the tenure.
	r := &Round{N: 1, Inject: ms(500), Heal: ms(25000), Recovered: ms(26000)}
	l := &LeaseCheck{Node: "pg1", Bound: ms(10000)}
	l.evaluate([]Op{ack(1, "pg1", 1, 100, 200), ack(2, "pg1", 1, 10500, 10600)}, r, nil)
	if l.Timeline != 1 || l.OK {
		t.Fatalf("got %+v, want timeline 1 and a violation", l)
	}
}

func TestFailureReportShowsSeedTimelineAndSlice(t *testing.T) {
	ops := append(failover(), ack(6, "pg1", 1, 15000, 15050))
	tl := &Timeline{}
	tl.Add(ms(500), "round 1: inject partition-primary-etcd on pg1")
	tl.Add(ms(11000), "etcd: leader key → pg2")
	rep := &Report{Seed: 42, Mode: "async", Timeline: tl, Verdicts: []Verdict{CheckSplitBrain(ops)}}
	if rep.OK() {
		t.Fatal("report with a failed verdict is OK")
	}
	out := rep.Failure()
	for _, want := range []string{"seed 42", "SEED=42", "inject partition-primary-etcd", "leader key → pg2", "insert id=6", "FAIL split-brain"} {
		if !strings.Contains(out, want) {
			t.Errorf("failure report lacks %q:\n%s", want, out)
		}
	}
}

func TestWalfileTimeline(t *testing.T) {
	if tl := walfileTimeline("0000000A0000000000000003"); tl != 10 {
		t.Errorf("timeline = %d, want 10", tl)
	}
}

func TestPickMembers(t *testing.T) {
	a, b, c := &EtcdMember{Name: "a"}, &EtcdMember{Name: "b"}, &EtcdMember{Name: "c"}
	order := []*EtcdMember{b, a, c}
	names := func(ms []*EtcdMember) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return strings.Join(s, ",")
	}
	for range 2 { // the same spec serves every round: nothing may be used up
		if got := names(pickMembers(order, b, 0, 1)); got != "a" {
			t.Errorf("member loss = %q, want a", got)
		}
		if got := names(pickMembers(order, a, 1, 0)); got != "a" {
			t.Errorf("leader loss = %q, want a", got)
		}
		if got := names(pickMembers(order, c, 1, 1)); got != "c,b" {
			t.Errorf("quorum loss = %q, want c,b", got)
		}
	}
}
