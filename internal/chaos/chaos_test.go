package chaos

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/proc"
)

// The short run (the default: shortRounds per mode, both modes, a seed
// from the clock) is part of `go test ./...` and `make test`; `make chaos`
// runs the long one (-chaos.rounds=200 -chaos.mode=sync by default).
var (
	flagRounds = flag.Int("chaos.rounds", 0, "rounds per mode (0: the short run's default)")
	flagSeed   = flag.Uint64("chaos.seed", 0, "scheduler seed (0: from the clock; printed at start and on failure)")
	flagNodes  = flag.Int("chaos.nodes", 3, "PostgreSQL nodes (4 with -chaos.mode=quorum: ANY 2 of 3)")
	flagMode   = flag.String("chaos.mode", "", "sync, async, quorum or both (default: both for the short run: sync and async)")
	flagFaults = flag.String("chaos.faults", "", "comma-separated fault kinds; \"fence\" names the fence kinds (default: every kind but those)")
	flagReport = flag.String("chaos.report", "", "also write the report to this file")
	flagTTL    = flag.Int("chaos.ttl", 0, "leader lease ttl in seconds (default 10)")
	flagWD     = flag.String("chaos.watchdog", "half", "rounds with the emulated watchdog: half (seeded), on or off")
	flagNoWD   = flag.Bool("chaos.no-watchdog", false, "every round without the watchdog (-chaos.watchdog=off)")
	flagActs   = flag.String("chaos.actions", "", "comma-separated operator actions to pair faults with (default: all; none: no actions)")
	flagKeep   = flag.Bool("chaos.keep", false, "keep the logs directory even when the run passes")
	flagRoute  = flag.Bool("chaos.routing", false, "routing mode: one PgBouncer in front, driven by the agents; part of the writes through it, the routing fault kinds in the mix, the routing checker")
	flagDR     = flag.Bool("chaos.standby", false, "also run a standby cluster following this one, with the standby fault kinds in the mix")
)

// shortRounds is the short run's rounds per mode: a few minutes in all.
// The plan gives each mode at least one round without the watchdog and
// one with an operator action (planRounds).
const shortRounds = 3

func TestMain(m *testing.M) {
	code := m.Run()
	proc.RemoveBuilds()
	os.Exit(code)
}

func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rounds := *flagRounds
	if rounds <= 0 {
		rounds = shortRounds
	}
	modes := []string{"sync", "async"}
	switch *flagMode {
	case "", "both":
	case "sync", "async", "quorum":
		modes = []string{*flagMode}
	default:
		t.Fatalf("-chaos.mode=%q: want sync, async, quorum or both", *flagMode)
	}
	kinds, err := ParseFaults(*flagFaults, *flagRoute)
	if err != nil {
		t.Fatalf("-chaos.faults: %v", err)
	}
	if *flagDR {
		kinds = StandbyMix(kinds)
	}
	wd, err := ParseWatchdogPolicy(*flagWD)
	if err != nil {
		t.Fatalf("-chaos.watchdog: %v", err)
	}
	if *flagNoWD {
		wd = WatchdogOff
	}
	actions, err := ParseActions(*flagActs)
	if err != nil {
		t.Fatalf("-chaos.actions: %v", err)
	}
	t.Logf("chaos: seed %d (rerun with -chaos.seed=%d), %d rounds per mode, modes %v, routing %v, standby %v", seed, seed, rounds, modes, *flagRoute, *flagDR)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			cfg := Config{Seed: seed, Rounds: rounds, Sync: mode != "async", Quorum: mode == "quorum", Kinds: kinds, Actions: actions,
				Cluster: Options{Nodes: *flagNodes, TTL: *flagTTL, KeepLogs: *flagKeep}, Watchdog: wd, Routing: *flagRoute, Standby: *flagDR}
			runAndCheck(t, cfg)
		})
	}
}

// runAndCheck runs cfg and fails the test, with the seed, the offending
// history slices and the fault timeline, if a checker fails.
func runAndCheck(t *testing.T, cfg Config) *Report {
	run := NewRun(t, cfg)
	rep := run.Finish(run.Rounds())
	summary := rep.Summary()
	t.Logf("\n%s", summary)
	if *flagReport != "" {
		suffix := rep.Mode
		if rep.Routing {
			suffix += "-routing"
		}
		path := strings.TrimSuffix(*flagReport, ".txt") + "-" + suffix + ".txt"
		text := summary
		if !rep.OK() {
			text += "\n" + rep.Failure()
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	if !rep.OK() {
		t.Errorf("\n%s", rep.Failure())
	}
	return rep
}
