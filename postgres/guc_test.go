package postgres

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// unitInstance is an Instance on a temporary data dir that runs nothing.
func unitInstance(t *testing.T, mutate func(*Config)) *Instance {
	t.Helper()
	cfg := Config{
		DataDir:     t.TempDir(),
		Listen:      "127.0.0.1:5433",
		Superuser:   Credentials{Username: "postgres", Password: "su'pw"},
		Replication: Credentials{Username: "replicator", Password: `re\pw'`},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg.SetDefaults()
	return &Instance{cfg: cfg, name: "pg-1", log: slog.New(slog.DiscardHandler), uid: -1, gid: -1}
}

func TestQuoteGUC(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"16MB", "'16MB'"},
		{"", "''"},
		{"it's", "'it''s'"},
		{`C:\dir`, `'C:\\dir'`},
		{"on", "'on'"},
		{true, "on"},
		{false, "off"},
		{20, "20"},
		{-1, "-1"},
		{int64(1) << 40, "1099511627776"},
		{uint16(7), "7"},
		{0.9, "0.9"},
		{1e6, "1e+06"},
		{1500 * time.Millisecond, "'1500ms'"},
	} {
		got, err := QuoteGUC(tc.in)
		if err != nil {
			t.Errorf("QuoteGUC(%#v): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("QuoteGUC(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []any{nil, "a\nb", "a\x00", math.NaN(), math.Inf(1), []any{1}, map[string]any{}} {
		if got, err := QuoteGUC(bad); err == nil {
			t.Errorf("QuoteGUC(%#v) = %s, want an error", bad, got)
		}
	}
}

func TestConnStringQuoting(t *testing.T) {
	got := connString("host", "h", "password", `a'b\c d`, "empty", "", "port", "5432")
	want := `host='h' password='a\'b\\c d' port='5432'`
	if got != want {
		t.Errorf("connString = %s, want %s", got, want)
	}
	if q := quoteLiteral(`it's \x`); q != `E'it''s \\x'` {
		t.Errorf("quoteLiteral = %s", q)
	}
}

func TestRenderConf(t *testing.T) {
	i := unitInstance(t, func(c *Config) {
		c.Parameters = map[string]any{"max_connections": 20, "fsync": false, "wal_keep_size": "1GB", "work_mem": "8MB"}
	})
	if err := i.SetDynamicParameters(map[string]any{"work_mem": "4MB", "max_wal_senders": 5}); err != nil {
		t.Fatal(err)
	}
	conf, err := i.renderConf(recovery{standby: true, upstream: &Upstream{Member: "pg-0", Host: "10.0.0.1", Port: 5432}})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"include 'postgresql.base.conf'",
		"listen_addresses = '127.0.0.1'",
		"port = 5433",
		"unix_socket_directories = '/tmp'",
		"cluster_name = 'pg-1'",
		"wal_level = replica",
		"hot_standby = on",
		"wal_log_hints = on",
		"password_encryption = 'scram-sha-256'",
		"max_connections = 20",
		"fsync = off",
		"wal_keep_size = '1GB'",
		"work_mem = '8MB'",
		"max_wal_senders = 5",
		`primary_conninfo = 'host=''10.0.0.1'' port=''5432'' user=''replicator'' password=''re\\\\pw\\'''' application_name=''pg-1'' connect_timeout=''2'''`,
		"primary_slot_name = 'pg_1'",
		"recovery_target_timeline = 'latest'",
	} {
		if !containsLine(conf, line) {
			t.Errorf("postgresql.conf lacks line %s\n%s", line, conf)
		}
	}
	// Overridden defaults appear once, with the user's value; the local
	// file beats the dynamic configuration.
	for name, want := range map[string]int{"wal_keep_size =": 1, "work_mem =": 1, "max_wal_senders =": 1} {
		if got := strings.Count(conf, "\n"+name); got != want {
			t.Errorf("%q appears %d times, want %d\n%s", name, got, want, conf)
		}
	}
	if !strings.HasPrefix(conf, managedHeader) {
		t.Errorf("postgresql.conf does not start with the managed header")
	}
}

func TestRenderConfWildcardAndSocketOverride(t *testing.T) {
	i := unitInstance(t, func(c *Config) {
		c.Listen = ":5432"
		c.Parameters = map[string]any{"unix_socket_directories": "/var/run/postgresql"}
	})
	conf, err := i.renderConf(recovery{standby: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"unix_socket_directories = '/var/run/postgresql'", "listen_addresses = '*'", "recovery_target_timeline = 'latest'"} {
		if !containsLine(conf, line) {
			t.Errorf("postgresql.conf lacks %s\n%s", line, conf)
		}
	}
	if strings.Contains(conf, "primary_conninfo") || strings.Count(conf, "unix_socket_directories") != 1 {
		t.Errorf("standby without upstream has primary_conninfo, or the socket dir twice\n%s", conf)
	}
	// A primary keeps recovery_target_timeline: removing it after a
	// promote would flag a pending restart on reload.
	conf, err = i.renderConf(recovery{})
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(conf, "recovery_target_timeline = 'latest'") || strings.Contains(conf, "primary_slot_name") {
		t.Errorf("primary recovery block wrong:\n%s", conf)
	}
}

func TestConfigureStandbyAndPrimary(t *testing.T) {
	i := unitInstance(t, nil)
	dd := i.cfg.DataDir
	if err := os.WriteFile(filepath.Join(dd, confFile), []byte("# initdb's file\nmax_connections = 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := &Upstream{Member: "pg-0", Host: "127.0.0.1", Port: 5432}
	steps := []struct {
		name        string
		do          func() (bool, error)
		wantChanged bool
		wantSignal  bool
		wantConninf bool
	}{
		{"standby", func() (bool, error) { return i.ConfigureStandby(up) }, true, true, true},
		{"standby again", func() (bool, error) { return i.ConfigureStandby(up) }, false, true, true},
		{"standby, other upstream", func() (bool, error) {
			return i.ConfigureStandby(&Upstream{Member: "pg-2", Host: "127.0.0.2", Port: 5432})
		}, true, true, true},
		{"standby, no upstream", func() (bool, error) { return i.ConfigureStandby(nil) }, true, true, false},
		{"primary", i.ConfigurePrimary, true, false, false},
		{"primary again", i.ConfigurePrimary, false, false, false},
	}
	for _, s := range steps {
		changed, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		_, statErr := os.Stat(filepath.Join(dd, standbyFile))
		if gotSignal := statErr == nil; gotSignal != s.wantSignal {
			t.Errorf("%s: standby.signal present = %v, want %v", s.name, gotSignal, s.wantSignal)
		}
		conf, _ := os.ReadFile(filepath.Join(dd, confFile))
		if got := strings.Contains(string(conf), "primary_conninfo"); got != s.wantConninf {
			t.Errorf("%s: primary_conninfo present = %v, want %v", s.name, got, s.wantConninf)
		}
		if st, _ := os.Stat(filepath.Join(dd, confFile)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: postgresql.conf mode %v, want 0600", s.name, st.Mode().Perm())
		}
	}
	base, err := os.ReadFile(filepath.Join(dd, baseConfFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("# initdb's file\nmax_connections = 100\n", string(base)); diff != "" {
		t.Errorf("initdb's postgresql.conf was not kept as the base file (-want +got):\n%s", diff)
	}
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestRenderConfClusterWideAndStandbyFloor: a setting every member must
// share comes from the dynamic config over a local value, and a standby is
// never configured below the primary's values in pg_control.
func TestRenderConfClusterWideAndStandbyFloor(t *testing.T) {
	i := unitInstance(t, func(c *Config) {
		c.Parameters = map[string]any{"max_connections": 30, "work_mem": "8MB"}
	})
	if err := i.SetDynamicParameters(map[string]any{"max_connections": 40, "work_mem": "4MB"}); err != nil {
		t.Fatal(err)
	}
	i.SetStandbyFloor(map[string]int64{"max_connections": 100, "max_worker_processes": 8})
	standby, err := i.renderConf(recovery{standby: true})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := i.renderConf(recovery{})
	if err != nil {
		t.Fatal(err)
	}
	last := func(conf, name string) string {
		v := ""
		for _, line := range strings.Split(conf, "\n") {
			if k, val, ok := strings.Cut(line, " = "); ok && k == name {
				v = val
			}
		}
		return v
	}
	for _, tc := range []struct{ conf, name, want string }{
		{primary, "max_connections", "40"},  // cluster-wide: dynamic wins
		{primary, "work_mem", "'8MB'"},      // ordinary: local wins
		{standby, "max_connections", "100"}, // floor from pg_control
	} {
		if got := last(tc.conf, tc.name); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
	if strings.Contains(standby, "max_worker_processes = 8") {
		t.Error("a floor equal to the configured value must not be written")
	}
}
