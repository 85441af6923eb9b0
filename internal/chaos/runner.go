package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"
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
	// Kinds are the faults to draw from (default: all).
	Kinds []FaultKind
	// MinHold and MaxHold bound how long a fault is held (default 3 s and
	// 2·ttl + 5 s: short faults must not fail over, long ones must).
	MinHold, MaxHold time.Duration
	// Cluster options (Sync is taken from above).
	Cluster Options
	// NoWatchdog turns the emulated watchdog off.
	NoWatchdog bool
	// RecoveryTimeout bounds each wait for recovery (default 180 s).
	RecoveryTimeout time.Duration
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
	specs []*faultSpec
	Start time.Time
}

// NewRun starts the cluster, waits for it to bootstrap, creates the
// schema and starts the workload and the leader watch.
func NewRun(t testing.TB, cfg Config) *Run {
	t.Helper()
	cfg.Cluster.Sync = cfg.Sync
	cfg.Cluster = cfg.Cluster.withDefaults()
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = AllFaults()
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
	for _, k := range cfg.Kinds {
		s, err := specOf(k)
		if err != nil {
			t.Fatalf("chaos: %v", err)
		}
		r.specs = append(r.specs, s)
	}
	r.log.Add(0, "seed %d, mode %s, %d rounds, faults %v; clock zero is %s (UTC, for the logs)",
		cfg.Seed, modeName(cfg.Sync), cfg.Rounds, cfg.Kinds, r.clock.start.UTC().Format("15:04:05.000"))
	cfg.Cluster.Watchdog = !cfg.NoWatchdog
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
	r.lw = r.c.WatchLeader(r.c.ctx)
	r.wl = StartWorkload(r.c.ctx, r.c.Nodes(), r.clock, r.hist, cfg.Seed)
	t.Cleanup(r.wl.Stop)
	if _, err := r.c.WaitRecovered(ctx, r.hist, r.clock.Now(), r.cfg.RecoveryTimeout); err != nil {
		r.fail("first writes: %v", err)
	}
	return r
}

func modeName(sync bool) string {
	if sync {
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

// Rounds runs the configured number of rounds and returns their records.
// A round that does not recover ends the run (the test fails with the
// seed, the timeline and the logs' location).
func (r *Run) Rounds() []*Round {
	var rounds []*Round
	for i := 1; i <= r.cfg.Rounds; i++ {
		rd := r.round(r.t.Context(), i)
		rounds = append(rounds, rd)
		r.t.Logf("%s", rd)
		if rd.Err != nil {
			break
		}
	}
	return rounds
}

// round injects one fault, holds it, heals it and waits for recovery.
func (r *Run) round(ctx context.Context, n int) *Round {
	r.wl.SetKey(int64(n))
	spec := r.specs[r.rng.IntN(len(r.specs))]
	hold := r.cfg.MinHold + time.Duration(r.rng.Int64N(int64(r.cfg.MaxHold-r.cfg.MinHold)))
	rd := &Round{N: n, Kind: spec.kind, Hold: hold}
	name, err := r.c.Leader(ctx)
	primary := r.c.Node(name)
	if err != nil || primary == nil {
		rd.Err = fmt.Errorf("no leader before the round: %v", err)
		return rd
	}
	rd.LeaderBefore = name
	f := r.c.newFault(spec, primary, r.rng)
	if err := r.inject(ctx, f, rd); err != nil {
		rd.Err = err
		return rd
	}
	if err := r.hold(ctx, f, rd); err != nil {
		rd.Err = err
		return rd
	}
	rd.Heal = r.clock.Now()
	if err := spec.heal(ctx, f); err != nil {
		rd.Err = fmt.Errorf("heal %s: %w", spec.kind, err)
		return rd
	}
	r.log.Add(rd.Heal, "round %d: healed %s", n, spec.kind)
	leader, err := r.c.WaitRecovered(ctx, r.hist, rd.Heal, r.cfg.RecoveryTimeout)
	rd.Recovered = r.clock.Now()
	if err != nil {
		rd.Err = fmt.Errorf("recovery: %w", err)
		r.log.Add(rd.Recovered, "round %d: NOT RECOVERED: %v", n, err)
	} else {
		rd.LeaderAfter = leader.Name
		r.log.Add(rd.Recovered, "round %d: recovered, %s leads", n, leader.Name)
	}
	rd.measure(r.hist.Ops(), r.lw.Between(rd.Inject, rd.Recovered))
	return rd
}

// inject injects f, sampling the primary's lease at etcd just before and
// just after when the kind calls for the lease check. A failed injection
// is healed at once.
func (r *Run) inject(ctx context.Context, f *fault, rd *Round) error {
	primary := r.c.Node(rd.LeaderBefore)
	var lease *LeaseCheck
	if f.spec.leaseCheck {
		lease = &LeaseCheck{Node: primary.Name}
		lease.AgentDeadline, lease.Timeline = r.c.agentDeadline(ctx, primary)
		if b, holder := r.c.etcdLeaseBound(ctx); holder == primary.Name {
			lease.Bound = b
		}
	}
	rd.Inject = r.clock.Now()
	err := f.spec.inject(ctx, f)
	rd.Target = f.Target()
	r.log.Add(rd.Inject, "round %d: inject %s on %s (hold %s)", rd.N, f.spec.kind, rd.Target, rd.Hold.Round(time.Millisecond))
	if err != nil {
		err = fmt.Errorf("inject %s: %w", f.spec.kind, err)
		if herr := f.spec.heal(ctx, f); herr != nil {
			err = fmt.Errorf("%w (and heal: %v)", err, herr)
		}
		return err
	}
	if lease != nil {
		if b, holder := r.c.etcdLeaseBound(ctx); holder == primary.Name {
			lease.Bound = max(lease.Bound, b)
		}
		rd.Lease = lease
	}
	return nil
}

// hold keeps the fault for rd.Hold. If the fault stopped the primary's
// agent while its watchdog was armed, the node is reset when the device
// would fire (its last keepalive plus its timeout, read from the journal
// the stopped agent can no longer write), if the fault still holds then.
func (r *Run) hold(ctx context.Context, f *fault, rd *Round) error {
	end := rd.Inject + rd.Hold
	wd, why := time.Duration(-1), ""
	if f.spec.stopsAgent && !r.cfg.NoWatchdog {
		wd, why = r.deviceDeadline(f.node)
	}
	for {
		now := r.clock.Now()
		if wd >= 0 && !f.reset && now >= wd && now < end {
			f.reset, rd.WatchdogReset = true, true
			r.log.Add(now, "round %d: emulated watchdog resets %s (%s)", rd.N, f.node.Name, why)
			if err := f.node.Kill(); err != nil {
				return fmt.Errorf("watchdog reset of %s: %w", f.node.Name, err)
			}
			continue
		}
		next := end
		if wd >= 0 && !f.reset && wd < next {
			next = wd
		}
		if now >= end {
			return nil
		}
		select { // holding the fault is the experiment, not a wait for an event
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(next - now):
		}
	}
}

// deviceDeadline returns when n's watchdog device would fire, on the run's
// clock, and why; -1 when it is not armed (a replica, or an agent that
// fenced and disarmed). Unreadable journals are a harness failure.
func (r *Run) deviceDeadline(n *Node) (time.Duration, string) {
	sessions, err := fencing.ReadJournal(n.JournalPath())
	if errors.Is(err, fs.ErrNotExist) {
		return -1, "" // never armed
	}
	if err != nil {
		r.fail("watchdog journal of %s: %v", n.Name, err)
	}
	if len(sessions) == 0 || !sessions[len(sessions)-1].Armed() {
		return -1, ""
	}
	s := sessions[len(sessions)-1]
	at := r.clock.Now() + time.Until(s.Deadline())
	return at, fmt.Sprintf("device armed, last keepalive at %s + timeout %s", fmtDur(at-s.Timeout), s.Timeout)
}

// execSQL runs statements on a fresh superuser connection.
func execSQL(ctx context.Context, n *Node, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, n)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
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
