package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exposedConfig = `
name: pg1
scope: demo
etcd: {endpoints: [http://127.0.0.1:2379]}
restapi:
  listen: 0.0.0.0:8008
  connect_address: 10.0.0.11:8008
%s
postgres:
  data_dir: /var/lib/regent/pg1
  bin_dir: /usr/lib/postgresql/15/bin
  listen: 127.0.0.1:5432
  superuser: {username: postgres, password: x}
  replication: {username: replicator, password: y}
watchdog: {mode: off}
`

// TestExposedUnauthenticatedAPIRefused: a REST API listening beyond
// loopback with no authentication is a config error (exit 2, the keys
// named), for `regent validate` and for the agent itself, which exits
// before connecting to anything; allow_unauthenticated accepts the risk.
func TestExposedUnauthenticatedAPIRefused(t *testing.T) {
	write := func(extra string) string {
		path := filepath.Join(t.TempDir(), "regent.yml")
		if err := os.WriteFile(path, []byte(strings.Replace(exposedConfig, "%s", extra, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	refused := write("")
	for _, args := range [][]string{{"validate", "-c", refused}, {"-c", refused}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("regent %v = exit %d, want %d\n%s", args, code, exitUsage, stderr.String())
		}
		for _, key := range []string{"restapi.listen: 0.0.0.0:8008 is not a loopback address", "restapi.authentication",
			"restapi.verify_client", "restapi.allow_unauthenticated: true"} {
			if !strings.Contains(stderr.String(), key) {
				t.Errorf("regent %v: stderr does not name %q:\n%s", args, key, stderr.String())
			}
		}
	}
	for _, extra := range []string{"  allow_unauthenticated: true", "  authentication: {username: admin, password: s3cret}"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-c", write(extra)}, &stdout, &stderr); code != exitOK {
			t.Errorf("regent validate with %q = exit %d, want 0\n%s", extra, code, stderr.String())
		}
	}
}
