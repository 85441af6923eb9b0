package agent

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/routing"
	"github.com/regent-ha/regent/switchover"
)

// holdingConsole is a PgBouncer admin console whose PAUSE is held by a
// long transaction: it answers only when the caller's context ends.
type holdingConsole struct {
	mu  sync.Mutex
	got []string
}

func (c *holdingConsole) Exec(ctx context.Context, _, command string) error {
	c.mu.Lock()
	c.got = append(c.got, command)
	c.mu.Unlock()
	if strings.HasPrefix(command, "PAUSE") {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (c *holdingConsole) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// awaitRouting waits (bounded) for the routing work beside the loop and
// finishes it in the test goroutine, as waitNextTick does.
func awaitRouting(t *testing.T, a *Agent) {
	t.Helper()
	j := a.routingJob
	if j == nil {
		t.Fatal("no routing work beside the loop")
	}
	select {
	case err := <-j.done:
		a.endJob(j, err)
	case <-time.After(5 * time.Second):
		t.Fatal("routing work still running after 5s")
	}
}

// TestRoutingPauseTimeoutAbortsBeforeQuiesce: a PAUSE held past its
// timeout ends the switchover in PRE_FLIGHT_CHECKS, failed; PostgreSQL is
// neither stopped nor restarted (it stays the writable primary), and the
// poolers are resumed. The pause runs beside the loop: the step that
// starts it returns at once.
func TestRoutingPauseTimeoutAbortsBeforeQuiesce(t *testing.T) {
	h := newLeaderHarness(t)
	store, ctx := h.dcs, t.Context()
	addPeer(t, store, "pg2", dcs.Member{ConnURL: "postgres://127.0.0.1:5433/postgres", APIURL: "http://127.0.0.1:8009/patroni", State: "running"})
	console := &holdingConsole{}
	cfg := routing.Config{PgBouncer: []routing.PgBouncer{{Admin: "x", Databases: []string{"app"}, IncludeFile: "/nonexistent/db.ini", PauseTimeout: 50 * time.Millisecond}}}
	cfg.SetDefaults()
	h.agent.router = &routing.Runner{Config: cfg, Console: console}
	rec := switchover.Record{ID: "s1", From: h.agent.name, To: "pg2", CreatedAt: time.Now(), Timeout: "30s", State: switchover.StateRunning}
	rec.Append(switchover.StagePreFlight, switchover.KindStarted, "checking")
	rec.Append(switchover.StagePreFlight, switchover.KindCompleted, "candidate pg2 qualifies")
	putSwitchover(t, store, rec)
	opsBefore := len(h.pg.Ops())

	start := time.Now()
	h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone))
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the pause step held the loop for %s", took)
	}
	awaitRouting(t, h.agent)
	h.agent.driveSwitchover(ctx, h.agent.observe(ctx, RestartNone)) // fails before promote, resumes
	awaitRouting(t, h.agent)

	got := getSwitchover(t, store, "s1")
	if got.State != switchover.StateFailed || got.Stage != switchover.StagePreFlight || got.Failure == nil || !strings.Contains(got.Failure.Reason, "no answer within 50ms") {
		t.Fatalf("record %s at %s (failure %+v), want failed at PRE_FLIGHT_CHECKS naming the PAUSE timeout", got.State, got.Stage, got.Failure)
	}
	if ops := h.pg.Ops()[opsBefore:]; slices.ContainsFunc(ops, func(op string) bool { return strings.HasPrefix(op, "stop") || op == "start" }) {
		t.Errorf("PostgreSQL was touched by a switchover that never quiesced: %v", ops)
	}
	if !h.pg.Writable() || !h.agent.lease.leading {
		t.Errorf("the old primary must stay the writable leader: writable %t, leading %t", h.pg.Writable(), h.agent.lease.leading)
	}
	if cmds := console.commands(); !slices.Equal(cmds, []string{"PAUSE app", "RESUME app"}) {
		t.Errorf("admin commands %v, want PAUSE then RESUME", cmds)
	}
	var kinds []switchover.Kind
	for _, e := range got.Events {
		if strings.HasPrefix(e.Message, "routing ") {
			kinds = append(kinds, e.Kind)
		}
	}
	if !slices.Equal(kinds, []switchover.Kind{switchover.KindWarning, switchover.KindInfo}) {
		t.Errorf("routing events %v, want the pause's warning and the restore's info: %+v", kinds, got.Events)
	}
}

// downConsole is a PgBouncer admin console that cannot be reached until
// up is set: every command fails.
type downConsole struct {
	mu  sync.Mutex
	up  bool
	got []string
}

func (c *downConsole) Exec(_ context.Context, _, command string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, command)
	if !c.up {
		return errors.New("connect to the admin console: connection refused")
	}
	return nil
}

func (c *downConsole) set(up bool) {
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
}

func (c *downConsole) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// TestRoutingFailedRepointIsRetriedWhileLeading: a failover repoint that
// cannot reach PgBouncer (the chaos suite's pgbouncer-cut-candidate left
// it paused on the old primary for good) is owed: the steady leader runs
// the failed PgBouncer action again every routingRetryInterval until it
// succeeds, and then no more. Nothing is retried before the interval.
func TestRoutingFailedRepointIsRetriedWhileLeading(t *testing.T) {
	h := newLeaderHarness(t)
	dir := t.TempDir()
	console := &downConsole{}
	cfg := routing.Config{PgBouncer: []routing.PgBouncer{{Admin: "x", Databases: []string{"app"}, IncludeFile: filepath.Join(dir, "db.ini")}}}
	cfg.SetDefaults()
	h.agent.router = &routing.Runner{Config: cfg, Console: console, WriteFile: routing.WriteFileAtomic}
	ctx := t.Context()

	h.agent.repointRouting(ctx, "", false) // the failover repoint, at promotion
	awaitRouting(t, h.agent)
	if n := len(console.commands()); n != 1 {
		t.Fatalf("admin commands %v, want the one failed RELOAD", console.commands())
	}
	h.tick() // before the interval: not yet
	if h.agent.routingJob != nil {
		t.Fatal("retried before routingRetryInterval")
	}
	h.advance(routingRetryInterval)
	h.tick() // still unreachable: retried, fails again
	awaitRouting(t, h.agent)
	if got := console.commands(); len(got) != 2 || got[1] != "RELOAD" {
		t.Fatalf("admin commands %v, want a second RELOAD", got)
	}
	console.set(true)
	h.advance(routingRetryInterval)
	h.tick()
	awaitRouting(t, h.agent)
	if got := console.commands(); !slices.Equal(got[2:], []string{"RELOAD", "RESUME app"}) {
		t.Fatalf("admin commands %v, want RELOAD and RESUME once reachable", got)
	}
	h.advance(routingRetryInterval)
	h.tick()
	if h.agent.routingJob != nil {
		t.Fatal("retried after the repoint succeeded")
	}
}

// TestRoutingDebt: which routing failures a leader owes, and when it runs
// them again.
func TestRoutingDebt(t *testing.T) {
	now := time.Unix(1000, 0)
	fail := errors.New("unreachable")
	repoint := routing.Action{Kind: routing.PgBouncerRepoint}
	resume := routing.Action{Kind: routing.PgBouncerResume}
	ready := routing.Action{Kind: routing.HAProxyReady}
	hook := routing.Action{Kind: routing.Hook}
	pause := routing.Action{Kind: routing.PgBouncerPause}
	owed := routingDebt{point: routing.PointFailover, actions: []routing.Action{repoint}, due: now.Add(time.Second)}
	for _, tc := range []struct {
		name    string
		before  routingDebt
		p       routing.Point
		results []routing.Result
		want    []routing.Action
	}{
		{"a failed PgBouncer repoint is owed", routingDebt{}, routing.PointRepoint,
			[]routing.Result{{Action: ready}, {Action: repoint, Err: fail}}, []routing.Action{repoint}},
		{"a failed RESUME at restore is owed", routingDebt{}, routing.PointRestore,
			[]routing.Result{{Action: resume, Err: fail}}, []routing.Action{resume}},
		{"HAProxy and hooks are not (health checks, the hook's own retries)", routingDebt{}, routing.PointFailover,
			[]routing.Result{{Action: ready, Err: fail}, {Action: repoint}, {Action: hook, Err: fail}}, nil},
		{"success pays the debt", owed, routing.PointFailover, []routing.Result{{Action: repoint}}, nil},
		{"a failed pause aborts the switchover, the restore follows", routingDebt{}, routing.PointPause,
			[]routing.Result{{Action: pause, Err: fail}}, nil},
		{"a pause leaves the debt as it was", owed, routing.PointPause, []routing.Result{{Action: pause}}, owed.actions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.before.after(tc.p, tc.results, now)
			if !slices.Equal(got.actions, tc.want) {
				t.Fatalf("after = %+v, want actions %v", got, tc.want)
			}
			if len(tc.want) > 0 && tc.p != routing.PointPause && !got.due.Equal(now.Add(routingRetryInterval)) {
				t.Errorf("due %v, want now + %s", got.due, routingRetryInterval)
			}
		})
	}
	for _, tc := range []struct {
		name               string
		d                  routingDebt
		at                 time.Time
		busy, switchingNow bool
		want               bool
	}{
		{"nothing owed", routingDebt{}, now.Add(time.Hour), false, false, false},
		{"not due yet", owed, now, false, false, false},
		{"due", owed, now.Add(time.Second), false, false, true},
		{"routing work runs", owed, now.Add(time.Second), true, false, false},
		{"a switchover drives routing itself", owed, now.Add(time.Second), false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.dueAt(tc.at, tc.busy, tc.switchingNow); got != tc.want {
				t.Errorf("dueAt = %v, want %v", got, tc.want)
			}
		})
	}
}
