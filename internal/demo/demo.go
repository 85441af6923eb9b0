package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/clusterlist"
	"github.com/regent-ha/regent/internal/etcdembed"
	"github.com/regent-ha/regent/internal/freeport"
)

// Options configures a demo run.
type Options struct {
	Nodes int
	Scope string
	// Agent is the regent binary the members run; it is copied into the
	// demo directory, where the postgres OS user can execute it.
	Agent  string
	BinDir string // PostgreSQL binaries
	// LogLevel is the agents' log level (default info).
	LogLevel string
	Stdout   io.Writer
	Logger   *slog.Logger
	// Routing adds one PgBouncer and one HAProxy in front of the
	// cluster, driven by every agent's routing: section (-routing).
	Routing bool
	// Ready, when set, is called with the cluster once it is healthy (tests).
	Ready func(*Cluster)
}

// Demo passwords: a throwaway local cluster, printed for the user.
const (
	SuperuserPassword   = "demo-super"
	ReplicationPassword = "demo-repl"
	healthyTimeout      = 90 * time.Second
)

// Run starts the cluster, waits until it is healthy, prints how to use it
// and blocks until ctx ends; then it tears everything down.
func Run(ctx context.Context, o Options) (err error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Scope == "" {
		o.Scope = "demo"
	}
	if o.BinDir == "" {
		o.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := start(ctx, o)
	if c != nil {
		defer func() { err = errors.Join(err, c.Close()) }()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "Waiting for 1 leader and %d streaming replicas …\n", o.Nodes-1)
	began := time.Now()
	if err := c.WaitHealthy(ctx, healthyTimeout); err != nil {
		c.dumpLogs(o.Stdout)
		return err
	}
	fmt.Fprintf(o.Stdout, "Healthy after %s.\n\n", time.Since(began).Round(100*time.Millisecond))
	view, err := c.client.Load(ctx)
	if err != nil {
		return err
	}
	if err := clusterlist.Render(o.Stdout, o.Scope, view); err != nil {
		return err
	}
	if c.Routers != nil {
		if err := c.startRouters(ctx); err != nil {
			c.Routers.dumpLogs(o.Stdout) // the directory goes on return
			return err
		}
	}
	c.printHelp(o.Stdout)
	if o.Ready != nil {
		o.Ready(c)
	}
	<-ctx.Done()
	fmt.Fprintln(o.Stdout, "\nStopping the demo cluster …")
	return nil
}

func start(ctx context.Context, o Options) (*Cluster, error) {
	owner, err := lookupRunAs()
	if err != nil {
		return nil, err
	}
	var routers *Routers
	if o.Routing { // before anything runs: a missing router is a clear error at once
		if routers, err = newRouters(); err != nil {
			return nil, err
		}
	}
	base, err := os.MkdirTemp("", "regent-demo-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: base, scope: o.Scope, logLevel: o.LogLevel, owner: owner, log: o.Logger, stdout: o.Stdout, Routers: routers}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := owner.prepareDir(base); err != nil {
		return c, err
	}
	if err := c.installBinary(o.Agent); err != nil {
		return c, err
	}
	if routers != nil {
		if err := routers.prepare(base, owner); err != nil {
			return c, err
		}
	}
	etcd, err := etcdembed.Start(ctx, etcdembed.Config{Name: "demo-etcd", Dir: filepath.Join(base, "etcd"), Logger: o.Logger})
	if err != nil {
		return c, fmt.Errorf("start embedded etcd: %w", err)
	}
	c.etcd = etcd
	c.client, err = dcs.Connect(ctx, dcs.Config{Endpoints: etcd.Endpoints(), DialTimeout: 3 * time.Second}, dcs.NewKeys("/service/", o.Scope), o.Logger)
	if err != nil {
		return c, fmt.Errorf("connect to embedded etcd: %w", err)
	}
	ports, err := freeport.PickN(2 * o.Nodes) // PostgreSQL's and the REST API's of each node
	if err != nil {
		return c, err
	}
	for i := 1; i <= o.Nodes; i++ {
		n, err := c.addNode(fmt.Sprintf("pg%d", i), o.BinDir, ports[2*i-2], ports[2*i-1])
		if err != nil {
			return c, err
		}
		if err := n.start(c.ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}
