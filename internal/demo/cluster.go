package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
)

// Cluster is a running demo cluster.
type Cluster struct {
	Dir   string
	Nodes []*Node
	// Routers are the PgBouncer and HAProxy of Options.Routing, else nil.
	Routers *Routers
	scope   string
	// ctx lives until Close has stopped the agents; it bounds them
	// (exec.CommandContext) as a last resort. It is not Run's context:
	// that one ends on Ctrl-C, which would SIGKILL the agents before
	// Close stops them in order.
	ctx      context.Context
	cancel   context.CancelFunc
	owner    runAs
	etcd     *etcdembed.Server
	client   *dcs.Client
	log      *slog.Logger
	stdout   io.Writer
	binary   string
	logLevel string
}

// Node is one agent with its PostgreSQL.
type Node struct {
	Name    string
	Dir     string
	PGPort  int
	APIPort int
	config  string
	logPath string
	cmd     *exec.Cmd
	owner   runAs
	binary  string
}

// Endpoints returns the embedded etcd's client URLs.
func (c *Cluster) Endpoints() []string { return c.etcd.Endpoints() }

// installBinary copies the agent binary into the demo directory, where the
// postgres user can execute it (a home or build directory usually is not
// traversable for it).
func (c *Cluster) installBinary(agent string) error {
	if agent == "" {
		return errors.New("no agent binary given")
	}
	data, err := os.ReadFile(agent)
	if err != nil {
		return fmt.Errorf("read the agent binary: %w", err)
	}
	c.binary = filepath.Join(c.Dir, "regent")
	return os.WriteFile(c.binary, data, 0o755)
}

func (c *Cluster) addNode(name, binDir string, pgPort, apiPort int) (*Node, error) {
	n := &Node{Name: name, Dir: filepath.Join(c.Dir, name), PGPort: pgPort, APIPort: apiPort, owner: c.owner, binary: c.binary}
	if err := os.Mkdir(n.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := c.owner.chown(n.Dir); err != nil {
		return nil, err
	}
	n.config = filepath.Join(n.Dir, "regent.yml")
	n.logPath = filepath.Join(n.Dir, "regent.log")
	cfg := c.nodeConfig(n, binDir, c.etcd.Endpoints())
	if err := os.WriteFile(n.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if err := c.owner.chown(n.config); err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, n)
	return n, nil
}

// nodeConfig is n's regent.yml.
func (c *Cluster) nodeConfig(n *Node, binDir string, endpoints []string) string {
	return fmt.Sprintf(`name: %s
scope: %s
namespace: /service/
etcd:
  endpoints: [%s]
restapi:
  listen: 127.0.0.1:%d
  connect_address: 127.0.0.1:%d
postgres:
  data_dir: %s
  bin_dir: %s
  listen: 127.0.0.1:%d
  connect_address: 127.0.0.1:%d
  superuser: {username: postgres, password: %s}
  replication: {username: replicator, password: %s}
  parameters: {max_connections: 30, shared_buffers: 32MB}
  pg_hba:
    - host all all 127.0.0.1/32 scram-sha-256
watchdog: {mode: off}
log: {level: %s}
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3, maximum_lag_on_failover: 1048576}
%s`, n.Name, c.scope, strings.Join(endpoints, ", "), n.APIPort, n.APIPort,
		filepath.Join(n.Dir, "data"), binDir, n.PGPort, n.PGPort, SuperuserPassword, ReplicationPassword, c.logLevel, c.routingSection())
}

func (n *Node) start(ctx context.Context) error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The agent writes through its own descriptor; ours writes nothing,
	// so its close has nothing to lose.
	defer func() { _ = logFile.Close() }()
	cmd := exec.CommandContext(ctx, n.binary, "-c", n.config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = n.Dir
	// Its own process group: Ctrl-C reaches the demo, which stops the
	// agents in order, rather than every process at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: n.owner.credential}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent %s: %w", n.Name, err)
	}
	n.cmd = cmd
	return nil
}

// WaitHealthy waits until one member leads (GET /primary 200) and every
// other member streams from it.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, state := c.healthy(ctx)
		if ok {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster not healthy after %s: %s (logs in %s)", timeout, last, c.Dir)
}

func (c *Cluster) healthy(ctx context.Context) (bool, string) {
	var leaders, streaming int
	var states []string
	for _, n := range c.Nodes {
		if code, _ := n.get(ctx, "/primary"); code == http.StatusOK {
			leaders++
		}
		doc, err := n.status(ctx)
		if err != nil {
			states = append(states, n.Name+": "+err.Error())
			continue
		}
		states = append(states, fmt.Sprintf("%s: %v %v", n.Name, doc["role"], doc["state"]))
		if repl, ok := doc["replication"].([]any); ok {
			for _, r := range repl {
				if m, ok := r.(map[string]any); ok && m["state"] == "streaming" {
					streaming++
				}
			}
		}
	}
	if leaders != 1 || streaming != len(c.Nodes)-1 {
		return false, strings.Join(states, "; ")
	}
	// The member keys (what `regentctl list` shows) lag the REST status by
	// up to one tick.
	view, err := c.client.Load(ctx)
	if err != nil {
		return false, err.Error()
	}
	for _, n := range c.Nodes {
		if m, ok := view.Members[n.Name]; !ok || m.State != "running" {
			return false, n.Name + ": member key not running yet"
		}
	}
	return true, ""
}

func (n *Node) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", n.APIPort, path) }

func (n *Node) get(ctx context.Context, path string) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url(path), nil)
	if err != nil {
		return 0, nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body
}

func (n *Node) status(ctx context.Context) (map[string]any, error) {
	code, body := n.get(ctx, "/patroni")
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /patroni: %d", code)
	}
	var doc map[string]any
	return doc, json.Unmarshal(body, &doc)
}

// Close stops the agents (SIGTERM: each stops its PostgreSQL), kills what
// is left, stops etcd and removes the directory.
func (c *Cluster) Close() error {
	var errs []error
	if c.Routers != nil { // first: they hold client connections to the members
		c.Routers.Close()
	}
	for _, n := range c.Nodes {
		errs = append(errs, n.stop())
	}
	c.cancel()
	if c.client != nil {
		errs = append(errs, c.client.Close())
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	errs = append(errs, os.RemoveAll(c.Dir))
	return errors.Join(errs...)
}

const agentStopTimeout = 45 * time.Second

func (n *Node) stop() error {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(agentStopTimeout):
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	return killPostmaster(filepath.Join(n.Dir, "data"))
}

// killPostmaster kills a PostgreSQL left running in dataDir (its own
// process group, from postmaster.pid). No pid file, or one without a pid,
// means no server to kill: PostgreSQL removes it on a clean stop and
// writes the pid first.
func killPostmaster(dataDir string) error {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find a PostgreSQL left running: %w", err)
	}
	pid, ok := postmasterPID(data)
	if !ok || errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // its group: the backends
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill the PostgreSQL left running (pid %d): %w", pid, err)
	}
	return nil
}

// postmasterPID is the pid on the first line of a postmaster.pid file.
func postmasterPID(data []byte) (int, bool) {
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return pid, err == nil && pid > 0
}

func (c *Cluster) dumpLogs(w io.Writer) {
	for _, n := range c.Nodes {
		data, _ := os.ReadFile(n.logPath)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(w, "--- %s (last lines of %s)\n%s\n", n.Name, n.logPath, strings.Join(lines, "\n"))
	}
}

func (c *Cluster) printHelp(w io.Writer) {
	ep := strings.Join(c.etcd.Endpoints(), ",")
	fmt.Fprintf(w, "\netcd: %s   (scope %s, namespace /service/)\n", ep, c.scope)
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "%s: PostgreSQL 127.0.0.1:%d   REST http://127.0.0.1:%d   log %s\n", n.Name, n.PGPort, n.APIPort, n.logPath)
	}
	first := c.Nodes[0]
	fmt.Fprintf(w, `
Try (in another terminal):
  curl -s http://127.0.0.1:%d/cluster
  curl -s -o /dev/null -w '%%{http_code}\n' http://127.0.0.1:%d/primary
  bin/regentctl --etcd %s --scope %s list
  PGPASSWORD=%s psql -h 127.0.0.1 -p %d -U postgres -c 'select pg_is_in_recovery()'
`, first.APIPort, first.APIPort, ep, c.scope, SuperuserPassword, first.PGPort)
	if c.Routers != nil {
		c.Routers.printRouting(c, w)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop the cluster and remove %s.\n", c.Dir)
}
