package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"none", nil, Summary{}},
		{"one", []float64{3}, Summary{N: 1, Median: 3, Min: 3, Max: 3}},
		{"odd, unsorted", []float64{5, 1, 3}, Summary{N: 3, Median: 3, Min: 1, Max: 5}},
		{"even: mean of the middle two", []float64{4, 1, 2, 10}, Summary{N: 4, Median: 3, Min: 1, Max: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Summarize(tt.in)); diff != "" {
				t.Errorf("Summarize(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0.1: time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %s, want %s", p, got, want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %s", got)
	}
}

// TestProfilesPassTheAgentsRules: both shipped profiles are accepted by
// the agent's own config validation, and a broken one is refused naming
// the rule.
func TestProfilesPassTheAgentsRules(t *testing.T) {
	for _, p := range []Profile{DefaultProfile, FastProfile} {
		if err := p.Check(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	bad := Profile{Name: "bad", TTL: 5, LoopWait: 1, RetryTimeout: 3, SafetyMargin: 2}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "retry_timeout") {
		t.Errorf("ttl 5 with retry_timeout 3: %v, want a retry_timeout error", err)
	}
	if err := DefaultParams().Validate(); err != nil {
		t.Errorf("DefaultParams: %v", err)
	}
	if err := SmokeParams().Validate(); err != nil {
		t.Errorf("SmokeParams: %v", err)
	}
}

func TestParseMetricsAndRates(t *testing.T) {
	text := `# HELP etcd_mvcc_put_total Total number of puts.
# TYPE etcd_mvcc_put_total counter
etcd_mvcc_put_total 12
grpc_server_started_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 30
etcd_debugging_mvcc_current_revision 1e+03
`
	got, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"etcd_mvcc_put_total": 12, seriesKAStreams: 30, seriesRevision: 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseMetrics (-want +got):\n%s", diff)
	}
	if _, err := parseMetrics(strings.NewReader("etcd_mvcc_put_total twelve\n")); err == nil {
		t.Error("a non-numeric value parsed")
	}
	at := time.Now()
	a := etcdCounters{at: at, revision: 100, put: 10, txn: 5, renewed: 0}
	b := etcdCounters{at: at.Add(10 * time.Second), revision: 106, put: 16, txn: 9, renewed: 60}
	l := loadBetween(a, b, 2, 6)
	approx := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	if !approx(l.WritesPerNodeS, 0.1) || !approx(l.PutPlusTxnPerNodeS, 10.0/60) || !approx(l.KeepAlivesPerNodeS, 1) || l.WindowS != 10 {
		t.Errorf("loadBetween = %+v", l)
	}
}

func TestReadProcOfSelf(t *testing.T) {
	s, err := readProc("self")
	if err != nil {
		t.Fatal(err)
	}
	if m := s.mem; m.RSS < 1<<20 || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS || s.CPU < 0 {
		t.Errorf("readProc(self) = %+v", s)
	}
	if _, err := readProc("999999999"); err == nil {
		t.Error("readProc of a missing pid succeeded")
	}
}

// TestSampleRSSCoversTheWindow: a window shorter than rssEvery still
// samples once, at its end; a cancelled context ends the sampling with
// its error.
func TestSampleRSSCoversTheWindow(t *testing.T) {
	maxRSS := []int64{0}
	start := time.Now()
	if err := sampleRSS(t.Context(), []string{"self"}, maxRSS, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d >= rssEvery {
		t.Errorf("a 50ms window took %s", d)
	}
	if maxRSS[0] < 1<<20 {
		t.Errorf("max RSS of self = %d, want a sample", maxRSS[0])
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sampleRSS(ctx, []string{"self"}, maxRSS, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// TestTargetsSayByHowMuch: a missed target carries its miss; a met one
// none; an unmeasured one is skipped.
func TestTargetsSayByHowMuch(t *testing.T) {
	r := &Report{
		Failover:       []FailoverResult{{Kind: KindHostDeath, Profile: DefaultProfile, RTO: Summary{N: 5, Median: 12500}}},
		Switchover:     &SwitchoverResult{Unavailable: Summary{N: 3, Median: 250}, Acked: 900},
		SwitchoverAlso: &SwitchoverResult{Unavailable: Summary{N: 3, Median: 450}, Acked: 900, Lost: 1},
		REST:           &RESTResult{RPS: Summary{N: 1, Median: 24000}, P99: Summary{N: 1, Median: 1.5}},
	}
	r.Conditions.Params = Params{Main: DefaultProfile, SwitchoverAlso: &SlowLoopProfile}
	got := checkTargetsByName(r)
	rto := got["host-death RTO, default profile (ttl 10 s)"]
	if rto.Met || rto.Miss != "1.50 s over (+14 %)" {
		t.Errorf("RTO check = %+v", rto)
	}
	if c := got["switchover write unavailability, loop_wait 1 s"]; !c.Met || c.Miss != "" {
		t.Errorf("switchover check = %+v", c)
	}
	if c := got["switchover write unavailability, loop_wait 2 s"]; c.Met || c.Miss == "" {
		t.Errorf("switchover check at loop_wait 2 = %+v", c)
	}
	if c := got["switchover lost acknowledged writes, loop_wait 2 s"]; c.Met {
		t.Errorf("lost writes check at loop_wait 2 = %+v", c)
	}
	if c := got["GET /primary throughput"]; c.Met || c.Miss != "6000 req/s short (-20 %)" {
		t.Errorf("throughput check = %+v", c)
	}
	if c := got["agent RSS"]; !c.Skipped {
		t.Errorf("RSS without an idle window = %+v, want skipped", c)
	}
	md := Markdown(r)
	if !strings.Contains(md, "**missed**: 1.50 s over (+14 %)") {
		t.Errorf("Markdown lacks the RTO miss:\n%s", md)
	}
}

func TestWriteNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	r := &Report{Date: "2030-01-02"}
	for _, want := range []string{"2030-01-02", "2030-01-02.2"} {
		j, m, err := Write(dir, r)
		if err != nil {
			t.Fatal(err)
		}
		if j != filepath.Join(dir, want+".json") || m != filepath.Join(dir, want+".md") {
			t.Errorf("Write = %s, %s; want %s.{json,md}", j, m, want)
		}
		if _, err := os.Stat(m); err != nil {
			t.Error(err)
		}
	}
}

// TestLeaderChanges: the first reading is the baseline; a new holder is
// a failover and a new key, the same holder re-taking the key a new key
// only; leaderless time runs from a reading without a key to the next.
func TestLeaderChanges(t *testing.T) {
	s := time.Second
	tests := []struct {
		name                    string
		obs                     []leaderObs
		failovers, acquisitions int
		leaderless              time.Duration
		events                  []LeaderEvent
	}{
		{"none", nil, 0, 0, 0, nil},
		{"steady", []leaderObs{{0, "pg1", 5}, {s, "pg1", 5}, {2 * s, "pg1", 5}}, 0, 0, 0, nil},
		{"failover through a gap", []leaderObs{{0, "pg1", 5}, {s, "", 0}, {3 * s, "pg2", 9}, {4 * s, "pg2", 9}}, 1, 1, 2 * s,
			[]LeaderEvent{{AtS: 1}, {AtS: 3, Leader: "pg2"}}},
		{"same holder re-takes the key", []leaderObs{{0, "pg1", 5}, {s, "pg1", 7}}, 0, 1, 0, []LeaderEvent{{AtS: 1, Leader: "pg1"}}},
		{"starts leaderless", []leaderObs{{0, "", 0}, {s, "pg3", 4}}, 0, 0, s, []LeaderEvent{{AtS: 1, Leader: "pg3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, a, l, ev := leaderChanges(tt.obs)
			if f != tt.failovers || a != tt.acquisitions || l != tt.leaderless {
				t.Errorf("failovers %d, acquisitions %d, leaderless %s; want %d, %d, %s", f, a, l, tt.failovers, tt.acquisitions, tt.leaderless)
			}
			if diff := cmp.Diff(tt.events, ev); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSeriesValueIgnoresLabels(t *testing.T) {
	series, err := parseMetrics(strings.NewReader("regent_lease_remaining_seconds_total 9\nregent_lease_remaining_seconds{scope=\"bench\"} 6.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := seriesValue(series, "regent_lease_remaining_seconds"); !ok || v != 6.5 {
		t.Errorf("seriesValue = %v, %v; want 6.5", v, ok)
	}
	if _, ok := seriesValue(series, "regent_role"); ok {
		t.Error("a missing series was found")
	}
}

func TestPercentilesOf(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got, want := percentilesOf(ds), (Percentiles{N: 100, P50: 50, P99: 99, Max: 100}); got != want {
		t.Errorf("percentilesOf = %+v, want %+v", got, want)
	}
	if got := percentilesOf(nil); got != (Percentiles{}) {
		t.Errorf("percentilesOf(nil) = %+v", got)
	}
}

// TestFastPathAndFalseFailoverReport: the fenced host death is checked
// against 3 s beside the lease path's ttl + 1 s; a false failover misses
// its target of 0; the Markdown has both sections, with each change.
func TestFastPathAndFalseFailoverReport(t *testing.T) {
	r := &Report{
		Failover: []FailoverResult{
			{Kind: KindHostDeath, Profile: DefaultProfile, Reps: 10, RTO: Summary{N: 10, Median: 9300, Min: 8800, Max: 10100}},
			{Kind: KindHostDeathFenced, Profile: FenceFastProfile, Reps: 10, RTO: Summary{N: 10, Median: 2100, Min: 1800, Max: 2900},
				Agree: Summary{N: 10, Median: 1000, Min: 1000, Max: 1000}},
		},
		FalseFailover: []FalseFailoverResult{
			{Profile: FastProfile, DurationS: 1800, Failovers: 1, Acquisitions: 1, LeaderlessS: 4.5,
				Changes: []LeaderEvent{{AtS: 600.5}, {AtS: 605, Leader: "pg2"}}, PgbenchTPS: 850, EtcdPutsS: 2400,
				LeaseAge: Percentiles{N: 3600, P50: 40, P99: 900, Max: 2600}},
			{Profile: DefaultProfile, DurationS: 1800, PgbenchTPS: 870, EtcdPutsS: 2300, LeaseAge: Percentiles{N: 3600, P50: 35, P99: 700, Max: 1500}},
		},
	}
	r.Conditions.Params = Params{Main: DefaultProfile, FenceFast: &FenceFastProfile, FenceFastReps: 10, FalseFailoverWindow: 30 * time.Minute}
	got := checkTargetsByName(r)
	if c := got["host-death RTO with the fence fast path (ttl 10 s)"]; !c.Met || c.Measured != "2.10 s (median of 10)" {
		t.Errorf("fenced RTO check = %+v", c)
	}
	if c := got["host-death RTO, default profile (ttl 10 s)"]; !c.Met {
		t.Errorf("lease-path RTO check = %+v", c)
	}
	if c := got["false failovers under load, fast profile (ttl 5 s)"]; c.Met || c.Miss != "1 leader changes, 1 new leader keys" {
		t.Errorf("ttl 5 check = %+v", c)
	}
	if c := got["false failovers under load, default profile (ttl 10 s)"]; !c.Met {
		t.Errorf("ttl 10 check = %+v", c)
	}
	md := Markdown(r)
	for _, want := range []string{
		"| host_death_fenced | fence_fast (ttl 10) | 10/10 | 2.10 (1.80–2.90) | — | 1.00 (1.00–1.00) |",
		"| host_death | default (ttl 10) | 10/10 | 9.30 (8.80–10.1) | — | — |",
		"## False failovers under load",
		"| fast (ttl 5 s) | 1800 s | 1 | 1 | 4.50 | 850 | 2400 | 40.0 / 900 / 2600 (3600) |",
		"| default (ttl 10 s) | 1800 s | 0 | 0 | 0.000 | 870 | 2300 | 35.0 / 700 / 1500 (3600) |",
		"- ttl 5, 600.5 s: no leader key", "- ttl 5, 605.0 s: pg2",
		"false failovers 30m0s per profile",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// checkTargetsByName sets r.Targets (checkTargets) and returns them by
// name.
func checkTargetsByName(r *Report) map[string]TargetCheck {
	r.Targets = checkTargets(r)
	got := map[string]TargetCheck{}
	for _, c := range r.Targets {
		got[c.Name] = c
	}
	return got
}
