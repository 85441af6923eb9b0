package routing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Console runs one command on a PgBouncer admin console; *PgxConsole
// implements it.
type Console interface {
	Exec(ctx context.Context, admin, command string) error
}

// RuntimeAPI sends one command to an HAProxy admin socket and returns its
// answer; *SocketAPI implements it.
type RuntimeAPI interface {
	Send(ctx context.Context, socket, command string) (string, error)
}

// Commander runs a hook; *ExecCommander implements it.
type Commander interface {
	Run(ctx context.Context, argv, env []string) error
}

// Runner executes actions against the configured routers. It holds no
// state between calls, so calls for different points may overlap.
//
// Run blocks for up to the sum of the actions' timeouts: the agent calls
// it beside its HA loop, never inside a tick.
type Runner struct {
	Config    Config
	Scope     string
	Console   Console
	API       RuntimeAPI
	Commander Commander
	// WriteFile replaces a file atomically (WriteFileAtomic).
	WriteFile func(path string, data []byte) error
	// Now stamps the include file; time.Now when nil.
	Now func() time.Time
}

// NewRunner returns a Runner over the real integrations.
func NewRunner(c Config, scope string) *Runner {
	return &Runner{Config: c, Scope: scope, Console: PgxConsole{}, API: SocketAPI{}, Commander: ExecCommander{}, WriteFile: WriteFileAtomic}
}

// Run executes actions in order, each bounded by its own timeout (and by
// ctx), and returns one Result per action. A failed action does not stop
// the later ones: at repoint every router that can be pointed at the new
// primary should be, and the caller decides (SeverityOf) what a failure
// means.
func (r *Runner) Run(ctx context.Context, p Point, t Target, actions []Action) []Result {
	out := make([]Result, 0, len(actions))
	for _, a := range actions {
		start := time.Now()
		err := r.run(ctx, p, t, a)
		out = append(out, Result{Action: a, Desc: a.Describe(r.Config), Took: time.Since(start), Err: err})
	}
	return out
}

func (r *Runner) run(ctx context.Context, p Point, t Target, a Action) error {
	switch a.Kind {
	case PgBouncerPause:
		pb := r.Config.PgBouncer[a.Index]
		return r.pgbouncer(ctx, pb, pb.PauseTimeout, "PAUSE", false)
	case PgBouncerResume:
		pb := r.Config.PgBouncer[a.Index]
		return r.pgbouncer(ctx, pb, pb.Timeout, "RESUME", true)
	case PgBouncerRepoint:
		return r.repoint(ctx, r.Config.PgBouncer[a.Index], p, t)
	case HAProxyReady:
		h := r.Config.HAProxy[a.Index]
		ref := h.Backend + "/" + h.server(a.Member)
		// state ready lifts a drain or maint; health up makes HAProxy use
		// the server at once instead of after its next passing check.
		return r.haproxy(ctx, h, "set server "+ref+" state ready", "set server "+ref+" health up")
	case HAProxyDrain:
		h := r.Config.HAProxy[a.Index]
		ref := h.Backend + "/" + h.server(a.Member)
		return r.haproxy(ctx, h, "set server "+ref+" state drain", "shutdown sessions server "+ref)
	case HAProxyHold:
		h := r.Config.HAProxy[a.Index]
		return r.haproxy(ctx, h, "set server "+h.Backend+"/"+h.server(a.Member)+" state drain")
	case Hook:
		return r.hook(ctx, p, t)
	}
	return fmt.Errorf("unknown action %d", a.Kind)
}

// pgbouncer sends verb for each database, all within timeout.
func (r *Runner) pgbouncer(ctx context.Context, pb PgBouncer, timeout time.Duration, verb string, notPausedOK bool) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, db := range pb.Databases {
		err := r.Console.Exec(cctx, pb.Admin, verb+" "+db)
		if err != nil && notPausedOK && isNotPaused(err) {
			continue // RESUME of a database that is not paused: nothing to undo
		}
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("database %s: no answer within %s: %w", db, timeout, err)
			}
			return fmt.Errorf("database %s: %w", db, err)
		}
	}
	return nil
}

// isNotPaused: PgBouncer refuses RESUME of a database that is not paused.
func isNotPaused(err error) bool {
	return strings.Contains(err.Error(), "not paused")
}

// repoint writes the include file naming the leader, RELOADs (PgBouncer
// closes server connections whose database's connect string changed once
// they are released; after a PAUSE there are none) and RESUMEs.
func (r *Runner) repoint(ctx context.Context, pb PgBouncer, p Point, t Target) error {
	if err := r.WriteFile(pb.IncludeFile, IncludeFile(pb, p, t, r.now())); err != nil {
		return fmt.Errorf("write %s: %w", pb.IncludeFile, err)
	}
	cctx, cancel := context.WithTimeout(ctx, pb.Timeout)
	err := r.Console.Exec(cctx, pb.Admin, "RELOAD")
	cancel()
	if err != nil {
		return fmt.Errorf("RELOAD: %w", err)
	}
	return r.pgbouncer(ctx, pb, pb.Timeout, "RESUME", true)
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// IncludeFile is the text of pb's include file pointing at t; pure.
func IncludeFile(pb PgBouncer, p Point, t Target, at time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "; Written by Regent at %s (%s): the primary is %s. Do not edit.\n", at.UTC().Format(time.RFC3339), p, t.Leader)
	b.WriteString("[databases]\n")
	for _, db := range pb.Databases {
		fmt.Fprintf(&b, "%s = host=%s port=%d dbname=%s", db, t.Host, t.Port, db)
		if pb.ConnectOptions != "" {
			b.WriteString(" " + pb.ConnectOptions)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// haproxy sends each command; any answer other than an empty one is an
// error (HAProxy answers successful state changes with nothing).
func (r *Runner) haproxy(ctx context.Context, h HAProxy, commands ...string) error {
	cctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	for _, c := range commands {
		answer, err := r.API.Send(cctx, h.Socket, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		// A server without checks refuses `health up`: it is used anyway.
		if a := strings.TrimSpace(answer); a != "" && !strings.Contains(a, "checks are not enabled") {
			return fmt.Errorf("%s: %w: %s", c, ErrRefused, a)
		}
	}
	return nil
}

// ErrRefused: a router answered a command with an error.
var ErrRefused = errors.New("refused")

// hook runs the point's command with the target in its environment.
func (r *Runner) hook(ctx context.Context, p Point, t Target) error {
	argv := r.Config.Hooks.argv(p)
	cctx, cancel := context.WithTimeout(ctx, r.Config.Hooks.Timeout)
	defer cancel()
	env := []string{
		"REGENT_ROUTING_POINT=" + string(p), "REGENT_SCOPE=" + r.Scope, "REGENT_SWITCHOVER_ID=" + t.Switchover,
		"REGENT_LEADER=" + t.Leader, "REGENT_LEADER_HOST=" + t.Host, "REGENT_LEADER_PORT=" + strconv.Itoa(t.Port),
	}
	if err := r.Commander.Run(cctx, argv, env); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: killed at its timeout %s", argv[0], r.Config.Hooks.Timeout)
		}
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	return nil
}
