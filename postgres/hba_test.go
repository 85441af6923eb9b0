package postgres

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteHBA(t *testing.T) {
	i := unitInstance(t, func(c *Config) {
		c.Replication.Username = "repl user"
		c.PgHBA = []string{"host all app 10.0.0.0/8 scram-sha-256", "  hostssl all all ::/0 scram-sha-256  "}
	})
	changed, err := i.WriteHBA([]string{"10.0.0.2", "127.0.0.1", "fe80::1", "[2001:db8::5]", "db3.example.com", "192.168.0.0/24", "10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Errorf("first write: changed = false")
	}
	got, err := os.ReadFile(filepath.Join(i.cfg.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := `# Managed by Regent: rewritten when members change. Do not edit;
# set lines with postgres.pg_hba in regent.yml. PostgreSQL uses the first
# matching line: the configured lines come first, Regent's after them.

# postgres.pg_hba
host all app 10.0.0.0/8 scram-sha-256
hostssl all all ::/0 scram-sha-256

# Regent: its own connections (local superuser, members' replication and pg_rewind)
local all postgres scram-sha-256
host replication "repl user" 127.0.0.1/32 scram-sha-256
host all postgres 127.0.0.1/32 scram-sha-256
host replication "repl user" ::1/128 scram-sha-256
host all postgres ::1/128 scram-sha-256
host replication "repl user" 10.0.0.2/32 scram-sha-256
host all postgres 10.0.0.2/32 scram-sha-256
host replication "repl user" fe80::1/128 scram-sha-256
host all postgres fe80::1/128 scram-sha-256
host replication "repl user" 2001:db8::5/128 scram-sha-256
host all postgres 2001:db8::5/128 scram-sha-256
host replication "repl user" db3.example.com scram-sha-256
host all postgres db3.example.com scram-sha-256
host replication "repl user" 192.168.0.0/24 scram-sha-256
host all postgres 192.168.0.0/24 scram-sha-256
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("pg_hba.conf (-want +got):\n%s", diff)
	}
	if st, _ := os.Stat(filepath.Join(i.cfg.DataDir, "pg_hba.conf")); st.Mode().Perm() != 0o600 {
		t.Errorf("pg_hba.conf mode %v, want 0600", st.Mode().Perm())
	}
	if changed, err := i.WriteHBA([]string{"10.0.0.2", "fe80::1", "2001:db8::5", "db3.example.com", "192.168.0.0/24"}); err != nil || changed {
		t.Errorf("same content again: changed = %v, err = %v", changed, err)
	}
	if changed, err := i.WriteHBA([]string{"10.0.0.3"}); err != nil || !changed {
		t.Errorf("other members: changed = %v, err = %v", changed, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(i.cfg.DataDir, ".pg_hba.conf.regent-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestHBAIdent(t *testing.T) {
	for in, want := range map[string]string{"postgres": "postgres", "all": `"all"`, "Repl": "Repl", `a"b`: `"a""b"`, "+grp": `"+grp"`} {
		if got := hbaIdent(in); got != want {
			t.Errorf("hbaIdent(%q) = %s, want %s", in, got, want)
		}
	}
}
