package testcluster

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"

	"gopkg.in/yaml.v3"
)

// Credentials every cluster is configured with.
const (
	Namespace           = "/service/"
	SuperuserName       = "postgres"
	SuperuserPassword   = "supersecret"
	ReplicationName     = "replicator"
	ReplicationPassword = "replsecret"
)

// Options describe a cluster. The zero value is a 3-node cluster named
// "e2e" with ttl 10 s, loop_wait 1 s, retry_timeout 3 s.
type Options struct {
	Nodes        int    // number of nodes, named pg1…pgN; default 3
	Scope        string // default "e2e"
	TTL          int    // seconds; default 10
	LoopWait     int    // seconds; default 1
	RetryTimeout int    // seconds; default 3
	// DCS holds extra bootstrap.dcs keys (they override the timings above).
	DCS map[string]any
	// Tags holds per-node tags, merged over {nofailover: false}.
	Tags map[string]map[string]any
	// Parameters holds PostgreSQL parameters merged over the defaults
	// (small shared_buffers, fsync off).
	Parameters map[string]any
	// ExtraConfig, if set, may edit each node's config map before it is
	// written (e.g. cfg["watchdog"] = …). It must not block.
	ExtraConfig func(node string, cfg map[string]any)
	// Env, if set, returns extra KEY=VALUE environment entries for a
	// node's agent (e.g. NOTIFY_SOCKET). It must not block.
	Env func(node string) []string
	// Binary, if set, returns the regent binary a node's agent starts
	// with ("" for the default: built from ./cmd/regent); Node.SetBinary
	// changes it for the node's next start (a rolling upgrade). It must
	// not block.
	Binary func(node string) string
	// BinDir is the PostgreSQL bin directory; default: the newest
	// /usr/lib/postgresql/*/bin (15 on our machines), or $REGENT_PG_BIN_DIR.
	BinDir string
}

func (o Options) withDefaults() (Options, error) {
	o.Nodes = cmp.Or(o.Nodes, 3)
	o.Scope = cmp.Or(o.Scope, "e2e")
	o.TTL = cmp.Or(o.TTL, 10)
	o.LoopWait = cmp.Or(o.LoopWait, 1)
	o.RetryTimeout = cmp.Or(o.RetryTimeout, 3)
	if o.BinDir == "" {
		dir, err := pgBinDir()
		if err != nil {
			return o, err
		}
		o.BinDir = dir
	}
	return o, nil
}

// pgBinDir finds the PostgreSQL binaries.
func pgBinDir() (string, error) {
	if dir := os.Getenv("REGENT_PG_BIN_DIR"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { // numeric: 9 < 10 < 15
		return len(dirs[i]) < len(dirs[j]) || len(dirs[i]) == len(dirs[j]) && dirs[i] < dirs[j]
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (set REGENT_PG_BIN_DIR)")
}

// nodeConfig is the agent config of one node, as a YAML-ready map.
func (c *Cluster) nodeConfig(n *Node) map[string]any {
	o := c.opts
	params := map[string]any{"max_connections": 30, "shared_buffers": "16MB", "fsync": "off"}
	maps.Copy(params, o.Parameters)
	tags := map[string]any{"nofailover": false}
	maps.Copy(tags, o.Tags[n.Name])
	dcsCfg := map[string]any{
		"ttl": o.TTL, "loop_wait": o.LoopWait, "retry_timeout": o.RetryTimeout,
		"maximum_lag_on_failover": 1048576,
	}
	maps.Copy(dcsCfg, o.DCS)
	cfg := map[string]any{
		"name":      n.Name,
		"scope":     o.Scope,
		"namespace": Namespace,
		"etcd":      map[string]any{"endpoints": []string{n.EtcdEndpoint()}},
		"restapi":   map[string]any{"listen": n.apiAddr(), "connect_address": n.apiAddr()},
		"postgres": map[string]any{
			"data_dir":        n.DataDir,
			"bin_dir":         o.BinDir,
			"listen":          n.pgAddr(),
			"connect_address": n.pgAddr(),
			"superuser":       map[string]any{"username": SuperuserName, "password": SuperuserPassword},
			"replication":     map[string]any{"username": ReplicationName, "password": ReplicationPassword},
			"parameters":      params,
			"pg_hba":          []string{"host all all 127.0.0.1/32 scram-sha-256", "host replication all 127.0.0.1/32 scram-sha-256"},
		},
		"watchdog":  map[string]any{"mode": "off"},
		"tags":      tags,
		"log":       map[string]any{"level": "debug"},
		"bootstrap": map[string]any{"dcs": dcsCfg},
	}
	if o.ExtraConfig != nil {
		o.ExtraConfig(n.Name, cfg)
	}
	return cfg
}

// writeConfig writes the node's regent.yml, owned by the agent's user.
func (c *Cluster) writeConfig(n *Node) error {
	data, err := yaml.Marshal(c.nodeConfig(n))
	if err != nil {
		return fmt.Errorf("marshal config of %s: %w", n.Name, err)
	}
	return c.user.writeOwned(n.ConfigPath, data)
}
