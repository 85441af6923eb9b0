package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

func TestReplicaMethodsOrder(t *testing.T) {
	backrest := ReplicaMethod{Command: "pgbackrest restore"}
	fromBackup := ReplicaMethod{Command: "restore-latest", NoLeader: true}
	legacy := ReplicaMethod{NoMaster: true}
	tests := []struct {
		name       string
		cfg        Config
		haveLeader bool
		want       []string
	}{
		{"default is basebackup", Config{}, true, []string{"basebackup"}},
		{"default without a leader: nothing", Config{}, false, nil},
		{"the configured order", Config{CreateReplicaMethods: []string{"pgbackrest", "basebackup"},
			Methods: map[string]ReplicaMethod{"pgbackrest": backrest}}, true, []string{"pgbackrest", "basebackup"}},
		{"without a leader only no_leader methods", Config{CreateReplicaMethods: []string{"pgbackrest", "basebackup", "latest", "old"},
			Methods: map[string]ReplicaMethod{"pgbackrest": backrest, "latest": fromBackup, "old": legacy}}, false, []string{"latest", "old"}},
		{"basebackup never without a leader", Config{CreateReplicaMethods: []string{"basebackup"}}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.cfg.ReplicaMethods(tt.haveLeader)); diff != "" {
				t.Errorf("ReplicaMethods (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMethodInvocation(t *testing.T) {
	cfg := Config{DataDir: "/data", Methods: map[string]ReplicaMethod{
		"pgbackrest": {Command: "pgbackrest --stanza=main --delta restore", KeepData: true, NoParams: true, Options: map[string]string{"ignored": "x"}},
		"wal_g":      {Options: map[string]string{"threshold": "10", "envdir": "/etc/wal-g"}},
	}}
	tests := []struct {
		name, method, conn string
		want               MethodInvocation
	}{
		{"no_params passes nothing", "pgbackrest", "host=a", MethodInvocation{Command: "pgbackrest --stanza=main --delta restore", KeepData: true}},
		{"Patroni's arguments, then the options sorted", "wal_g", "host=a port=5432",
			MethodInvocation{Command: "wal_g", Args: []string{"--scope=demo", "--role=replica", "--datadir=/data",
				"--connstring=host=a port=5432", "--envdir=/etc/wal-g", "--threshold=10"}}},
		{"no leader: no connstring", "wal_g", "",
			MethodInvocation{Command: "wal_g", Args: []string{"--scope=demo", "--role=replica", "--datadir=/data", "--envdir=/etc/wal-g", "--threshold=10"}}},
		{"a method without a section runs its name", "my-restore", "",
			MethodInvocation{Command: "my-restore", Args: []string{"--scope=demo", "--role=replica", "--datadir=/data"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, cfg.methodInvocation(tt.method, "demo", tt.conn)); diff != "" {
				t.Errorf("methodInvocation (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBasebackupOptions(t *testing.T) {
	tests := []struct {
		name, doc string
		want      BasebackupOptions
		wantErr   string
	}{
		{"Patroni's list", `["verbose", {"max-rate": "100M"}]`, BasebackupOptions{"--verbose", "--max-rate=100M"}, ""},
		{"Patroni's map", `{"checkpoint": "spread"}`, BasebackupOptions{"--checkpoint=spread"}, ""},
		{"an option Regent sets", `["verbose", {"pgdata": "/x"}]`, nil, `"pgdata" is set by Regent`},
		{"a short option Regent sets", `{"D": "/x"}`, nil, `"D" is set by Regent`},
		{"a nested value", `[{"max-rate": [1]}]`, nil, "must be a scalar"},
		{"a scalar", `fast`, nil, "must be a list or a map of options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got BasebackupOptions
			err := yaml.Unmarshal([]byte(tt.doc), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateMethods(t *testing.T) {
	cfg := Config{CreateReplicaMethods: []string{"pgbackrest", "basebackup", "pgbackrest", ""},
		Methods:      map[string]ReplicaMethod{"pgbackrest": {}, "pgbackrst": {}},
		RecoveryConf: RecoveryConf{RestoreCommand: "a\nb"}}
	var msgs []string
	for _, err := range cfg.validateMethods() {
		msgs = append(msgs, err.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		`postgres.create_replica_methods[2]: "pgbackrest" is listed twice`,
		"postgres.create_replica_methods[3]: empty method name",
		"postgres.pgbackrst: unknown key",
		"postgres.recovery_conf.restore_command: must be a single line",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q lack %q", got, want)
		}
	}
}

func TestBootstrapMethod(t *testing.T) {
	m := BootstrapMethod{Command: "restore", Options: map[string]string{"b": "2", "a": "1"},
		RecoveryConf: map[string]string{"recovery_target_action": "shutdown", "recovery_target_tim": "x", "restore_command": "a\nb"}}
	if diff := cmp.Diff(MethodInvocation{Command: "restore", Args: []string{"--scope=demo", "--datadir=/data", "--a=1", "--b=2"}},
		m.invocation("demo", "/data")); diff != "" {
		t.Errorf("invocation (-want +got):\n%s", diff)
	}
	m.NoParams = true
	if diff := cmp.Diff(MethodInvocation{Command: "restore"}, m.invocation("demo", "/data")); diff != "" {
		t.Errorf("no_params invocation (-want +got):\n%s", diff)
	}
	var msgs []string
	for _, err := range (BootstrapMethod{RecoveryConf: m.RecoveryConf}).Validate("bootstrap.pitr") {
		msgs = append(msgs, err.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		"bootstrap.pitr.command: required",
		`bootstrap.pitr.recovery_conf.recovery_target_action: "shutdown" must be promote or pause`,
		"bootstrap.pitr.recovery_conf.recovery_target_tim: unknown key",
		"bootstrap.pitr.recovery_conf.restore_command: value must not contain",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors %q lack %q", got, want)
		}
	}
}

func TestBasebackupProgressLines(t *testing.T) {
	i := &Instance{}
	i.noteBasebackupProgress("waiting for checkpoint")
	if p := i.Progress(); p != nil {
		t.Fatalf("progress after a non-progress line = %+v", p)
	}
	for _, line := range []string{"  1024/4096 kB (25%), 0/1 tablespace", "2048/4096 kB (50%), 0/1 tablespace (/data/base/1/1259)"} {
		i.noteBasebackupProgress(line)
	}
	p := i.Progress()
	if p == nil || p.DoneBytes != 2048<<10 || p.TotalBytes != 4096<<10 || p.Method != MethodBasebackup {
		t.Fatalf("progress = %+v, want 2 of 4 MiB by basebackup", p)
	}
}

func TestRecoveryBlockArchive(t *testing.T) {
	up := &Upstream{Member: "pg-0", Host: "127.0.0.1", Port: 5432}
	restore := func(c *Config) { c.RecoveryConf.RestoreCommand = `pgbackrest archive-get %f "%p"` }
	tests := []struct {
		name      string
		noStream  bool
		rec       recovery
		want      []string
		wantNotIn []string
	}{
		{"a streaming replica restores from the archive too", false, recovery{standby: true, upstream: up},
			[]string{`restore_command = 'pgbackrest archive-get %f "%p"'`, "primary_conninfo = "}, nil},
		{"nostream: the archive only", true, recovery{standby: true, upstream: up},
			[]string{"restore_command = ", "from the archive only (nostream)"}, []string{"primary_conninfo", "primary_slot_name"}},
		{"a primary has no restore_command", false, recovery{}, nil, []string{"restore_command"}},
		{"standby leader: the remote, its slot and its archive", false,
			recovery{standby: true, upstream: &Upstream{Member: "standby_cluster", Host: "dr", Port: 5000, Remote: true, Slot: "dr_slot", RestoreCommand: "cp /remote/%f %p"}},
			[]string{"host=''dr'' port=''5000''", "primary_slot_name = 'dr_slot'", "restore_command = 'cp /remote/%f %p'"}, []string{"pgbackrest"}},
		{"standby leader without primary_slot_name streams without a slot", false,
			recovery{standby: true, upstream: &Upstream{Member: "standby_cluster", Host: "dr", Port: 5000, Remote: true}},
			[]string{"primary_conninfo = ", `restore_command = 'pgbackrest archive-get %f "%p"'`}, []string{"primary_slot_name"}},
		{"standby leader from the remote archive only", false,
			recovery{standby: true, upstream: &Upstream{Member: "standby_cluster", Remote: true, RestoreCommand: "cp /remote/%f %p"}},
			[]string{"from its archive only", "restore_command = 'cp /remote/%f %p'"}, []string{"primary_conninfo", "primary_slot_name"}},
		{"a bootstrap from a backup: its own settings, its timeline", false,
			recovery{restore: map[string]string{"recovery_target_time": "2026-12-06 04:00:00+00", "recovery_target_timeline": "current"}},
			[]string{"recovery_target_time = '2026-12-06 04:00:00+00'", "recovery_target_timeline = 'current'"}, []string{"'latest'", "primary_conninfo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := unitInstance(t, restore)
			i.noStream = tt.noStream
			conf := i.renderRecovery(tt.rec)
			for _, w := range tt.want {
				if !strings.Contains(conf, w) {
					t.Errorf("recovery block lacks %q:\n%s", w, conf)
				}
			}
			for _, w := range tt.wantNotIn {
				if strings.Contains(conf, w) {
					t.Errorf("recovery block has %q:\n%s", w, conf)
				}
			}
		})
	}
}
