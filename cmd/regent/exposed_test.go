package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
)

// TestExposedUnauthenticatedAPIRefused: a REST API listening beyond
// loopback with no authentication is a config error (exit 2, the keys
// named), for `regent validate` and for the agent itself, which exits
// before connecting to anything; allow_unauthenticated accepts the risk.
func TestExposedUnauthenticatedAPIRefused(t *testing.T) {
	write := func(extra string) string {
		return testconfig.Write(t, "  listen: 0.0.0.0:8008\n  connect_address: 10.0.0.11:8008\n"+extra, "")
	}
	wantConfigError(t, write(""), "restapi.listen: 0.0.0.0:8008 is not a loopback address", "restapi.authentication",
		"restapi.verify_client", "restapi.allow_unauthenticated: true")
	for _, extra := range []string{"  allow_unauthenticated: true\n", "  authentication: {username: admin, password: s3cret}\n"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-c", write(extra)}, &stdout, &stderr); code != exitOK {
			t.Errorf("regent validate with %q = exit %d, want 0\n%s", extra, code, stderr.String())
		}
	}
}

// wantConfigError: `regent validate` and the agent itself refuse the
// config at path with exit 2, naming every key.
func wantConfigError(t *testing.T, path string, keys ...string) {
	t.Helper()
	for _, args := range [][]string{{"validate", "-c", path}, {"-c", path}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("regent %v = exit %d, want %d\n%s", args, code, exitUsage, stderr.String())
		}
		for _, key := range keys {
			if !strings.Contains(stderr.String(), key) {
				t.Errorf("regent %v: stderr does not name %q:\n%s", args, key, stderr.String())
			}
		}
	}
}
