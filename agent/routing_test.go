package agent

import (
	"context"
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
