package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/routerproc"
	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/routing"
)

// Routing mode (Options.Routing, -chaos.routing): one PgBouncer in front
// of the cluster, in a network namespace of its own (so the partition
// faults can cut it from a node), every agent's routing: section naming
// it. Its include file lies in a directory every namespace sees (they
// share the file system), as a shared file system would in production.
const (
	// routerOctet is the PgBouncer namespace's host number.
	routerOctet = 30
	// routerPort is PgBouncer's port (clients and the admin console).
	routerPort = 16432
	// routedDatabase is the [databases] entry the agents pause and
	// repoint; it points at the primary's database of the same name.
	routedDatabase = "postgres"
	// routerStartTimeout bounds the first query through PgBouncer.
	routerStartTimeout = 30 * time.Second
)

// Router is the routing mode's PgBouncer (transaction pooling, trust
// authentication on the private test network).
type Router struct {
	Host *netns.Host
	Dir  string
	c    *Cluster
	bin  string
	run  proc.Handle
}

// newRouter creates the namespace and the directory (owned by the agents'
// user: they write the include file); Start runs PgBouncer.
func (c *Cluster) newRouter() (*Router, error) {
	bin, err := routerproc.Find("pgbouncer")
	if err != nil {
		return nil, fmt.Errorf("routing mode: %w", err)
	}
	h, err := c.net.AddHost(c.ctx, "pgb", routerOctet)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.base, "pgbouncer")
	if err := c.user.MkdirOwned(dir); err != nil {
		return nil, err
	}
	r := &Router{Host: h, Dir: dir, c: c, bin: bin,
		run: proc.Handle{Name: "pgbouncer", Launch: proc.Netns(h.Path), Log: filepath.Join(c.base, "logs", "pgbouncer.log")}}
	return r, nil
}

// settings are PgBouncer's: listening on its namespace's address.
func (r *Router) settings() routerproc.PgBouncer {
	return routerproc.PgBouncer{ListenAddr: r.Host.IP, Port: routerPort, Dir: r.Dir, AdminUser: superuser,
		IncludeFile: filepath.Join(r.Dir, "regent-databases.ini")}
}

// pgbouncerConfig is the routing.pgbouncer entry: PgBouncer logs in to
// PostgreSQL with the superuser's password (it trusts its own clients).
func (r *Router) pgbouncerConfig() routing.PgBouncer {
	s := r.settings()
	return routing.PgBouncer{Admin: s.AdminConnString(), Databases: []string{routedDatabase}, IncludeFile: s.IncludeFile,
		ConnectOptions: fmt.Sprintf("user=%s password=%s", superuser, superPassword)}
}

// agentSection is every agent's routing: section.
func (r *Router) agentSection() map[string]any {
	pb := r.pgbouncerConfig()
	return map[string]any{"pgbouncer": []map[string]any{{
		"admin": pb.Admin, "databases": pb.Databases, "include_file": pb.IncludeFile, "connect_options": pb.ConnectOptions,
	}}}
}

// Start writes the include file naming leader (as an operator does at
// setup: PgBouncer refuses to start without it), the ini and the auth
// file, starts PgBouncer in its namespace as the agents' user (it refuses
// to run as root) and waits for a query through it.
func (r *Router) Start(ctx context.Context, leader *Node) error {
	s := r.settings()
	include := routing.IncludeFile(r.pgbouncerConfig(), "setup", routing.Target{Leader: leader.Name, Host: leader.Host.IP, Port: pgPort}, time.Now())
	for path, data := range map[string][]byte{s.IncludeFile: include, s.UserListPath(): []byte(s.UserList()),
		filepath.Join(r.Dir, "pgbouncer.ini"): []byte(s.INI())} {
		if err := r.c.user.WriteOwned(path, data); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(r.c.ctx, r.bin, filepath.Join(r.Dir, "pgbouncer.ini"))
	if err := r.c.startLogged(&r.run, cmd, true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, routerStartTimeout)
	defer cancel()
	var last error
	for {
		if err := r.run.Crashed(); err != nil {
			return fmt.Errorf("%w: %w", errCrashed, err)
		}
		_, last = r.Write(ctx, 0)
		if last == nil {
			r.c.log.Add(r.c.clock.Now(), "pgbouncer on %s:%d routes %s to %s", r.Host.IP, routerPort, routedDatabase, leader.Name)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no write through pgbouncer within %s: %w", routerStartTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// stop ends PgBouncer (teardown).
func (r *Router) stop() error {
	if r == nil {
		return nil
	}
	return r.run.Kill()
}

// ConnConfig is a client connection through PgBouncer. Transaction
// pooling hands each transaction any server connection: no named
// prepared statements, the simple protocol.
func (r *Router) ConnConfig() *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		r.Host.IP, routerPort, superuser, routedDatabase))
	if err != nil {
		panic(fmt.Sprintf("chaos: bad connection string: %v", err))
	}
	cfg.ConnectTimeout = time.Second
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.RuntimeParams["application_name"] = "chaos-pgbouncer"
	return cfg
}

// nodeAt names the node whose PostgreSQL listens on ip ("" if none).
func (c *Cluster) nodeAt(ip string) string {
	for _, n := range c.nodes {
		if n.Host.IP == ip {
			return n.Name
		}
	}
	return ""
}

// routeProbeSQL is the routing probe's write: a row in a table of its own
// (the lost-write check is about the workload's), returning the address
// of the server that took it.
const routeProbeSQL = `INSERT INTO chaos_route_probe (round) VALUES ($1) RETURNING host(inet_server_addr())`

// Write does one probe write through PgBouncer on a fresh connection and
// returns the node that took it.
func (r *Router) Write(ctx context.Context, round int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, r.ConnConfig())
	if err != nil {
		return "", fmt.Errorf("connect to pgbouncer: %w", err)
	}
	defer testcluster.CloseConn(ctx, conn)
	var ip string
	if err := conn.QueryRow(ctx, routeProbeSQL, round).Scan(&ip); err != nil {
		return "", fmt.Errorf("write through pgbouncer: %w", err)
	}
	name := r.c.nodeAt(ip)
	if name == "" {
		return "", fmt.Errorf("write through pgbouncer landed on %s, not a node", ip)
	}
	return name, nil
}

// Database is the routed database's line of SHOW DATABASES.
type Database struct {
	Paused bool
	Host   string
	Port   int
}

// Show reads the routed database's state on the admin console.
func (r *Router) Show(ctx context.Context) (Database, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(r.settings().AdminConnString())
	if err != nil {
		return Database{}, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Database{}, fmt.Errorf("pgbouncer admin console: %w", err)
	}
	defer testcluster.CloseConn(ctx, conn)
	rows, err := conn.Query(ctx, "SHOW DATABASES")
	if err != nil {
		return Database{}, fmt.Errorf("SHOW DATABASES: %w", err)
	}
	maps, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		return Database{}, fmt.Errorf("SHOW DATABASES: %w", err)
	}
	for _, m := range maps {
		if fmt.Sprint(m["name"]) != routedDatabase {
			continue
		}
		port, _ := strconv.Atoi(fmt.Sprint(m["port"]))
		return Database{Paused: fmt.Sprint(m["paused"]) == "1", Host: fmt.Sprint(m["host"]), Port: port}, nil
	}
	return Database{}, errors.New("SHOW DATABASES lists no " + routedDatabase)
}

// resolve names the node that took an operation sent through PgBouncer,
// from the server address it returned; one it did not answer keeps
// ViaPgBouncer as its node (it is no node's acknowledgement).
func (r *Router) resolve(op Op) Op {
	if op.Server == "" {
		return op
	}
	if name := r.c.nodeAt(op.Server); name != "" {
		op.Node = name
		return op
	}
	if op.Outcome == OK {
		// Acknowledged by a server that is no node: count it unknown
		// rather than guess its tenure, and say where it went.
		op.Outcome, op.Err = Unknown, "answered by "+op.Server
	}
	return op
}
