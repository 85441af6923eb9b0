package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// PatronictlConfig writes a patronictl 3.0.2 configuration for this cluster
// (scope, namespace, an `etcd3:` section — never `etcd:`, which would be
// tried first and talk etcd v2; patroni-compat.md §4.1) and returns its
// path.
func (c *Cluster) PatronictlConfig(t testing.TB) string {
	t.Helper()
	hosts := make([]string, 0, 1)
	for _, u := range c.EtcdEndpoints() {
		hosts = append(hosts, strings.TrimPrefix(u, "http://"))
	}
	cfg := map[string]any{
		"scope":     c.opts.Scope,
		"namespace": Namespace,
		"etcd3":     map[string]any{"hosts": strings.Join(hosts, ",")},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("testcluster: marshal patronictl config: %v", err)
	}
	path := filepath.Join(c.base, "patronictl.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testcluster: %v", fmt.Errorf("write patronictl config: %w", err))
	}
	return path
}
