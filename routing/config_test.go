package routing

import (
	"strings"
	"testing"
	"time"
)

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"pgbouncer without admin", Config{PgBouncer: []PgBouncer{{Databases: []string{"app"}, IncludeFile: "/f"}}}, "routing.pgbouncer[0].admin: required"},
		{"pgbouncer without databases", Config{PgBouncer: []PgBouncer{{Admin: "x", IncludeFile: "/f"}}}, "routing.pgbouncer[0].databases: required"},
		{"bad database name", Config{PgBouncer: []PgBouncer{{Admin: "x", Databases: []string{"a;b"}, IncludeFile: "/f"}}}, "routing.pgbouncer[0].databases[0]"},
		{"relative include file", Config{PgBouncer: []PgBouncer{{Admin: "x", Databases: []string{"a"}, IncludeFile: "f"}}}, "routing.pgbouncer[0].include_file: \"f\" must be an absolute path"},
		{"negative pause timeout", Config{PgBouncer: []PgBouncer{{Admin: "x", Databases: []string{"a"}, IncludeFile: "/f", PauseTimeout: -time.Second}}}, "routing.pgbouncer[0].pause_timeout"},
		{"haproxy without socket", Config{HAProxy: []HAProxy{{Backend: "primary"}}}, "routing.haproxy[0].socket: required"},
		{"haproxy bad backend", Config{HAProxy: []HAProxy{{Socket: "/s", Backend: "a b"}}}, "routing.haproxy[0].backend"},
		{"haproxy bad server", Config{HAProxy: []HAProxy{{Socket: "/s", Backend: "b", Servers: map[string]string{"pg1": "x/y"}}}}, "routing.haproxy[0].servers.pg1"},
		{"relative hook", Config{Hooks: Hooks{Repoint: []string{"dns.sh"}}}, "routing.hooks.repoint: \"dns.sh\" must be an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.SetDefaults()
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDefaultsAndEnabled(t *testing.T) {
	var empty Config
	empty.SetDefaults()
	if empty.Enabled() || empty.Validate() != nil {
		t.Fatalf("an empty section must be valid and disabled: %v", empty.Validate())
	}
	c := Config{PgBouncer: []PgBouncer{{Admin: "x", Databases: []string{"app"}, IncludeFile: "/f"}}, HAProxy: []HAProxy{{Socket: "/s", Backend: "primary"}}}
	c.SetDefaults()
	if err := c.Validate(); err != nil || !c.Enabled() {
		t.Fatalf("Validate() = %v, Enabled() = %t", err, c.Enabled())
	}
	if c.PgBouncer[0].PauseTimeout != DefaultPauseTimeout || c.PgBouncer[0].Timeout != DefaultCommandTimeout || c.HAProxy[0].Timeout != DefaultCommandTimeout || c.Hooks.Timeout != DefaultHookTimeout {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func mustTime(t *testing.T) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, "2026-12-06T04:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	return at
}
