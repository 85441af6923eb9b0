package bench_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/bench"
	"github.com/regent-ha/regent/bench/scale"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Flags of `make bench` (TestBench runs only when -bench.out is set).
var (
	benchOut   = flag.String("bench.out", "", "run the full benchmark (TestBench) and write the report to this directory")
	benchReps  = flag.Int("bench.reps", 0, "repetitions of every repeated measurement: faults, switchover, REST load (0: the defaults)")
	benchIdle  = flag.Duration("bench.idle", 0, "idle window (0: the default)")
	benchScale = flag.String("bench.scale", "", "comma-separated cluster counts of the etcd scale measurement (\"\": the default; \"none\" skips it)")
	benchFast  = flag.Bool("bench.fast", true, "repeat host death at the fast profile")
	benchSW    = flag.Duration("bench.scale-window", 0, "window of each etcd scale point (0: the default)")
	benchREST  = flag.Duration("bench.rest", 0, "duration of each REST load run (0: the default)")
	benchOnly  = flag.String("bench.only", "", "run only this measurement: \"switchover\" (at the main profile and at loop_wait 2), \"fence_fast\" (host death with the fence fast path), \"false_failover\" (busy clusters at ttl 5 and 10); \"\": all")
	benchFalse = flag.Duration("bench.false-window", 0, "window of each false-failover run (0: the default, 30m)")
	benchFence = flag.Int("bench.fence-reps", 0, "repetitions of host death with the fence fast path (0: the default)")
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// TestBench is `make bench`: every measurement at DefaultParams (adjusted
// by the -bench.* flags), the report written to -bench.out and printed.
func TestBench(t *testing.T) {
	if *benchOut == "" {
		t.Skip("the full benchmark runs with -bench.out (make bench)")
	}
	p, err := flagParams()
	if err != nil {
		t.Fatal(err)
	}
	p.Progress = os.Stdout
	r := bench.Run(t, p)
	jsonPath, mdPath, err := bench.Write(*benchOut, r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\n%s\nwritten: %s, %s\n", bench.Markdown(r), jsonPath, mdPath)
}

func flagParams() (bench.Params, error) {
	p := bench.DefaultParams()
	p.Scale = scale.Run
	if n := *benchReps; n > 0 {
		p.HostDeathReps, p.FrozenReps, p.CrashReps, p.SwitchoverReps, p.RESTReps, p.FenceFastReps = n, n, n, n, n, n
	}
	if n := *benchFence; n > 0 {
		p.FenceFastReps = n
	}
	if *benchFalse > 0 {
		p.FalseFailoverWindow = *benchFalse
	}
	if *benchIdle > 0 {
		p.IdleWindow = *benchIdle
	}
	if *benchSW > 0 {
		p.ScaleWindow = *benchSW
	}
	if *benchREST > 0 {
		p.RESTDuration = *benchREST
	}
	if !*benchFast {
		p.Fast = nil
	}
	switch s := *benchScale; s {
	case "":
	case "none":
		p.ScaleClusters = nil
	default:
		p.ScaleClusters = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return p, fmt.Errorf("-bench.scale %q: %w", s, err)
			}
			p.ScaleClusters = append(p.ScaleClusters, n)
		}
	}
	if err := only(&p, *benchOnly); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// only keeps the one part -bench.only names ("": every part).
func only(p *bench.Params, part string) error {
	keep := *p
	switch part {
	case "":
		return nil
	case "switchover", "fence_fast", "false_failover":
	default:
		return fmt.Errorf("-bench.only %q: want \"switchover\", \"fence_fast\", \"false_failover\" or \"\"", part)
	}
	p.HostDeathReps, p.FrozenReps, p.CrashReps, p.RESTReps, p.SwitchoverReps, p.FenceFastReps = 0, 0, 0, 0, 0, 0
	p.Fast, p.SwitchoverAlso, p.FenceFast, p.FalseFailover, p.ScaleClusters, p.IdleWindow, p.Warmup = nil, nil, nil, nil, nil, 0, 0
	switch part {
	case "switchover":
		p.SwitchoverReps, p.SwitchoverAlso = keep.SwitchoverReps, keep.SwitchoverAlso
	case "fence_fast":
		p.FenceFast, p.FenceFastReps = keep.FenceFast, keep.FenceFastReps
	case "false_failover":
		p.FalseFailover = keep.FalseFailover
	}
	return nil
}

// TestSmoke runs every measurement once with tiny parameters and checks
// that the report holds a plausible value for each: the code cannot rot
// unnoticed. It checks no performance target.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the smoke test starts real clusters; skipped with -short")
	}
	start := time.Now()
	p := bench.SmokeParams()
	p.Scale = scale.Run
	r := bench.Run(t, p)
	t.Logf("smoke run took %s", time.Since(start).Round(time.Second))
	if t.Failed() {
		return
	}
	if len(r.Problems) > 0 {
		t.Errorf("problems: %q", r.Problems)
	}
	t.Logf("summary:\n%s", bench.Markdown(r))
	checkSmokeReport(t, r)
	dir := t.TempDir()
	jsonPath, mdPath, err := bench.Write(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if data, err := os.ReadFile(jsonPath); err != nil || json.Unmarshal(data, &back) != nil {
		t.Fatalf("%s does not read back as a report: %v", jsonPath, err)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "## Failover RTO", "## Planned switchover", "## REST health endpoint",
		"## Footprint at idle", "## etcd load per node as clusters share one etcd", "## False failovers under load",
		"host_death", "frozen_host", "postgres_crash"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the Markdown summary lacks %q:\n%s", want, md)
		}
	}
}

func checkSmokeReport(t *testing.T, r *bench.Report) {
	t.Helper()
	kinds := map[string]bool{}
	for _, f := range r.Failover {
		kinds[f.Kind] = true
		if f.Failed > 0 || f.RTO.N != 1 || f.RTO.Median <= 0 {
			t.Errorf("%s: %d failed, RTO %+v", f.Kind, f.Failed, f.RTO)
		}
		if f.Kind != bench.KindCrash && f.Detection.N != 1 {
			t.Errorf("%s: no split from the decision record: %+v", f.Kind, f.Samples)
		}
	}
	if len(kinds) != 4 {
		t.Errorf("failover kinds measured: %v, want all four", kinds)
	}
	if s := r.Switchover; s == nil || s.Failed > 0 || s.Unavailable.N != 1 || s.Acked == 0 || s.Lost != 0 || len(s.Stages) == 0 {
		t.Errorf("switchover: %+v", s)
	}
	if s := r.REST; s == nil || s.RPS.N != 1 || s.RPS.Median <= 0 || s.P99.Median <= 0 {
		t.Errorf("rest: %+v", s)
	}
	if s := r.Idle; s == nil || len(s.Footprint) != 3 || s.Footprint[0].RSSMB <= 0 || s.Etcd.KeepAlivesPerNodeS <= 0 {
		t.Errorf("idle: %+v", s)
	}
	if len(r.EtcdScale) != 2 || r.EtcdScale[1].Nodes != 6 || r.EtcdScale[1].KeepAlivesPerNodeS <= 0 {
		t.Errorf("etcd scale: %+v", r.EtcdScale)
	}
	if f := r.FalseFailover; len(f) != 1 || f[0].Samples == 0 || f[0].PgbenchTxns == 0 || f[0].EtcdPuts == 0 {
		t.Errorf("false failovers: %+v", f)
	}
	if r.Conditions.PostgresVersion == "unknown" || len(r.Targets) == 0 {
		t.Errorf("conditions %+v, targets %+v", r.Conditions, r.Targets)
	}
}

// TestOnlyKeepsOnePart: -bench.only keeps its part's settings and turns
// every other measurement off; an unknown part is refused.
func TestOnlyKeepsOnePart(t *testing.T) {
	for part, check := range map[string]func(p bench.Params) bool{
		"switchover": func(p bench.Params) bool {
			return p.SwitchoverReps > 0 && p.SwitchoverAlso != nil && p.FenceFast == nil && p.FalseFailover == nil
		},
		"fence_fast": func(p bench.Params) bool {
			return p.FenceFastReps > 0 && p.FenceFast != nil && p.SwitchoverReps == 0 && p.FalseFailover == nil
		},
		"false_failover": func(p bench.Params) bool {
			return len(p.FalseFailover) == 2 && p.FenceFast == nil && p.SwitchoverReps == 0 && p.FalseFailoverWindow > 0
		},
	} {
		p := bench.DefaultParams()
		if err := only(&p, part); err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		if !check(p) || p.HostDeathReps != 0 || p.RESTReps != 0 || p.IdleWindow != 0 || p.ScaleClusters != nil || p.Fast != nil {
			t.Errorf("%s: %+v", part, p)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", part, err)
		}
	}
	p := bench.DefaultParams()
	if err := only(&p, "everything"); err == nil {
		t.Error("an unknown part was accepted")
	}
}
