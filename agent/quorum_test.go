package agent

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/postgres/pgtest"
)

func TestSSNRenderAndParse(t *testing.T) {
	for _, tt := range []struct {
		spec ssnSpec
		text string
	}{
		{ssnSpec{}, ""},
		{ssnSpec{Star: true, Num: 1}, "*"},
		{ssnSpec{Num: 1, Names: []string{"pg2"}}, "pg2"},
		{ssnSpec{Num: 2, Names: []string{"a", "b"}}, "2 (a,b)"},
		{ssnSpec{Any: true, Num: 1, Names: []string{"b", "c"}}, "ANY 1 (b,c)"},
		{ssnSpec{Any: true, Num: 1, Names: []string{"b"}}, "ANY 1 (b)"},
		{ssnSpec{Any: true, Num: 2, Names: []string{"pg-2", "pg3", `we"ird`}}, `ANY 2 ("pg-2",pg3,"we""ird")`},
	} {
		if got := tt.spec.String(); got != tt.text {
			t.Errorf("%+v renders %q, want %q", tt.spec, got, tt.text)
		}
		if d := cmp.Diff(tt.spec, parseSSN(tt.text)); d != "" {
			t.Errorf("parseSSN(%q) (-want +got):\n%s", tt.text, d)
		}
	}
	// Forms PostgreSQL accepts that Regent does not write.
	for text, want := range map[string]ssnSpec{
		"FIRST 2 (b, a)":  {Num: 2, Names: []string{"a", "b"}},
		"any 1 ( c , b )": {Any: true, Num: 1, Names: []string{"b", "c"}},
		"b, a":            {Num: 1, Names: []string{"a", "b"}},
		"2 (*)":           {Num: 2, Star: true},
	} {
		if d := cmp.Diff(want, parseSSN(text)); d != "" {
			t.Errorf("parseSSN(%q) (-want +got):\n%s", text, d)
		}
	}
}

func TestQuorumCovers(t *testing.T) {
	anyOf := func(k int, names ...string) ssnSpec { return ssnSpec{Any: true, Num: k, Names: names} }
	for _, tt := range []struct {
		name   string
		voters []string
		q      int
		ssn    ssnSpec
		want   bool
	}{
		{"only the leader: always", nil, 0, ssnSpec{}, true},
		{"ANY 1 (b,c): see both", []string{"b", "c"}, 1, anyOf(1, "b", "c"), true},
		{"ANY 1 (b,c): one is not enough", []string{"b", "c"}, 0, anyOf(1, "b", "c"), false},
		{"ANY 2 (b,c,d): two of three", []string{"b", "c", "d"}, 1, anyOf(2, "b", "c", "d"), true},
		{"ANY 2 (b,c,d): one of three is not", []string{"b", "c", "d"}, 0, anyOf(2, "b", "c", "d"), false},
		{"a standby acking outside the voters", []string{"b"}, 0, anyOf(1, "b", "c"), false},
		{"grown voters before the setting", []string{"b", "c"}, 1, anyOf(1, "b"), true},
		{"asynchronous: nothing is covered", []string{"b"}, 0, ssnSpec{}, false},
		{"star: anyone may ack", []string{"b"}, 0, ssnSpec{Star: true, Num: 1}, false},
		{"FIRST 2 (b,c) read as 2 of 2", []string{"b", "c"}, 0, ssnSpec{Num: 2, Names: []string{"b", "c"}}, true},
	} {
		if got := quorumCovers(tt.voters, tt.q, tt.ssn); got != tt.want {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}

func syncKey(leader string, quorum int, voters ...string) dcs.Sync {
	s := dcs.Sync{Leader: leader, Quorum: &quorum}
	if len(voters) > 0 {
		j := strings.Join(voters, ",")
		s.SyncStandby = &j
	}
	return s
}

func TestDecideQuorum(t *testing.T) {
	anyOf := func(k int, names ...string) *ssnSpec { return &ssnSpec{Any: true, Num: k, Names: names} }
	key := func(q int, voters ...string) *quorumKey { return &quorumKey{Voters: voters, Quorum: q} }
	tests := []struct {
		name      string
		key       dcs.Sync
		cur       string
		confirmed []string
		eligible  []string
		wanted    int
		strict    bool
		wantKey   *quorumKey
		wantSSN   *ssnSpec
	}{
		{"another leader's key: name only me, then the setting",
			syncKey("pg9", 1, "b", "c"), "", nil, []string{"b", "c"}, 1, false, key(0), anyOf(1, "b", "c")},
		{"from asynchronous: the setting first, the key waits",
			syncKey("a", 0), "", nil, []string{"b", "c"}, 1, false, nil, anyOf(1, "b", "c")},
		{"confirmed: the key grows to quorum n−k",
			syncKey("a", 0), "ANY 1 (b,c)", []string{"b", "c"}, []string{"b", "c"}, 1, false, key(1, "b", "c"), nil},
		{"one confirmed of ANY 2 (b,c,d): quorum raised so the confirmed one is always seen",
			syncKey("a", 0), "ANY 2 (b,c,d)", []string{"c"}, []string{"b", "c", "d"}, 2, false, key(2, "b", "c", "d"), nil},
		{"nobody confirmed yet: keep the key",
			syncKey("a", 0), "ANY 1 (b,c)", nil, []string{"b", "c"}, 1, false, nil, nil},
		{"steady", syncKey("a", 1, "b", "c"), "ANY 1 (b,c)", []string{"b", "c"}, []string{"b", "c"}, 1, false, nil, nil},
		{"a standby joins: the key grows first (quorum up), then the setting",
			syncKey("a", 0, "b"), "ANY 1 (b)", []string{"b"}, []string{"b", "c"}, 1, false, key(1, "b", "c"), anyOf(1, "b", "c")},
		{"a standby leaves: the setting shrinks first, the key keeps covering it",
			syncKey("a", 1, "b", "c"), "ANY 1 (b,c)", []string{"b", "c"}, []string{"b"}, 1, false, nil, anyOf(1, "b")},
		{"then the key shrinks once the remaining one confirms",
			syncKey("a", 1, "b", "c"), "ANY 1 (b)", []string{"b"}, []string{"b"}, 1, false, key(0, "b"), nil},
		{"k raised: the setting first, the quorum lowers after",
			syncKey("a", 2, "b", "c", "d"), "ANY 1 (b,c,d)", []string{"b", "c", "d"}, []string{"b", "c", "d"}, 2, false, nil, anyOf(2, "b", "c", "d")},
		{"k lowered: the quorum rises first",
			syncKey("a", 1, "b", "c", "d"), "ANY 2 (b,c,d)", []string{"b", "c", "d"}, []string{"b", "c", "d"}, 1, false, key(2, "b", "c", "d"), anyOf(1, "b", "c", "d")},
		{"last standby gone, not strict: only me, then asynchronous",
			syncKey("a", 0, "b"), "ANY 1 (b)", []string{"b"}, nil, 1, false, key(0), &ssnSpec{}},
		{"last standby gone, strict: only me, then *",
			syncKey("a", 0, "b"), "ANY 1 (b)", []string{"b"}, nil, 1, true, key(0), &ssnSpec{Star: true, Num: 1}},
		{"from named mode's key covering its setting: kept, the setting moves",
			dcs.Sync{Leader: "a", SyncStandby: ptr("b")}, "b", []string{"b"}, []string{"b", "c"}, 1, false, key(1, "b", "c"), anyOf(1, "b", "c")},
		{"a key without the quorum field gets it",
			dcs.Sync{Leader: "a", SyncStandby: ptr("b")}, "ANY 1 (b)", []string{"b"}, []string{"b"}, 1, false, key(0, "b"), nil},
		{"k larger than the standbys: ANY n of n",
			syncKey("a", 0), "", nil, []string{"b", "c"}, 3, false, nil, anyOf(2, "b", "c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideQuorum("a", tt.key, parseSSN(tt.cur), tt.confirmed, tt.eligible, tt.wanted, tt.strict)
			if d := cmp.Diff(tt.wantKey, got.Key); d != "" {
				t.Errorf("key (-want +got):\n%s\nreason: %s", d, got.Reason)
			}
			if d := cmp.Diff(tt.wantSSN, got.SSN); d != "" {
				t.Errorf("setting (-want +got):\n%s\nreason: %s", d, got.Reason)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestBridgeKey: the key written before the setting moves, each way out.
func TestBridgeKey(t *testing.T) {
	for _, tt := range []struct {
		name, cur, target string
		confirmed         []string
		want              quorumKey
	}{
		{"from asynchronous: only the leader", "", "ANY 1 (c)", nil, quorumKey{}},
		{"from any standby (*): only the leader", "*", "ANY 1 (c)", []string{"b"}, quorumKey{}},
		{"widening: both sets, any two voters", "ANY 1 (b)", "ANY 1 (b,c)", []string{"b"}, quorumKey{Voters: []string{"b", "c"}, Quorum: 1}},
		{"to a disjoint set: both sets", "ANY 1 (b)", "ANY 1 (c)", []string{"b"}, quorumKey{Voters: []string{"b", "c"}, Quorum: 1}},
		{"no standby of the setting confirmed: only the leader", "ANY 1 (b)", "ANY 1 (b,c)", nil, quorumKey{}},
		{"two named standbys to a wider quorum: every voter", "2 (b,c)", "ANY 1 (b,c,d)", []string{"b", "c"}, quorumKey{Voters: []string{"b", "c", "d"}, Quorum: 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := bridgeKey(parseSSN(tt.cur), parseSSN(tt.target), tt.confirmed)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestQuorumTransitionsNeverLoseAnAcknowledgedCommit drives decideQuorum
// through random membership and synchronous_node_count changes. After each
// commit (every way the setting in force lets it be acknowledged) and
// each write, any election the key allows — any q+1 voters — must include
// a holder of every acknowledged commit; and with a stable set the pair
// reaches ANY k (all) with quorum n−k.
func TestQuorumTransitionsNeverLoseAnAcknowledgedCommit(t *testing.T) {
	nodes := []string{"b", "c", "d", "e"}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var key dcs.Sync
		cur := ssnSpec{}
		var commits [][]string // holders of each acknowledged commit
		check := func(step string) {
			t.Helper()
			voters, q := key.Standbys(), key.QuorumValue()
			if len(voters) == 0 {
				return
			}
			for i, holders := range commits {
				if missing := len(voters) - len(intersect(holders, voters)); missing > q {
					t.Fatalf("seed %d, %s: key %v quorum %d, setting %q: an election of %d voters can miss commit %d held by %v",
						seed, step, voters, q, cur, q+1, i, holders)
				}
			}
		}
		commit := func() {
			if cur.Star || cur.Num < 1 {
				return // nothing promised: asynchronous (or any standby at all)
			}
			for _, acks := range subsets(cur.Names, cur.Num) {
				if !slices.ContainsFunc(commits, func(h []string) bool { return slices.Equal(h, acks) }) {
					commits = append(commits, acks)
				}
			}
			check("commit")
		}
		strict := rng.IntN(4) == 0
		for range 40 {
			var eligible []string
			for _, n := range nodes {
				if rng.IntN(3) > 0 {
					eligible = append(eligible, n)
				}
			}
			wanted := 1 + rng.IntN(3)
			for tick := 0; tick < 6; tick++ {
				commit()
				// Live standbys of the setting catch up (sometimes not yet).
				var confirmed []string
				for _, n := range intersect(cur.Names, eligible) {
					if rng.IntN(3) > 0 {
						confirmed = append(confirmed, n)
						for i := range commits {
							commits[i] = union(commits[i], []string{n})
						}
						commits = slices.CompactFunc(sortHolders(commits), slices.Equal)
					}
				}
				st := decideQuorum("a", key, cur, confirmed, eligible, wanted, strict)
				if st.Key != nil {
					key = syncKey("a", st.Key.Quorum, st.Key.Voters...)
					check("key write " + st.Reason)
				}
				commit()
				if st.SSN != nil {
					cur = *st.SSN
					check("setting write " + st.Reason)
				}
			}
		}
		// Liveness: a stable, fully caught-up set converges.
		eligible := []string{"b", "c", "d"}
		for range 4 {
			st := decideQuorum("a", key, cur, intersect(cur.Names, eligible), eligible, 2, false)
			if st.Key != nil {
				key = syncKey("a", st.Key.Quorum, st.Key.Voters...)
			}
			if st.SSN != nil {
				cur = *st.SSN
			}
		}
		if cur.String() != "ANY 2 (b,c,d)" || !slices.Equal(key.Standbys(), eligible) || key.QuorumValue() != 1 {
			t.Fatalf("seed %d: did not converge: setting %q, key %v quorum %d", seed, cur, key.Standbys(), key.QuorumValue())
		}
	}
}

func sortHolders(c [][]string) [][]string {
	slices.SortFunc(c, func(a, b []string) int { return strings.Compare(strings.Join(a, ","), strings.Join(b, ",")) })
	return c
}

// subsets returns every k-element subset of names.
func subsets(names []string, k int) [][]string {
	if k == 0 {
		return [][]string{nil}
	}
	if len(names) < k {
		return nil
	}
	var out [][]string
	for _, rest := range subsets(names[1:], k-1) {
		out = append(out, append([]string{names[0]}, rest...))
	}
	return append(out, subsets(names[1:], k)...)
}

func TestQuorumElection(t *testing.T) {
	unreachable := func(p PeerStatus) PeerStatus { p.Reachable = false; return p }
	noFailover := func(p PeerStatus) PeerStatus { p.NoFailover = true; return p }
	tests := []struct {
		name   string
		quorum int
		voters []string   // the sync key's standbys (pg1 leads)
		peer   PeerStatus // the one peer this member (pg2) hears from
		race   bool
		reason string
	}{
		{"ANY 1 (pg2,pg3): sees pg3, most advanced: races",
			1, []string{"pg2", "pg3"}, peer("pg3", 0x4000000), true, ""},
		{"ANY 1 (pg2,pg3): pg3 unreachable: saw 1 of 2, does not race",
			1, []string{"pg2", "pg3"}, unreachable(peer("pg3", 0)), false, "saw 1 of the quorum set [pg2 pg3] counting me, need 2"},
		{"ANY 1 (pg2,pg3): pg3 ahead: stands down",
			1, []string{"pg2", "pg3"}, peer("pg3", 0x9000000), false, "pg3 is more advanced"},
		{"not in the quorum set: does not race",
			0, []string{"pg3"}, peer("pg3", 0x1000000), false, "not a synchronous standby"},
		{"ANY 2 (pg2,pg3,pg4): quorum 1, one peer seen is enough",
			1, []string{"pg2", "pg3", "pg4"}, peer("pg4", 0x4000000), true, ""},
		{"a nofailover voter ahead blocks (it holds commits I lack)",
			1, []string{"pg2", "pg3"}, noFailover(peer("pg3", 0x9000000)), false, "cannot be elected but is more advanced"},
		{"a nofailover voter behind counts as seen",
			1, []string{"pg2", "pg3"}, noFailover(peer("pg3", 0x1000000)), true, ""},
		{"a non-voter peer does not count",
			1, []string{"pg2", "pg3"}, peer("pg4", 0x1000000), false, "need 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(snap(unlocked, func(s *Snapshot) {
				s.Config.SynchronousMode = config.SyncQuorum
				s.View.Sync = syncKey("pg1", tt.quorum, tt.voters...)
				s.Peers = []PeerStatus{tt.peer}
			}))
			if (p.Action.Kind == ActRace) != tt.race || !strings.Contains(p.Reason, tt.reason) {
				t.Errorf("%s: %s", p.Action.Kind, p.Reason)
			}
		})
	}
}

// TestQuorumUpkeepOnTheLoop: the leader's ticks against fakes, in quorum
// mode: the setting becomes ANY 1 of both standbys, the key grows to them
// with quorum 1 once they confirm; when one standby goes, the setting
// shrinks first while the key still covers it, then the key.
func TestQuorumUpkeepOnTheLoop(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.New(7000000000000000001))
	h.bootstrapLeader()
	h.setDynamic(map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "synchronous_mode": "quorum"})
	for _, m := range []string{"pg2", "pg3"} {
		if err := h.dcs.Put(t.Context(), h.dcs.Keys().Member(m), []byte(`{"state":"running","role":"replica"}`)); err != nil {
			t.Fatal(err)
		}
	}
	const lsn = 0x3000000
	h.pg.SetPrimary(lsn)
	stream := func(state string, names ...string) {
		var repl []postgres.Replica
		for _, n := range names {
			repl = append(repl, rep(n, state, lsn))
		}
		h.pg.SetReplication(repl...)
	}
	key := func() dcs.Sync {
		t.Helper()
		raw, _, err := h.dcs.Get(t.Context(), h.dcs.Keys().Sync())
		var k dcs.Sync
		if err == nil && raw.Data != nil {
			err = json.Unmarshal(raw.Data, &k)
		}
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	step := func() { t.Helper(); h.advance(time.Second); h.tick() }
	expect := func(what, ssn string, voters []string, q int) {
		t.Helper()
		k := key()
		if got := h.pg.SynchronousStandbyNames(); got != ssn || k.Leader != "pg1" || !slices.Equal(k.Standbys(), voters) || k.QuorumValue() != q {
			t.Fatalf("%s: setting %q, key %s %v quorum %d; want %q, pg1 %v quorum %d", what, got, k.Leader, k.Standbys(), k.QuorumValue(), ssn, voters, q)
		}
	}

	stream("async", "pg2", "pg3")
	step()
	expect("first tick: the setting, the key names only me", "ANY 1 (pg2,pg3)", nil, 0)
	stream("quorum", "pg2", "pg3")
	step() // reads the change point
	step()
	expect("confirmed: the key grows", "ANY 1 (pg2,pg3)", []string{"pg2", "pg3"}, 1)

	stream("quorum", "pg2")
	step()
	expect("pg3 gone: the setting shrinks first", "ANY 1 (pg2)", []string{"pg2", "pg3"}, 1)
	step()
	step()
	expect("then the key", "ANY 1 (pg2)", []string{"pg2"}, 0)
}
