package postgres

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// fakeBinDir holds executable stand-ins for the binaries Validate looks for.
func fakeBinDir(t *testing.T, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range binaries {
		if !containsString(skip, b) {
			if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func validConfig(t *testing.T) Config {
	c := Config{
		DataDir:     "/var/lib/regent/data",
		BinDir:      fakeBinDir(t),
		Listen:      "127.0.0.1:5432",
		Superuser:   Credentials{Password: "a"},
		Replication: Credentials{Password: "b"},
	}
	c.SetDefaults()
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Listen: "10.0.0.1:5432"}
	c.SetDefaults()
	if c.BinDir != DefaultBinDir || c.ConnectAddress != "10.0.0.1:5432" || c.Superuser.Username != "postgres" ||
		c.Replication.Username != "replicator" || c.StopTimeout != 30*time.Second {
		t.Errorf("defaults not applied: %+v", c)
	}
	if err := validConfig(t).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestConfigValidateNamesEachKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "postgres.data_dir: required"},
		{"relative data dir", func(c *Config) { c.DataDir = "data" }, `postgres.data_dir: "data" must be an absolute path`},
		{"no bin dir", func(c *Config) { c.BinDir = "" }, "postgres.bin_dir: required"},
		{"bin dir missing", func(c *Config) { c.BinDir = "/nonexistent/bin" }, "postgres.bin_dir: /nonexistent/bin is not a directory"},
		{"no listen", func(c *Config) { c.Listen = "" }, "postgres.listen: required"},
		{"bad listen", func(c *Config) { c.Listen = "abc" }, `postgres.listen: "abc" is not host:port`},
		{"bad port", func(c *Config) { c.Listen = "127.0.0.1:99999" }, `postgres.listen: "127.0.0.1:99999" is not host:port (bad port)`},
		{"bad connect address", func(c *Config) { c.ConnectAddress = "h" }, `postgres.connect_address: "h" is not host:port`},
		{"no superuser password", func(c *Config) { c.Superuser.Password = "" }, "postgres.superuser.password: required"},
		{"no replication user", func(c *Config) { c.Replication.Username = "" }, "postgres.replication.username: required"},
		{"same users", func(c *Config) { c.Replication.Username = "postgres" }, `postgres.replication.username: "postgres" must differ`},
		{"bad parameter name", func(c *Config) { c.Parameters = map[string]any{"Bad Name": 1} }, "postgres.parameters.Bad Name: not a valid setting name"},
		{"managed parameter", func(c *Config) { c.Parameters = map[string]any{"port": 5433} }, "postgres.parameters.port: set postgres.listen instead"},
		{"bad parameter value", func(c *Config) { c.Parameters = map[string]any{"work_mem": []any{1}} }, "postgres.parameters.work_mem: value of type"},
		{"multi-line hba", func(c *Config) { c.PgHBA = []string{"host all all 0.0.0.0/0 md5\nlocal all all trust"} }, "postgres.pg_hba[0]: must be a single line"},
		{"negative stop timeout", func(c *Config) { c.StopTimeout = -time.Second }, "postgres.stop_timeout: must be positive"},
	} {
		c := validConfig(t)
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	c := validConfig(t)
	c.BinDir = fakeBinDir(t, "pg_rewind")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "postgres.bin_dir: "+filepath.Join(c.BinDir, "pg_rewind")+" not found") {
		t.Errorf("missing pg_rewind: Validate() = %v", err)
	}
}

func TestConfigValidateJoinsErrors(t *testing.T) {
	err := Config{}.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) < 5 {
		t.Fatalf("Validate of an empty config = %v, want several joined errors", err)
	}
	for _, e := range joined.Unwrap() {
		if !strings.HasPrefix(e.Error(), "postgres.") {
			t.Errorf("error %q does not name its key", e)
		}
	}
}

func TestConfigDecodesStrictYAML(t *testing.T) {
	doc := `
data_dir: /data
listen: 127.0.0.1:5432
superuser: {username: admin, password: "s3cret"}
replication: {password: r}
parameters: {max_connections: 20, fsync: false, shared_buffers: 16MB}
pg_hba: ["host all all 10.0.0.0/8 scram-sha-256"]
stop_timeout: 45s
`
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.StopTimeout != 45*time.Second || c.Superuser.Password.Reveal() != "s3cret" || c.Parameters["max_connections"] != 20 ||
		c.Parameters["fsync"] != false || c.Parameters["shared_buffers"] != "16MB" || len(c.PgHBA) != 1 {
		t.Errorf("decoded %+v", c)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("marshalled config leaks the password:\n%s", out)
	}
}
