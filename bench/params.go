package bench

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Profile is a set of HA timings (seconds, as in bootstrap.dcs and
// watchdog.safety_margin).
type Profile struct {
	Name         string `json:"name"`
	TTL          int    `json:"ttl_s"`
	LoopWait     int    `json:"loop_wait_s"`
	RetryTimeout int    `json:"retry_timeout_s"`
	SafetyMargin int    `json:"safety_margin_s"`
}

// DefaultProfile is Regent's default timings.
var DefaultProfile = Profile{Name: "default", TTL: 10, LoopWait: 1, RetryTimeout: 3, SafetyMargin: 3}

// FastProfile is the tightest timings the config rules accept with a
// one-second loop: loop_wait + 2·retry_timeout = 5 ≤ ttl, safety_margin =
// loop_wait + 1 s < ttl − loop_wait.
var FastProfile = Profile{Name: "fast", TTL: 5, LoopWait: 1, RetryTimeout: 2, SafetyMargin: 2}

// SlowLoopProfile is the default timings with a two-second loop: the
// switchover repeats at it to show its write gap does not follow
// loop_wait (every hand-over is event-driven).
var SlowLoopProfile = Profile{Name: "loop_wait_2", TTL: 10, LoopWait: 2, RetryTimeout: 3, SafetyMargin: 3}

func (p Profile) String() string {
	return fmt.Sprintf("ttl %d s, loop_wait %d s, retry_timeout %d s, safety_margin %d s",
		p.TTL, p.LoopWait, p.RetryTimeout, p.SafetyMargin)
}

// Check runs the agent's own config validation on a config with these
// timings, so a profile the agent would refuse fails before any cluster
// starts, naming the broken rule.
func (p Profile) Check() error {
	if _, err := p.AgentConfig("pg1", "bench", "http://127.0.0.1:2379"); err != nil {
		return fmt.Errorf("profile %s (%s): %w", p.Name, p, err)
	}
	return nil
}

// AgentConfig is a minimal, validated agent config with these timings.
// Its PostgreSQL and REST sections are placeholders (the fake-PostgreSQL
// agents of the scale measurement use neither), but validation wants the
// PostgreSQL binaries to exist: the real ones are used.
func (p Profile) AgentConfig(name, scope, etcdURL string) (*config.Config, error) {
	binDir, err := testcluster.PGBinDir() // where the test harness finds them
	if err != nil {
		return nil, err
	}
	yml := fmt.Sprintf(`name: %s
scope: %s
etcd: {endpoints: [%q]}
restapi: {listen: "127.0.0.1:8008", connect_address: "127.0.0.1:8008"}
postgres:
  data_dir: /nonexistent
  bin_dir: %q
  listen: "127.0.0.1:5432"
  connect_address: "127.0.0.1:5432"
  superuser: {username: postgres, password: x}
  replication: {username: replicator, password: y}
watchdog: {mode: "off", safety_margin: %ds}
log: {level: warn}
bootstrap:
  dcs: {ttl: %d, loop_wait: %d, retry_timeout: %d}
`, name, scope, etcdURL, binDir, p.SafetyMargin, p.TTL, p.LoopWait, p.RetryTimeout)
	return config.Parse([]byte(yml))
}

// Params size a run. Repetition counts of 0 skip that measurement. In
// JSON, durations are Go duration strings (see MarshalJSON).
type Params struct {
	// Main runs every measurement of a real cluster; Fast, when set,
	// repeats the host-death measurement at other timings.
	Main Profile  `json:"main_profile"`
	Fast *Profile `json:"fast_profile,omitempty"`
	// SwitchoverAlso, when set, repeats the switchover measurement (on a
	// cluster of its own) at other timings.
	SwitchoverAlso *Profile `json:"switchover_also_profile,omitempty"`

	// FenceFast, when set, repeats host death FenceFastReps times on a
	// cluster of its own with the fence fast path (KindHostDeathFenced).
	FenceFast     *Profile `json:"fence_fast_profile,omitempty"`
	FenceFastReps int      `json:"fence_fast_reps"`

	// FalseFailover lists the profiles of the false-failover runs: each a
	// cluster of its own, kept busy (pgbench at full speed with
	// PgbenchClients clients on the primary, EtcdBusyWriters goroutines
	// writing etcd as fast as it answers) and otherwise left alone for
	// FalseFailoverWindow: every leader change is one nobody asked for.
	FalseFailover       []Profile     `json:"false_failover_profiles,omitempty"`
	FalseFailoverWindow time.Duration `json:"-"`
	PgbenchClients      int           `json:"pgbench_clients"`
	EtcdBusyWriters     int           `json:"etcd_busy_writers"`

	HostDeathReps  int `json:"host_death_reps"`
	FrozenReps     int `json:"frozen_reps"`
	CrashReps      int `json:"postgres_crash_reps"`
	SwitchoverReps int `json:"switchover_reps"`

	// REST load: RESTReps runs of RESTDuration with RESTConns keep-alive
	// connections, GET RESTPath on the leader.
	RESTReps     int           `json:"rest_reps"`
	RESTDuration time.Duration `json:"-"`
	RESTConns    int           `json:"rest_conns"`

	// Warmup is how long a freshly healthy cluster runs before an idle
	// window starts; IdleWindow is the footprint and etcd load window
	// (0 skips it).
	Warmup     time.Duration `json:"-"`
	IdleWindow time.Duration `json:"-"`

	// ScaleClusters lists the cluster counts of the etcd scale
	// measurement (each 3 in-process agents with a fake PostgreSQL);
	// ScaleWindow is the window at each count. Empty skips it.
	ScaleClusters []int         `json:"scale_clusters"`
	ScaleWindow   time.Duration `json:"-"`
	// Scale runs the scale measurement: bench/scale.Run, which links the
	// agent (this package does not, so a client's dependencies stay
	// free of it). Unset, the scale step fails, naming it.
	Scale ScaleFunc `json:"-"`

	// Progress, when set, receives a line per step and repetition.
	Progress io.Writer `json:"-"`
}

// ScaleFunc measures etcd's load per node for each cluster count (3
// agents each) at prof's timings, each point over window; say reports
// progress. It fails t on an error.
type ScaleFunc func(t *testing.T, prof Profile, counts []int, window time.Duration, say func(format string, args ...any)) []EtcdLoad

// DefaultParams is what `make bench` runs: about 75 minutes on 2 cores
// (the two 30-minute false-failover windows; the rest about 15, up to 18
// when a thawed host's rejoin stalls for pg_ctl's minute: it sometimes
// does, see the report's "victim back" column).
func DefaultParams() Params {
	fast, slow, fenced := FastProfile, SlowLoopProfile, FenceFastProfile
	return Params{
		Main: DefaultProfile, Fast: &fast, SwitchoverAlso: &slow,
		FenceFast: &fenced, FenceFastReps: 10,
		FalseFailover: []Profile{FastProfile, DefaultProfile}, FalseFailoverWindow: 30 * time.Minute,
		PgbenchClients: 4, EtcdBusyWriters: 4,
		HostDeathReps: 7, FrozenReps: 3, CrashReps: 5, SwitchoverReps: 10,
		RESTReps: 3, RESTDuration: 10 * time.Second, RESTConns: 32,
		Warmup: 10 * time.Second, IdleWindow: 60 * time.Second,
		ScaleClusters: []int{1, 10, 25, 50}, ScaleWindow: 30 * time.Second,
	}
}

// SmokeParams runs every measurement once, briefly, at the fast timings:
// enough to exercise all the code, not to measure anything.
func SmokeParams() Params {
	fenced := FastProfile
	fenced.Name = FenceFastProfile.Name
	return Params{
		Main:      FastProfile,
		FenceFast: &fenced, FenceFastReps: 1,
		HostDeathReps: 1, FrozenReps: 1, CrashReps: 1, SwitchoverReps: 1,
		RESTReps: 1, RESTDuration: time.Second, RESTConns: 4,
		Warmup: 0, IdleWindow: 2 * time.Second,
		ScaleClusters: []int{1, 2}, ScaleWindow: 2 * time.Second,
		FalseFailover: []Profile{FastProfile}, FalseFailoverWindow: 5 * time.Second,
		PgbenchClients: 2, EtcdBusyWriters: 2,
	}
}

// Validate checks the parameters and the profiles' timings.
func (p Params) Validate() error {
	errs := []error{p.Main.Check()}
	for _, prof := range []*Profile{p.Fast, p.SwitchoverAlso, p.FenceFast} {
		if prof != nil {
			errs = append(errs, prof.Check())
		}
	}
	for _, prof := range p.FalseFailover {
		errs = append(errs, prof.Check())
	}
	if len(p.FalseFailover) > 0 && (p.FalseFailoverWindow <= 0 || p.PgbenchClients <= 0 || p.EtcdBusyWriters < 0) {
		errs = append(errs, errors.New("false_failover: the window and pgbench clients must be positive, etcd writers not negative"))
	}
	for name, n := range map[string]int{"host_death_reps": p.HostDeathReps, "frozen_reps": p.FrozenReps,
		"postgres_crash_reps": p.CrashReps, "switchover_reps": p.SwitchoverReps, "rest_reps": p.RESTReps,
		"fence_fast_reps": p.FenceFastReps} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", name, n))
		}
	}
	if p.RESTReps > 0 && (p.RESTDuration <= 0 || p.RESTConns <= 0) {
		errs = append(errs, errors.New("rest: duration and connections must be positive"))
	}
	if p.IdleWindow < 0 {
		errs = append(errs, errors.New("idle_window: must not be negative"))
	}
	for _, n := range p.ScaleClusters {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("scale_clusters: %d is not positive", n))
		}
	}
	if len(p.ScaleClusters) > 0 && p.ScaleWindow <= 0 {
		errs = append(errs, errors.New("scale_window: must be positive"))
	}
	return errors.Join(errs...)
}
