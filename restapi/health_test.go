package restapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// with returns a snapshot builder: base modified by each mod in turn.
func with(base func() *Snapshot, mods ...func(*Snapshot)) func() *Snapshot {
	return func() *Snapshot {
		s := base()
		for _, m := range mods {
			m(s)
		}
		return s
	}
}

var (
	notLeader  = func(s *Snapshot) { s.LeaderUntil = time.Time{} }
	leaseGone  = func(s *Snapshot) { s.LeaderUntil = t0.Add(-time.Millisecond) }
	viewStale  = func(s *Snapshot) { s.ViewFreshUntil = t0 } // now == fresh-until: stale
	paused     = func(s *Snapshot) { s.Paused = true }
	standbyCl  = func(s *Snapshot) { s.StandbyCluster = true }
	leader     = func(s *Snapshot) { s.LeaderUntil = t0.Add(time.Second) }
	syncSt     = func(s *Snapshot) { s.Status.SyncStandby = true }
	stopped    = func(s *Snapshot) { s.Status.State = "stopped" }
	starting   = func(s *Snapshot) { s.Status.State = "starting" }
	optimeZero = func(s *Snapshot) { s.Optime = 0 }
	noXLog     = func(s *Snapshot) { s.Status.XLog = nil }
	role       = func(r string) func(*Snapshot) { return func(s *Snapshot) { s.Status.Role = r } }
	tags       = func(t map[string]any) func(*Snapshot) { return func(s *Snapshot) { s.Status.Tags = t } }
)

type healthCase struct {
	name   string
	snap   func() *Snapshot
	target string
	want   int
}

func runHealth(t *testing.T, cases []healthCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.Publish(tc.snap())
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
				r := do(t, ts.Handler(), method, tc.target, nil)
				if r.code != tc.want {
					t.Errorf("%s %s = %d, want %d", method, tc.target, r.code, tc.want)
				}
				if method != http.MethodGet {
					if r.body != "" {
						t.Errorf("%s %s has body %q, want none", method, tc.target, r.body)
					}
					continue
				}
				var st Status
				if err := json.Unmarshal([]byte(r.body), &st); err != nil || st.Role == "" {
					t.Errorf("GET %s body %q is not the status document: %v", tc.target, r.body, err)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("GET %s Content-Type = %q", tc.target, ct)
				}
			}
		})
	}
}

func TestHealthLeaderRules(t *testing.T) {
	runHealth(t, []healthCase{
		// Rule 3: L holds, not a standby cluster.
		{"primary with L: /primary", primarySnap, "/primary", 200},
		{"primary with L: /master", primarySnap, "/master", 200},
		{"primary with L: /read-write", primarySnap, "/read-write", 200},
		{"primary with L: / is /primary", primarySnap, "/", 200},
		{"primary with L: /leader", primarySnap, "/leader", 200},
		{"primary with L: /standby-leader", primarySnap, "/standby-leader", 503},
		{"primary with L: /replica", primarySnap, "/replica", 503},
		{"primary with L: /read-only", primarySnap, "/read-only", 200},
		{"primary with L: /health", primarySnap, "/health", 200},
		{"primary with L and a stale view is still primary", with(primarySnap, viewStale), "/primary", 200},
		{"L alone decides, even for a replica role", with(replicaSnap, leader), "/primary", 200},
		// Rule 4: no L.
		{"primary whose lease expired: /primary", with(primarySnap, leaseGone), "/primary", 503},
		{"primary whose lease expired: /", with(primarySnap, leaseGone), "/", 503},
		{"primary whose lease expired: /leader", with(primarySnap, leaseGone), "/leader", 503},
		{"primary whose lease expired: /read-only", with(primarySnap, leaseGone), "/read-only", 503},
		{"primary whose lease expired: /health", with(primarySnap, leaseGone), "/health", 200},
		{"lease ends exactly now: not L", with(primarySnap, func(s *Snapshot) { s.LeaderUntil = t0 }), "/primary", 503},
		{"paused with a fresh view follows L, not role", with(primarySnap, notLeader, paused), "/primary", 503},
		// Rule 2: C null and paused.
		{"C null + paused, master: /primary", with(primarySnap, notLeader, viewStale, paused), "/primary", 200},
		{"C null + paused, role primary: /primary", with(primarySnap, notLeader, viewStale, paused, role("primary")), "/primary", 200},
		{"C null + paused, master: /leader", with(primarySnap, notLeader, viewStale, paused), "/leader", 200},
		{"C null + paused, master: /standby-leader", with(primarySnap, notLeader, viewStale, paused), "/standby-leader", 503},
		{"C null + paused, standby_leader: /standby_leader", with(replicaSnap, viewStale, paused, role("standby_leader")), "/standby_leader", 200},
		{"C null + paused, standby_leader: /leader", with(replicaSnap, viewStale, paused, role("standby_leader")), "/leader", 200},
		{"C null + paused, standby_leader: /primary", with(replicaSnap, viewStale, paused, role("standby_leader")), "/primary", 503},
		{"C null + paused, replica: /primary", with(replicaSnap, viewStale, paused), "/primary", 503},
		{"C null + paused, replica: /replica", with(replicaSnap, viewStale, paused), "/replica", 200},
		{"C null + paused, replica even with L: /primary", with(replicaSnap, viewStale, paused, leader), "/primary", 503},
		{"C null, not paused, no L: /primary", with(primarySnap, notLeader, viewStale), "/primary", 503},
		// Standby cluster.
		{"standby cluster, L, replica role: /standby-leader", with(replicaSnap, standbyCl, leader), "/standby-leader", 200},
		{"standby cluster, L, replica role: /standby_leader", with(replicaSnap, standbyCl, leader), "/standby_leader", 200},
		{"standby cluster, L, standby_leader role", with(replicaSnap, standbyCl, leader, role("standby_leader")), "/standby-leader", 200},
		{"standby cluster, L, master role: /standby-leader", with(primarySnap, standbyCl), "/standby-leader", 503},
		{"standby cluster, L: /leader", with(replicaSnap, standbyCl, leader), "/leader", 200},
		{"standby cluster, L: /primary", with(replicaSnap, standbyCl, leader), "/primary", 503},
		{"standby cluster, L: /replica", with(replicaSnap, standbyCl, leader), "/replica", 503},
		{"standby cluster, L: /read-only", with(replicaSnap, standbyCl, leader), "/read-only", 200},
		{"standby cluster, no L: /standby-leader", with(replicaSnap, standbyCl), "/standby-leader", 503},
		{"standby cluster, no L: /replica", with(replicaSnap, standbyCl), "/replica", 200},
	})
}

func TestHealthReplicaRules(t *testing.T) {
	runHealth(t, []healthCase{
		{"replica: /replica", replicaSnap, "/replica", 200},
		{"replica: /primary", replicaSnap, "/primary", 503},
		{"replica: /leader", replicaSnap, "/leader", 503},
		{"replica: /read-only", replicaSnap, "/read-only", 200},
		{"replica: /health", replicaSnap, "/health", 200},
		{"replica starting: /replica", with(replicaSnap, starting), "/replica", 503},
		{"replica starting: /read-only", with(replicaSnap, starting), "/read-only", 503},
		{"replica stopped: /health", with(replicaSnap, stopped), "/health", 503},
		{"primary stopped: /health", with(primarySnap, stopped), "/health", 503},
		{"stopped primary with L: /primary", with(primarySnap, stopped), "/primary", 200},
		{"replica with stale view still serves /replica", with(replicaSnap, viewStale), "/replica", 200},
		{"unknown role: /replica", with(replicaSnap, role("demoted")), "/replica", 503},
		{"unknown path", replicaSnap, "/status", 503},
		{"unknown path on a primary", primarySnap, "/whatever", 503},
		{"substring match: /foo/replica/bar", replicaSnap, "/foo/replica/bar", 200},
		{"substring match: /myprimary", primarySnap, "/myprimary", 200},
		{"query ignored for routing", primarySnap, "/primary?x=/replica", 200},
		{"query ignored for routing of /", primarySnap, "/?lag=1&tag_x=y", 200},
	})
}

func TestHealthLag(t *testing.T) {
	// replicaSnap replays 45 MiB of a 50 MiB optime: 5 MiB = 5242880 B behind.
	runHealth(t, []healthCase{
		{"no lag parameter means no limit", replicaSnap, "/replica", 200},
		{"bytes: exactly the lag", replicaSnap, "/replica?lag=5242880", 200},
		{"bytes: one short", replicaSnap, "/replica?lag=5242879", 503},
		{"B unit", replicaSnap, "/replica?lag=5242880B", 200},
		{"kB unit, 1024-based: 5120kB", replicaSnap, "/replica?lag=5120kB", 200},
		{"kB unit, 1024-based: 5119kB", replicaSnap, "/replica?lag=5119kB", 503},
		{"MB unit: 5MB", replicaSnap, "/replica?lag=5MB", 200},
		{"MB unit: 4MB", replicaSnap, "/replica?lag=4MB", 503},
		{"MB unit with a space", replicaSnap, "/replica?lag=5%20MB", 200},
		{"GB unit", replicaSnap, "/replica?lag=1GB", 200},
		{"TB unit", replicaSnap, "/replica?lag=1TB", 200},
		{"zero lag", replicaSnap, "/replica?lag=0", 503},
		{"unit case matters: 1mb is unparsable, no limit", replicaSnap, "/replica?lag=1mb", 200},
		{"unparsable: no limit", replicaSnap, "/replica?lag=abc", 200},
		{"negative: unparsable, no limit", replicaSnap, "/replica?lag=-1", 200},
		{"blank value ignored", replicaSnap, "/replica?lag=", 200},
		{"huge value saturates", replicaSnap, "/replica?lag=999999999999999999999999TB", 200},
		{"first value wins", replicaSnap, "/replica?lag=0&lag=1GB", 503},
		{"optime 0: never lagging", with(replicaSnap, optimeZero), "/replica?lag=0", 200},
		{"no xlog: replayed 0", with(replicaSnap, noXLog), "/replica?lag=1MB", 503},
		{"caught up with lag=0", with(replicaSnap, func(s *Snapshot) { s.Optime = 45 << 20 }), "/replica?lag=0", 200},
		{"lag applies to /read-only on a replica", replicaSnap, "/read-only?lag=1MB", 503},
		{"lag ignored for /read-only on the primary", primarySnap, "/read-only?lag=0", 200},
		{"lag ignored for /primary", with(primarySnap, func(s *Snapshot) { s.Optime = 99 << 20 }), "/primary?lag=0", 200},
		{"lag ignored for /health", replicaSnap, "/health?lag=0", 200},
		{"lag applies to /async", replicaSnap, "/async?lag=0", 503},
	})
}

func TestHealthTags(t *testing.T) {
	tagged := with(replicaSnap, tags(map[string]any{
		"dc": "East", "nofailover": true, "prio": 1, "weight": float64(2), "ratio": 1.5, "big": int64(7),
	}))
	runHealth(t, []healthCase{
		{"noloadbalance: /replica", with(replicaSnap, tags(map[string]any{"noloadbalance": true})), "/replica", 503},
		{"noloadbalance: /read-only", with(replicaSnap, tags(map[string]any{"noloadbalance": true})), "/read-only", 503},
		{"noloadbalance: /health unaffected", with(replicaSnap, tags(map[string]any{"noloadbalance": true})), "/health", 200},
		{"noloadbalance string yes", with(replicaSnap, tags(map[string]any{"noloadbalance": "yes"})), "/replica", 503},
		{"noloadbalance false", with(replicaSnap, tags(map[string]any{"noloadbalance": false})), "/replica", 200},
		{"noloadbalance on the primary: /read-only", with(primarySnap, tags(map[string]any{"noloadbalance": true})), "/read-only", 200},
		{"string tag matches", tagged, "/replica?tag_dc=East", 200},
		{"string tag is case-sensitive", tagged, "/replica?tag_dc=east", 503},
		{"missing tag", tagged, "/replica?tag_rack=r1", 503},
		{"missing tag with no tags at all", replicaSnap, "/replica?tag_dc=East", 503},
		{"bool tag lower-cased", tagged, "/replica?tag_nofailover=true", 200},
		{"bool tag: True does not match", tagged, "/replica?tag_nofailover=True", 503},
		{"int tag", tagged, "/replica?tag_prio=1", 200},
		{"int64 tag", tagged, "/replica?tag_big=7", 200},
		{"integral float tag (JSON number)", tagged, "/replica?tag_weight=2", 200},
		{"fractional float tag", tagged, "/replica?tag_ratio=1.5", 200},
		{"int tag mismatch", tagged, "/replica?tag_prio=2", 503},
		{"all tags must match", tagged, "/replica?tag_dc=East&tag_prio=1", 200},
		{"one mismatch fails", tagged, "/replica?tag_dc=East&tag_prio=3", 503},
		{"first value only", tagged, "/replica?tag_dc=East&tag_dc=West", 200},
		{"blank value is ignored", tagged, "/replica?tag_dc=", 200},
		{"other parameters are not tags", tagged, "/replica?dc=West", 200},
		{"tags apply to /read-only", tagged, "/read-only?tag_dc=West", 503},
		{"tags apply to /health", tagged, "/health?tag_dc=West", 503},
		{"tags never turn 503 into 200", with(tagged, starting), "/replica?tag_dc=East", 503},
		{"tags ignored on /primary", with(primarySnap, tags(map[string]any{"dc": "East"})), "/primary?tag_dc=West", 200},
		{"tags ignored on /leader", with(primarySnap, tags(map[string]any{"dc": "East"})), "/leader?tag_rack=1", 200},
		{"tags ignored on /", with(primarySnap, tags(map[string]any{"dc": "East"})), "/?tag_rack=1", 200},
		{"tags ignored on /standby-leader", with(replicaSnap, standbyCl, leader), "/standby-leader?tag_rack=1", 200},
		{"tags apply to /read-only on the primary", with(primarySnap, tags(map[string]any{"dc": "East"})), "/read-only?tag_dc=West", 503},
		{"tags apply to /read-only-sync on the primary", with(primarySnap, tags(map[string]any{"dc": "East"})), "/read-only-sync?tag_dc=West", 503},
	})
}

func TestHealthSync(t *testing.T) {
	runHealth(t, []healthCase{
		{"sync standby: /sync", with(replicaSnap, syncSt), "/sync", 200},
		{"sync standby: /synchronous", with(replicaSnap, syncSt), "/synchronous", 200},
		{"sync standby: /async", with(replicaSnap, syncSt), "/async", 503},
		{"sync standby: /asynchronous", with(replicaSnap, syncSt), "/asynchronous", 503},
		{"sync standby: /read-only-sync", with(replicaSnap, syncSt), "/read-only-sync", 200},
		{"sync standby: /read-only-synchronous", with(replicaSnap, syncSt), "/read-only-synchronous", 200},
		{"sync standby lagging: /sync", with(replicaSnap, syncSt), "/sync?lag=0", 503},
		{"sync standby noloadbalance: /sync", with(replicaSnap, syncSt, tags(map[string]any{"noloadbalance": true})), "/sync", 503},
		{"async replica: /sync", replicaSnap, "/sync", 503},
		{"async replica: /async", replicaSnap, "/async", 200},
		{"async replica: /asynchronous", replicaSnap, "/asynchronous", 200},
		{"async replica: /read-only-sync", replicaSnap, "/read-only-sync", 503},
		{"async replica, starting: /async", with(replicaSnap, starting), "/async", 503},
		{"primary: /sync", primarySnap, "/sync", 503},
		{"primary: /async (replica code)", primarySnap, "/async", 503},
		{"primary: /read-only-sync", primarySnap, "/read-only-sync", 200},
		{"standby leader: /read-only-sync", with(replicaSnap, standbyCl, leader), "/read-only-sync", 200},
		{"C null: sync standby /sync", with(replicaSnap, syncSt, viewStale), "/sync", 503},
		{"C null: async replica /async", with(replicaSnap, viewStale), "/async", 503},
		{"C null: primary with L /read-only-sync", with(primarySnap, viewStale), "/read-only-sync", 503},
		{"exact match only: /sync/x", with(replicaSnap, syncSt), "/sync/x", 503},
		{"exact match only: /async/", replicaSnap, "/async/", 503},
		{"read-only containing sync is not /read-only", replicaSnap, "/read-only/sync", 503},
	})
}

func TestHealthBeforePublish(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, target := range []string{"/", "/primary", "/replica", "/health", "/patroni"} {
		for _, m := range []string{http.MethodHead, http.MethodOptions} {
			if r := do(t, ts.Handler(), m, target, nil); r.code != 503 || r.body != "" {
				t.Errorf("%s %s before Publish = %d %q, want 503 without body", m, target, r.code, r.body)
			}
		}
		r := do(t, ts.Handler(), http.MethodGet, target, nil)
		if r.code != 503 {
			t.Errorf("GET %s before Publish = %d, want 503", target, r.code)
		}
		if e := errorOf(t, r); e.Error != "starting" {
			t.Errorf("GET %s before Publish: error %q, want starting", target, e.Error)
		}
	}
	for _, target := range []string{"/liveness", "/readiness"} {
		if r := do(t, ts.Handler(), http.MethodGet, target, nil); r.code != 503 {
			t.Errorf("GET %s before Publish = %d, want 503", target, r.code)
		}
	}
	// Publish(nil) returns to "starting".
	ts.Publish(primarySnap())
	if r := do(t, ts.Handler(), http.MethodGet, "/primary", nil); r.code != 200 {
		t.Fatalf("GET /primary after Publish = %d", r.code)
	}
	ts.Publish(nil)
	if r := do(t, ts.Handler(), http.MethodGet, "/primary", nil); r.code != 503 {
		t.Errorf("GET /primary after Publish(nil) = %d, want 503", r.code)
	}
}

func TestHeadAndOptionsOnAnyPath(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{})
	ts.Publish(primarySnap())
	cases := []struct {
		method, target string
		want           int
	}{
		{http.MethodHead, "/patroni", 503},
		{http.MethodOptions, "/patroni", 503},
		{http.MethodHead, "/liveness", 503},
		{http.MethodHead, "/cluster", 503},
		{http.MethodOptions, "/", 200},
		{http.MethodOptions, "/primary", 200},
		{http.MethodHead, "/primary", 200},
		{http.MethodOptions, "/replica", 503},
		{http.MethodHead, "/leader?tag_x=y", 200},
	}
	for _, tc := range cases {
		r := do(t, ts.Handler(), tc.method, tc.target, nil)
		if r.code != tc.want || r.body != "" {
			t.Errorf("%s %s = %d %q, want %d without body", tc.method, tc.target, r.code, r.body, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"10", 10, true}, {"+10", 10, true}, {" 10 ", 10, true},
		{"10B", 10, true}, {"1kB", 1024, true}, {"1MB", 1 << 20, true}, {"1GB", 1 << 30, true},
		{"1TB", 1 << 40, true}, {"10 MB", 10 << 20, true},
		{"1KB", 0, false}, {"1mb", 0, false}, {"1PB", 0, false}, {"abc", 0, false}, {"", 0, false},
		{"-1", 0, false}, {"MB", 0, false}, {"1.5MB", 0, false},
		{"18446744073709551616", 1<<64 - 1, true}, {"20000000TB", 1<<64 - 1, true},
	}
	for _, tc := range cases {
		got, ok := parseSize(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSize(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
