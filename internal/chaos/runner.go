package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the run's waits: upper bounds on events, never sleeps.
const (
	bootstrapTimeout       = 180 * time.Second
	defaultRecoveryTimeout = 180 * time.Second
)

// Config is one chaos run.
type Config struct {
	Seed   uint64
	Rounds int
	Sync   bool
	// Quorum (with Sync): quorum commit instead of one named standby.
	Quorum bool
	// Kinds are the faults to draw from (default: all).
	Kinds []FaultKind
	// Actions are the operator actions to pair faults with (nil: all;
	// empty: none).
	Actions []ActionKind
	// MinHold and MaxHold bound how long a fault is held (default 3 s and
	// 2·ttl + 5 s: short faults must not fail over, long ones must).
	MinHold, MaxHold time.Duration
	// Cluster options (Sync and Watchdog are taken from here and from
	// the plan).
	Cluster Options
	// Watchdog says which rounds run with the emulated watchdog (default:
	// half of them).
	Watchdog WatchdogPolicy
	// RecoveryTimeout bounds each wait for recovery (default 180 s).
	RecoveryTimeout time.Duration
	// Routing: one PgBouncer in front of the cluster, driven by the
	// agents (Options.Routing); part of the writes go through it, the
	// routing kinds join the mix and CheckRouting judges every round.
	Routing bool
	// Standby runs a standby cluster following this one (standby.go).
	Standby bool
}

// Run is a chaos run in progress.
type Run struct {
	t     testing.TB
	cfg   Config
	rng   *rand.Rand
	clock *Clock
	log   *Timeline
	hist  *History
	c     *Cluster
	wl    *Workload
	lw    *LeaderWatch
	plans []RoundPlan
	dr    *standbyRun // nil without Config.Standby
	Start time.Time
}

// NewRun plans the rounds, starts the cluster, waits for it to bootstrap,
// creates the schema and starts the workload and the leader watch.
func NewRun(t testing.TB, cfg Config) *Run {
	t.Helper()
	cfg.Cluster.Sync = cfg.Sync
	cfg.Cluster.Quorum = cfg.Quorum
	cfg.Cluster.Routing = cfg.Routing
	cfg.Cluster = cfg.Cluster.withDefaults()
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = DefaultFaults()
	}
	if cfg.Actions == nil {
		cfg.Actions = AllActions()
	}
	if cfg.RecoveryTimeout <= 0 {
		cfg.RecoveryTimeout = defaultRecoveryTimeout
	}
	if cfg.MinHold <= 0 {
		cfg.MinHold = 3 * time.Second
	}
	if cfg.MaxHold <= cfg.MinHold {
		cfg.MaxHold = time.Duration(2*cfg.Cluster.TTL+5) * time.Second
	}
	r := &Run{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		clock: NewClock(), log: &Timeline{}, hist: &History{}, Start: time.Now()}
	if err := CheckKinds(cfg.Kinds, cfg.Routing); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if err := checkStandbyKinds(cfg.Kinds, cfg.Standby); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	// The plan has an rng of its own: the rounds' draws (targets, shaping,
	// action requests) do not shift it.
	plans, err := planRounds(rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)), schedule{
		Rounds: cfg.Rounds, Kinds: cfg.Kinds, Actions: cfg.Actions,
		MinHold: cfg.MinHold, MaxHold: cfg.MaxHold, Watchdog: cfg.Watchdog, Favor: cfg.favor()})
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	r.plans = plans
	r.log.Add(0, "seed %d, mode %s, %d rounds, faults %v, actions %v; clock zero is %s (UTC, for the logs)",
		cfg.Seed, cfg.modeName(), cfg.Rounds, cfg.Kinds, cfg.Actions, r.clock.start.UTC().Format("15:04:05.000"))
	r.log.Add(0, "plan: %s", planSummary(plans))
	cfg.Cluster.Watchdog = len(plans) == 0 || plans[0].Watchdog
	cfg.Cluster.Fence = len(plans) > 0 && fenced(plans[0].Kind)
	r.c = New(t, cfg.Cluster, r.clock, r.log)
	ctx := t.Context()
	leader, err := r.waitHealthy(ctx, bootstrapTimeout)
	if err != nil {
		r.fail("bootstrap: %v", err)
	}
	r.log.Add(r.clock.Now(), "bootstrapped: %s leads", leader.Name)
	if err := execSQL(ctx, leader, schemaSQL); err != nil {
		r.fail("create schema: %v", err)
	}
	if rt := r.c.Router(); rt != nil {
		if err := rt.Start(ctx, leader); err != nil {
			r.fail("start pgbouncer: %v", err)
		}
	}
	r.lw = r.c.WatchLeader(r.c.ctx)
	r.wl = StartWorkload(r.c.ctx, r.c.Nodes(), r.c.Router(), r.clock, r.hist, cfg.Seed)
	t.Cleanup(r.wl.Stop)
	if _, err := r.c.WaitRecovered(ctx, r.hist, r.clock.Now(), r.cfg.RecoveryTimeout); err != nil {
		r.fail("first writes: %v", err)
	}
	if cfg.Standby {
		r.startStandby(ctx)
	}
	return r
}

// planSummary is the plan in one line: which rounds run without the
// watchdog and which pair an action.
func planSummary(plans []RoundPlan) string {
	var off, acts []string
	for i, p := range plans {
		if !p.Watchdog {
			off = append(off, fmt.Sprint(i+1))
		}
		if p.Action != "" {
			acts = append(acts, fmt.Sprintf("%d:%s", i+1, p.Action))
		}
	}
	return fmt.Sprintf("rounds without the watchdog [%s]; actions [%s]", strings.Join(off, " "), strings.Join(acts, " "))
}

// favor: in routing mode the routing kinds, with a standby cluster the
// standby kinds, come up in a third of the rounds (schedule.Favor).
func (cfg Config) favor() []FaultKind {
	var out []FaultKind
	if cfg.Routing {
		out = append(out, RoutingFaults...)
	}
	if cfg.Standby {
		out = append(out, StandbyFaults...)
	}
	return out
}

func (cfg Config) modeName() string {
	switch {
	case cfg.Sync && cfg.Quorum:
		return "quorum"
	case cfg.Sync:
		return "sync"
	}
	return "async"
}

// waitHealthy polls checkHealthy (no write needed) until timeout.
func (r *Run) waitHealthy(ctx context.Context, timeout time.Duration) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		n, err := r.c.checkHealthy(cctx)
		ccancel()
		if err == nil {
			return n, nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not healthy within %s; last state: %w", timeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// Rounds runs the planned rounds and returns their records. A round that
// does not recover ends the run (the test fails with the seed, the
// timeline and the logs' location).
func (r *Run) Rounds() []*Round {
	var rounds []*Round
	for i, p := range r.plans {
		var rd *Round
		if fence := fenced(p.Kind); p.Watchdog != r.c.Watchdog() || fence != r.c.Fenced() {
			if err := r.switchConfig(r.t.Context(), p.Watchdog, fence, i+1); err != nil {
				rd = &Round{N: i + 1, Kind: p.Kind, Hold: p.Hold, Watchdog: p.Watchdog, Err: err}
			}
		}
		if rd == nil {
			rd = r.round(r.t.Context(), i+1, p)
		}
		rounds = append(rounds, rd)
		r.t.Logf("%s", rd)
		if rd.Err == nil && !r.standbyAfterRound(r.t.Context(), rd.N) {
			break // the standby cluster did not recover: each later check would wait its whole bound
		}
		if rd.Err != nil {
			break
		}
	}
	return rounds
}

// switchConfig restarts every agent with or without the watchdog and the
// fence hook, one at a time, replicas first, each time waiting until the
// cluster is whole again: a stopped agent stops its PostgreSQL (and a
// leader's releases the key), so only a rolling restart keeps a leader.
func (r *Run) switchConfig(ctx context.Context, watchdog, fence bool, round int) error {
	what := "with the watchdog"
	if !watchdog {
		what = "without the watchdog (default configuration)"
	}
	if fence {
		what += ", with the fence hook and fast_failover"
	}
	r.log.Add(r.clock.Now(), "before round %d: restarting every agent %s, replicas first", round, what)
	if err := r.c.SetAgentConfig(watchdog, fence); err != nil {
		return fmt.Errorf("switch config: %w", err)
	}
	leader, err := r.c.Leader(ctx)
	if err != nil {
		return fmt.Errorf("switch config: %w", err)
	}
	order := r.c.Others(leader)
	if n := r.c.Node(leader); n != nil {
		order = append(order, n)
	}
	for _, n := range order {
		since := r.clock.Now()
		if err := n.stop(agentStopTimeout); err != nil {
			return fmt.Errorf("switch config: stop %s: %w", n.Name, err)
		}
		if n.Name == leader {
			// The stopped leader released its key; it starts again once a
			// replica leads: a candidate with fence.command fences a former
			// leader whose member key no longer says "stopped" (a quick
			// restart), and the hook would kill the restarted agent.
			r.c.awaitLeaderBesides(ctx, n)
		}
		if err := n.Start(); err != nil {
			return fmt.Errorf("switch config: %w", err)
		}
		if _, err := r.c.WaitRecovered(ctx, r.hist, since, r.cfg.RecoveryTimeout); err != nil {
			return fmt.Errorf("switch config: after restarting %s: %w", n.Name, err)
		}
	}
	r.log.Add(r.clock.Now(), "every agent runs %s", what)
	return nil
}

// execSQL runs statements on a fresh superuser connection.
func execSQL(ctx context.Context, n *Node, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, n)
	if err != nil {
		return err
	}
	defer testcluster.CloseConn(ctx, conn)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("exec on %s: %w", n.Name, err)
	}
	return nil
}

// fail ends the test with the seed and the timeline.
func (r *Run) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("chaos: %s\nseed %d (rerun with -chaos.seed=%d)\ntimeline:\n%slogs: %s/logs",
		fmt.Sprintf(format, args...), r.cfg.Seed, r.cfg.Seed, r.log, r.c.Dir())
}
