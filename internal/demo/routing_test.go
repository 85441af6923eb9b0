package demo

import (
	"strings"
	"testing"

	"github.com/regent-ha/regent/config"
)

// Every agent's regent.yml carries the routing section for the demo's
// PgBouncer and HAProxy, and the agent's own parser accepts it.
func TestNodeConfigRouting(t *testing.T) {
	r := &Routers{PgBouncerPort: 16432, HAProxyPort: 15000}
	if err := r.prepare(t.TempDir(), runAs{uid: -1, gid: -1}); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{scope: "demo", logLevel: "info", Routers: r}
	n := &Node{Name: "pg1", Dir: "/tmp/demo/pg1", PGPort: 15432, APIPort: 18008}
	cfg, err := config.Parse([]byte(c.nodeConfig(n, "/usr/lib/postgresql/15/bin", []string{"http://127.0.0.1:2379"})))
	if err != nil {
		t.Fatalf("regent.yml with routing: %v", err)
	}
	rt := cfg.Routing
	if len(rt.PgBouncer) != 1 || len(rt.HAProxy) != 1 {
		t.Fatalf("routing = %+v, want one PgBouncer and one HAProxy", rt)
	}
	pb := rt.PgBouncer[0]
	if !strings.Contains(pb.Admin, "port=16432") || pb.IncludeFile != r.bouncer.IncludeFile ||
		len(pb.Databases) != 1 || pb.Databases[0] != RoutedDatabase || !strings.Contains(pb.ConnectOptions, SuperuserPassword) {
		t.Errorf("routing.pgbouncer[0] = %+v", pb)
	}
	if h := rt.HAProxy[0]; h.Socket != r.socket || h.Backend != HAProxyBackend {
		t.Errorf("routing.haproxy[0] = %+v", h)
	}
	// The HAProxy configuration has a server per member, named as the
	// member: the agents address it by member name.
	if hc := r.haproxyConfig([]*Node{n}); !strings.Contains(hc, "server pg1 127.0.0.1:15432 check port 18008") ||
		!strings.Contains(hc, "stats socket "+r.socket) || !strings.Contains(hc, "listen "+HAProxyBackend) {
		t.Errorf("haproxy config:\n%s", hc)
	}
}

// Without -routing the agents get no routing section.
func TestNodeConfigNoRouting(t *testing.T) {
	c := &Cluster{scope: "demo", logLevel: "info"}
	n := &Node{Name: "pg1", Dir: "/tmp/demo/pg1", PGPort: 15432, APIPort: 18008}
	cfg, err := config.Parse([]byte(c.nodeConfig(n, "/usr/lib/postgresql/15/bin", []string{"http://127.0.0.1:2379"})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.Enabled() {
		t.Errorf("routing without -routing: %+v", cfg.Routing)
	}
}
