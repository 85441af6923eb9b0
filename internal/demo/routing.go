package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/routerproc"
	"github.com/regent-ha/regent/routing"
)

// The demo's routers (-routing): one PgBouncer and one HAProxy in front
// of the cluster, both driven by every agent's routing: section. They
// only carry client traffic: the agents reach them through their own
// routing integration (docs/routing.md), which keeps the safety rule —
// routing actions run at the switchover's fixed points, each bounded by
// its timeout, and never decide who may write.
const (
	// RoutedDatabase is the PgBouncer [databases] entry the demo routes:
	// the primary's database of the same name.
	RoutedDatabase = "postgres"
	// WritesTable is the table the printed client loop inserts into.
	WritesTable = "demo_writes"
	// HAProxyBackend is the write port's listen section.
	HAProxyBackend  = "primary"
	routersUp       = 30 * time.Second
	routerStopLimit = 5 * time.Second
)

// Routers are the demo's PgBouncer and HAProxy.
type Routers struct {
	PgBouncerPort int // clients and the admin console
	HAProxyPort   int // the write port
	dir           string
	bouncer       routerproc.PgBouncer
	socket        string // HAProxy's admin socket
	pgbouncerBin  string
	haproxyBin    string
	procs         []*routerProc
}

type routerProc struct {
	name string
	cmd  *exec.Cmd
	stop syscall.Signal // the signal that ends it at once
	done chan struct{}
}

// newRouters finds both binaries (the error names the Debian package)
// and picks their ports; nothing runs yet.
func newRouters() (*Routers, error) {
	var errs []error
	r := &Routers{}
	var err error
	if r.pgbouncerBin, err = routerproc.Find("pgbouncer"); err != nil {
		errs = append(errs, err)
	}
	if r.haproxyBin, err = routerproc.Find("haproxy"); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("-routing: %w", errors.Join(errs...))
	}
	ports, err := freeport.PickN(2)
	if err != nil {
		return nil, err
	}
	r.PgBouncerPort, r.HAProxyPort = ports[0], ports[1]
	return r, nil
}

// prepare creates the routers' directory under base, owned by the agents'
// user: they rewrite PgBouncer's include file there (by rename).
func (r *Routers) prepare(base string, owner runAs) error {
	r.dir = filepath.Join(base, "routing")
	if err := os.Mkdir(r.dir, 0o755); err != nil {
		return err
	}
	r.bouncer = routerproc.PgBouncer{Port: r.PgBouncerPort, Dir: r.dir, AdminUser: "postgres",
		IncludeFile: filepath.Join(r.dir, "regent-databases.ini")}
	r.socket = filepath.Join(r.dir, "haproxy-admin.sock")
	return owner.chown(r.dir)
}

func (r *Routers) pgbouncerConfig() routing.PgBouncer {
	return routing.PgBouncer{Databases: []string{RoutedDatabase}, IncludeFile: r.bouncer.IncludeFile,
		ConnectOptions: "user=postgres password=" + SuperuserPassword}
}

// agentSection is the routing: section of every agent's regent.yml.
func (r *Routers) agentSection() string {
	pb := r.pgbouncerConfig()
	return fmt.Sprintf(`routing:
  pgbouncer:
    - admin: %q
      databases: [%s]
      include_file: %s
      connect_options: %q
  haproxy:
    - socket: %s
      backend: %s
`, r.bouncer.AdminConnString(), RoutedDatabase, pb.IncludeFile, pb.ConnectOptions, r.socket, HAProxyBackend)
}

// haproxyConfig is the write port: the member answering GET /primary
// with 200 (checked every second), driven sooner by the agents through
// the admin socket.
func (r *Routers) haproxyConfig(nodes []*Node) string {
	var b strings.Builder
	b.WriteString(routerproc.HAProxyAdminSocket(r.socket))
	fmt.Fprintf(&b, `
defaults
    mode tcp
    timeout connect 4s
    timeout client 30m
    timeout server 30m
    timeout check 1s

listen %s
    bind 127.0.0.1:%d
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
`, HAProxyBackend, r.HAProxyPort)
	for _, n := range nodes {
		fmt.Fprintf(&b, "    server %s 127.0.0.1:%d check port %d\n", n.Name, n.PGPort, n.APIPort)
	}
	return b.String()
}

// start writes the include file naming leader (as an operator does at
// setup), starts PgBouncer (as the agents' user: it refuses root) and
// HAProxy, and waits until a write goes through each; it creates
// WritesTable on the way.
func (r *Routers) start(ctx context.Context, c *Cluster, leader *Node) error {
	write := func(path, text string) error {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
		return c.owner.chown(path)
	}
	include := routing.IncludeFile(r.pgbouncerConfig(), "setup", routing.Target{Leader: leader.Name, Host: "127.0.0.1", Port: leader.PGPort}, time.Now())
	ini := filepath.Join(r.dir, "pgbouncer.ini")
	hacfg := filepath.Join(r.dir, "haproxy.cfg")
	for path, text := range map[string]string{r.bouncer.IncludeFile: string(include), r.bouncer.UserListPath(): r.bouncer.UserList(),
		ini: r.bouncer.INI(), hacfg: r.haproxyConfig(c.Nodes)} {
		if err := write(path, text); err != nil {
			return err
		}
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(checkCtx, r.haproxyBin, "-c", "-f", hacfg).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c -f %s: %w\n%s", hacfg, err, out)
	}
	if err := r.run(c, "pgbouncer", syscall.SIGINT, c.owner.credential, r.pgbouncerBin, ini); err != nil {
		return err
	}
	if err := r.run(c, "haproxy", syscall.SIGTERM, nil, r.haproxyBin, "-f", hacfg, "-db"); err != nil {
		return err
	}
	bouncer := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable connect_timeout=2", r.PgBouncerPort, RoutedDatabase)
	if err := r.waitWrite(ctx, "PgBouncer", bouncer, "CREATE TABLE IF NOT EXISTS "+WritesTable+" (at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return err
	}
	proxy := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=2", r.HAProxyPort, SuperuserPassword)
	return r.waitWrite(ctx, "HAProxy", proxy, "INSERT INTO "+WritesTable+" DEFAULT VALUES")
}

// run starts one router in its own process group, its output in
// <name>.log and its working directory in the demo's.
func (r *Routers) run(c *Cluster, name string, stop syscall.Signal, cred *syscall.Credential, bin string, args ...string) error {
	logFile, err := os.OpenFile(filepath.Join(r.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }() // the child writes through its own descriptor
	cmd := exec.CommandContext(c.ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = r.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &routerProc{name: name, cmd: cmd, stop: stop, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	r.procs = append(r.procs, p)
	return nil
}

// waitWrite runs stmt through conn string until it succeeds, failing
// early when a router exited.
func (r *Routers) waitWrite(ctx context.Context, what, connString, stmt string) error {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // PgBouncer's transaction pooling
	deadline := time.Now().Add(routersUp)
	last := errors.New("no try yet")
	for time.Now().Before(deadline) {
		for _, p := range r.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited at start (its log is above)", p.name)
			default:
			}
		}
		if last = tryExec(ctx, cfg, stmt); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no write through %s within %s: %w", what, routersUp, last)
}

func tryExec(ctx context.Context, cfg *pgx.ConnConfig, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, stmt)
	return err
}

// Close stops both routers — HAProxy with SIGTERM (at once), PgBouncer
// with SIGINT (its safe shutdown in every version: it lets running
// transactions finish; SIGTERM waits for clients to leave from 1.23 on) —
// and kills what has not exited within routerStopLimit.
func (r *Routers) Close() {
	for _, p := range r.procs {
		_ = p.cmd.Process.Signal(p.stop)
	}
	for _, p := range r.procs {
		select {
		case <-p.done:
		case <-time.After(routerStopLimit):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// dumpLogs prints the routers' logs, for a start that failed.
func (r *Routers) dumpLogs(w io.Writer) {
	for _, p := range r.procs {
		data, _ := os.ReadFile(filepath.Join(r.dir, p.name+".log"))
		fmt.Fprintf(w, "--- %s log\n%s\n", p.name, strings.TrimSpace(string(data)))
	}
}

// leader is the member answering GET /primary with 200.
func (c *Cluster) leader(ctx context.Context) (*Node, error) {
	for _, n := range c.Nodes {
		if code, _ := n.get(ctx, "/primary"); code == http.StatusOK {
			return n, nil
		}
	}
	return nil, errors.New("no member answers GET /primary with 200")
}

// printRouting tells how to write through the routers during a switchover.
func (r *Routers) printRouting(c *Cluster, w io.Writer) {
	ep := strings.Join(c.etcd.Endpoints(), ",")
	fmt.Fprintf(w, `
Write ports (routing: every agent drives these at each switchover):
  PgBouncer 127.0.0.1:%d   pauses during a switchover, then points at the new primary: clients wait, no errors
  HAProxy   127.0.0.1:%d   the agents move it through its admin socket %s

A client writing through PgBouncer every 0.2 s (prints the time and the primary's port):
  while :; do psql -h 127.0.0.1 -p %d -U postgres -qAtc "INSERT INTO %s DEFAULT VALUES RETURNING at, inet_server_port()" %s || echo FAILED; sleep 0.2; done
and, in a third terminal, a switchover to watch it through:
  bin/regentctl --etcd %s --scope %s switchover --yes
(and, to see the HAProxy port too, the same loop with PGPASSWORD=%s and -p %d)
`, r.PgBouncerPort, r.HAProxyPort, r.socket, r.PgBouncerPort, WritesTable, RoutedDatabase, ep, c.scope, SuperuserPassword, r.HAProxyPort)
}

// routingSection is the agents' routing: section, "" without routers.
func (c *Cluster) routingSection() string {
	if c.Routers == nil {
		return ""
	}
	return c.Routers.agentSection()
}

// startRouters starts the routers in front of the current leader.
func (c *Cluster) startRouters(ctx context.Context) error {
	leader, err := c.leader(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "Starting PgBouncer and HAProxy …")
	return c.Routers.start(ctx, c, leader)
}
