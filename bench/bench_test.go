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
	benchOnly  = flag.String("bench.only", "", "run only this measurement: \"switchover\" (at the main profile and at loop_wait 2); \"\": all")
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
		p.HostDeathReps, p.FrozenReps, p.CrashReps, p.SwitchoverReps, p.RESTReps = n, n, n, n, n
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
	switch *benchOnly {
	case "":
	case "switchover":
		p.HostDeathReps, p.FrozenReps, p.CrashReps, p.RESTReps = 0, 0, 0, 0
		p.Fast, p.ScaleClusters, p.IdleWindow, p.Warmup = nil, nil, 0, 0
	default:
		return p, fmt.Errorf("-bench.only %q: want \"switchover\" or \"\"", *benchOnly)
	}
	return p, p.Validate()
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
		"## Footprint at idle", "## etcd load per node as clusters share one etcd", "host_death", "frozen_host", "postgres_crash"} {
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
	if len(kinds) != 3 {
		t.Errorf("failover kinds measured: %v, want all three", kinds)
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
	if r.Conditions.PostgresVersion == "unknown" || len(r.Targets) == 0 {
		t.Errorf("conditions %+v, targets %+v", r.Conditions, r.Targets)
	}
}
