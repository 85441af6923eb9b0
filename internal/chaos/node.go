package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/linkproxy"
	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Node is one member: its agent process and, through it, its PostgreSQL,
// both in the node's namespace.
type Node struct {
	Name       string
	Host       *netns.Host
	Dir        string // owned by the agents' OS user
	DataDir    string
	ConfigPath string
	LogPath    string // the agent's output
	PGAddr     string // IP:port on the bridge
	APIURL     string // http://IP:port
	c          *Cluster

	// links carry the agent's etcd traffic, one per etcd member: they
	// listen on 127.0.0.1 inside the node's namespace and dial the member
	// from inside it too, so the partition faults still cut the traffic.
	links []*linkproxy.Proxy

	agent proc.Handle // the agent's runs, and the PostgreSQL on DataDir

	// config builds the node's regent.yml (nil: Cluster.nodeConfig); a
	// standby cluster's members have their own (standby.go).
	config func(*Node) map[string]any
}

// NodeName is the node's name (testcluster.Named).
func (n *Node) NodeName() string { return n.Name }

// etcdLinkPort is the port of the node's link to etcd member i (0-based),
// on 127.0.0.1 inside the node's namespace.
func etcdLinkPort(i int) int { return etcdClientPort + 100 + i }

// openLinks starts the node's proxies to the etcd members.
func (n *Node) openLinks() error {
	for i, m := range n.c.etcd {
		addr := fmt.Sprintf("127.0.0.1:%d", etcdLinkPort(i))
		var ln net.Listener
		err := proc.InNetns(n.Host.Path, func() (err error) {
			ln, err = new(net.ListenConfig).Listen(n.c.ctx, "tcp", addr)
			return err
		})
		if err != nil {
			n.closeLinks()
			return fmt.Errorf("etcd link %s of %s: %w", addr, n.Name, err)
		}
		seed := uint64(i+1)<<8 | uint64(n.Name[len(n.Name)-1])
		n.links = append(n.links, linkproxy.New(n.c.ctx, ln, netnsDialer(n.Host.Path, strings.TrimPrefix(m.ClientURL, "http://")), seed))
	}
	return nil
}

// netnsDialer dials addr over TCP from inside the namespace at nsPath.
func netnsDialer(nsPath, addr string) linkproxy.Dialer {
	dial := linkproxy.TCP(addr)
	return func(ctx context.Context) (up net.Conn, err error) {
		err = proc.InNetns(nsPath, func() (err error) {
			up, err = dial(ctx)
			return err
		})
		return up, err
	}
}

func (n *Node) closeLinks() {
	for _, l := range n.links {
		l.Close()
	}
	n.links = nil
}

// ShapeLinks sets the shaping of the node's etcd traffic (zero: none).
func (n *Node) ShapeLinks(s linkproxy.Shaping) {
	for _, l := range n.links {
		l.Shape(s)
	}
}

// etcdEndpoints are the node's links, as the agent's etcd endpoints.
func (n *Node) etcdEndpoints() []string {
	var eps []string
	for i := range n.c.etcd {
		eps = append(eps, fmt.Sprintf("http://127.0.0.1:%d", etcdLinkPort(i)))
	}
	return eps
}

func (c *Cluster) newNode(i int) (*Node, error) {
	return c.addNode(fmt.Sprintf("pg%d", i), 10+i, nil)
}

// addNode creates a node's namespace (address octet), directories, etcd
// links and config file (config nil: Cluster.nodeConfig); it does not
// start it.
func (c *Cluster) addNode(name string, octet int, config func(*Node) map[string]any) (*Node, error) {
	h, err := c.net.AddHost(c.ctx, name, octet)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.base, name)
	n := &Node{
		Name: name, Host: h, Dir: dir, DataDir: filepath.Join(dir, "data"),
		ConfigPath: filepath.Join(dir, "regent.yml"),
		LogPath:    filepath.Join(c.base, "logs", name+".log"),
		PGAddr:     fmt.Sprintf("%s:%d", h.IP, pgPort),
		APIURL:     fmt.Sprintf("http://%s:%d", h.IP, apiPort),
		c:          c,
		agent:      proc.Handle{Name: "agent of " + name, DataDir: filepath.Join(dir, "data"), Launch: proc.Netns(h.Path)},
		config:     config,
	}
	n.agent.Log = n.LogPath
	if err := n.openLinks(); err != nil {
		return nil, err
	}
	if err := c.user.MkdirOwned(dir); err != nil {
		return nil, err
	}
	// The unix socket goes in the node directory: /tmp is shared by every
	// namespace and the port is the same in all of them.
	if err := c.user.MkdirOwned(filepath.Join(dir, "run")); err != nil {
		return nil, err
	}
	if err := n.writeConfig(); err != nil {
		return nil, err
	}
	return n, nil
}

// writeConfig writes the node's regent.yml from the cluster's options; a
// running agent reads it at its next start.
func (n *Node) writeConfig() error {
	cfg := n.c.nodeConfig
	if n.config != nil {
		cfg = n.config
	}
	data, err := yaml.Marshal(cfg(n))
	if err != nil {
		return fmt.Errorf("marshal config of %s: %w", n.Name, err)
	}
	return n.c.user.WriteOwned(n.ConfigPath, data)
}

// nodeConfig is the node's regent.yml.
func (c *Cluster) nodeConfig(n *Node) map[string]any {
	o := c.opts
	dcsCfg := map[string]any{
		"ttl": o.TTL, "loop_wait": o.LoopWait, "retry_timeout": o.RetryTimeout,
		"maximum_lag_on_failover": o.MaxLagOnFailover,
	}
	if o.Sync {
		dcsCfg["synchronous_mode"] = true
		dcsCfg["synchronous_mode_strict"] = true
	}
	if o.Sync && o.Quorum {
		dcsCfg["synchronous_mode"] = "quorum"
		dcsCfg["synchronous_node_count"] = max(1, o.Nodes-2)
	}
	subnet := c.net.Subnet()
	api := fmt.Sprintf("%s:%d", n.Host.IP, apiPort)
	cfg := map[string]any{
		"name":      n.Name,
		"scope":     scope,
		"namespace": namespace,
		"etcd":      map[string]any{"endpoints": n.etcdEndpoints()},
		"restapi":   map[string]any{"listen": api, "connect_address": api, "allow_unauthenticated": true}, // a private test network
		"postgres": map[string]any{
			"data_dir":        n.DataDir,
			"bin_dir":         c.pgBinDir(),
			"listen":          n.PGAddr,
			"connect_address": n.PGAddr,
			"superuser":       map[string]any{"username": superuser, "password": superPassword},
			"replication":     map[string]any{"username": replUser, "password": replPassword},
			"parameters": map[string]any{
				"max_connections": 40, "shared_buffers": "16MB", "fsync": "off",
				"unix_socket_directories": filepath.Join(n.Dir, "run"),
			},
			"pg_hba": []string{
				"host all all " + subnet + " scram-sha-256",
				"host replication all " + subnet + " scram-sha-256",
			},
		},
		"tags":      map[string]any{"nofailover": false},
		"log":       map[string]any{"level": "info"},
		"bootstrap": map[string]any{"dcs": dcsCfg},
	}
	if c.opts.Watchdog {
		// Required, on the journal device (see Options.Watchdog). Without
		// it the section is left out: the default configuration (mode off,
		// default safety_margin).
		cfg["watchdog"] = map[string]any{"mode": "required", "device": fencing.JournalPrefix + n.JournalPath(),
			"safety_margin": safetyMargin.String()}
	}
	if c.opts.Fence {
		// The fast path (#19): a majority of replicas that lost the
		// primary has the hook kill it, then takes over without waiting
		// for the lease.
		cfg["fence"] = map[string]any{"command": []string{c.fence.Path}, "fast_failover": true}
	}
	if c.router != nil {
		cfg["routing"] = c.router.agentSection()
	}
	return cfg
}

// JournalPath is the node's journal watchdog device file.
func (n *Node) JournalPath() string { return filepath.Join(n.Dir, journalFile) }

// Start starts the node's agent in its namespace.
func (n *Node) Start() error {
	cmd := exec.CommandContext(n.c.ctx, n.c.bins.regent, "-c", n.ConfigPath)
	cmd.Dir = n.Dir
	cmd.Env = n.env()
	return n.c.startLogged(&n.agent, cmd, true)
}

// env is the agent's environment (proc.AgentEnv) with HOME in the node
// directory.
func (n *Node) env() []string { return proc.AgentEnv(n.Dir, superuser) }

// AgentRunning reports whether the agent process is alive (maybe frozen).
func (n *Node) AgentRunning() bool { return n.agent.Running() }

// Crashed names the exit of an agent that ended on its own.
func (n *Node) Crashed() error { return n.agent.Crashed() }

// KillAgent SIGKILLs the agent (not PostgreSQL, which runs on).
func (n *Node) KillAgent() error { return n.agent.Kill() }

// KillPostgres SIGKILLs PostgreSQL (the agent runs on).
func (n *Node) KillPostgres() error {
	_, err := n.agent.KillPostgres()
	return err
}

// Kill SIGKILLs both: a host crash (or a watchdog reset).
func (n *Node) Kill() error { return n.agent.KillAll() }

// Freeze SIGSTOPs the agent's process group and/or every PostgreSQL
// process, and returns once they are stopped.
func (n *Node) Freeze(agent, postgres bool) error { return n.agent.Freeze(agent, postgres) }

// FreezePostmaster SIGSTOPs the postmaster alone (not its process group,
// not its children) and returns once it is stopped.
func (n *Node) FreezePostmaster() error { return n.agent.FreezePostmaster() }

// Thaw SIGCONTs the agent's group, PostgreSQL, and every process Freeze
// stopped (see proc.Handle.Thaw).
func (n *Node) Thaw() { n.agent.Thaw() }

// stop stops the agent (SIGTERM, SIGKILL after timeout); its exit status
// does not matter.
func (n *Node) stop(timeout time.Duration) error {
	_, err := n.agent.Stop(timeout)
	return err
}

// ConnConfig is a superuser connection config for the node's PostgreSQL.
func (n *Node) ConnConfig() *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(fmt.Sprintf(
		"host=%s port=%d user=%s password=%s dbname=postgres sslmode=disable",
		n.Host.IP, pgPort, superuser, superPassword))
	if err != nil {
		panic(fmt.Sprintf("chaos: bad connection string: %v", err))
	}
	cfg.ConnectTimeout = time.Second
	cfg.RuntimeParams["application_name"] = "chaos"
	return cfg
}

// Get does a REST GET on the node's API, bounded at 2 s: a frozen or
// cut-off node must show up as an error, not a hang.
func (n *Node) Get(ctx context.Context, path string) (int, []byte, error) {
	return n.api().Get(ctx, path)
}

// api is the node's REST API (the request timeouts of testcluster.API).
func (n *Node) api() testcluster.API { return testcluster.API{Name: n.Name, URL: n.APIURL} }

// PatroniStatus is the part of GET /patroni the suite reads.
type PatroniStatus struct {
	Role                 string `json:"role"`
	FailsafeModeIsActive bool   `json:"failsafe_mode_is_active"`
	State                string `json:"state"`
	Timeline             int    `json:"timeline"`
	Regent               struct {
		LeaseRemainingMs int64 `json:"lease_remaining_ms"`
	} `json:"regent"`
}

// Status returns the node's GET /patroni document.
func (n *Node) Status(ctx context.Context) (PatroniStatus, error) {
	var st PatroniStatus
	code, body, err := n.Get(ctx, "/patroni")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("GET /patroni on %s: %d %s", n.Name, code, testcluster.Compact(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("GET /patroni on %s: %w", n.Name, err)
	}
	return st, nil
}
