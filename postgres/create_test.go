package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateReplicaFallsBack runs user-defined methods (shell commands
// standing in for a restore tool) through CreateReplica: the order, the
// fallback, keep_data, Patroni's arguments, and the state left behind.
func TestCreateReplicaFallsBack(t *testing.T) {
	up := &Upstream{Member: "pg-0", Host: "127.0.0.1", Port: 5432}
	for _, tt := range []struct {
		name      string
		methods   []string
		keepData  bool
		from      *Upstream
		wantErr   string
		wantJunk  bool
		wantFiles []string
	}{
		{name: "the first method that works", methods: []string{"good", "broken"}, from: up,
			wantFiles: []string{"PG_VERSION", standbyFile, confFile}},
		{name: "a failed method's leftovers are removed", methods: []string{"broken", "good"}, from: up,
			wantFiles: []string{"PG_VERSION", standbyFile}},
		{name: "keep_data keeps them", methods: []string{"broken", "good"}, keepData: true, from: up,
			wantJunk: true, wantFiles: []string{"PG_VERSION"}},
		{name: "a method that leaves no data directory failed", methods: []string{"empty"}, from: up,
			wantErr: "no PostgreSQL data directory"},
		{name: "every method failed: the error names each, the directory is empty", methods: []string{"broken", "empty"}, from: up,
			wantErr: "broken: "},
		{name: "without a leader only no_leader methods", methods: []string{"broken", "good"}, keepData: true,
			wantFiles: []string{"PG_VERSION"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := filepath.Join(t.TempDir(), "args")
			i := unitInstance(t, func(c *Config) {
				dd := c.DataDir
				c.CreateReplicaMethods = tt.methods
				c.Methods = map[string]ReplicaMethod{
					"broken": {Command: "touch " + dd + "/junk; exit 3"},
					"good":   {Command: `echo "$@" > ` + args + "; touch " + dd + "/PG_VERSION; true", KeepData: tt.keepData, NoLeader: true},
					"empty":  {Command: "true"},
				}
			})
			i.scope = "demo"
			err := i.CreateReplica(t.Context(), tt.from)
			dd := i.cfg.DataDir
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if entries, _ := os.ReadDir(dd); len(entries) != 0 {
					t.Errorf("data dir holds %d entries after a failure, want none", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.wantFiles {
				if _, err := os.Stat(filepath.Join(dd, f)); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dd, "junk")); tt.wantJunk != (err == nil) {
				t.Errorf("junk left behind: %v, want %v", err == nil, tt.wantJunk)
			}
			got, err := os.ReadFile(args)
			if err != nil {
				t.Fatal(err)
			}
			want := "--scope=demo --role=replica --datadir=" + dd
			if tt.from != nil {
				want += " --connstring=dbname='postgres' user='replicator' host='127.0.0.1' port='5432'"
			}
			if strings.TrimSpace(string(got)) != want {
				t.Errorf("arguments = %q, want %q", got, want)
			}
			if i.Progress() != nil {
				t.Errorf("progress after the copy = %+v, want none", i.Progress())
			}
		})
	}
}

func TestCreateReplicaNeedsAnEmptyDirectoryAndAMethod(t *testing.T) {
	i := unitInstance(t, nil)
	if err := i.CreateReplica(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "no_leader") {
		t.Errorf("without a leader and a no_leader method: %v", err)
	}
	if err := os.WriteFile(filepath.Join(i.cfg.DataDir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := i.CreateReplica(t.Context(), &Upstream{Member: "pg-0", Host: "127.0.0.1", Port: 1})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("on a non-empty directory: %v", err)
	}
}
