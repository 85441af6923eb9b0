package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/routing"
)

const goodConfig = `
name: pg1
scope: demo
namespace: /service/
etcd:
  endpoints: [http://127.0.0.1:2379]
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
postgres:
  data_dir: /var/lib/regent/pg1
  bin_dir: /usr/lib/postgresql/15/bin
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  superuser: {username: postgres, password: ${PGSUPERPASS}}
  replication: {username: replicator, password: ${PGREPLPASS}}
  parameters: {max_connections: 100}
  pg_hba:
    - host all all 127.0.0.1/32 scram-sha-256
watchdog: {mode: off}
tags: {nofailover: false}
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3, maximum_lag_on_failover: 1048576}
`

// parseEdited parses goodConfig with old replaced by edit, once, and the
// passwords it reads from the environment set.
func parseEdited(t *testing.T, old, edit string) (*Config, error) {
	t.Helper()
	t.Setenv("PGSUPERPASS", "x")
	t.Setenv("PGREPLPASS", "y")
	return Parse([]byte(strings.Replace(goodConfig, old, edit, 1)))
}

func TestParseConfigAcceptsTheDocumentedShape(t *testing.T) {
	t.Setenv("PGSUPERPASS", "s3cret$x")
	t.Setenv("PGREPLPASS", "r3pl")
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Postgres.Superuser.Password.Reveal(); got != "s3cret$x" {
		t.Errorf("superuser password = %q, want the environment's value", got)
	}
	if c.Postgres.Parameters["max_connections"] != 100 {
		t.Errorf("parameters = %v", c.Postgres.Parameters)
	}
	dyn, err := c.BootstrapDynamic()
	if err != nil {
		t.Fatal(err)
	}
	if dyn.TTL != 10*time.Second || dyn.LoopWait != time.Second || dyn.MaximumLagOnFailover != 1<<20 {
		t.Errorf("bootstrap dynamic config = %+v", dyn)
	}
	js, err := c.BootstrapDCSJSON()
	if err != nil || !strings.Contains(string(js), `"ttl":10`) {
		t.Errorf("bootstrap JSON = %s, %v", js, err)
	}
}

// TestParseConfigNamesTheBadKey: every refusal names the key and the problem.
func TestParseConfigNamesTheBadKey(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // the edit to goodConfig: old replaced by new, once
		wantParts []string
	}{
		{"typo'd key", "  data_dir:", "  datadir:", []string{"postgres.datadir: unknown key", `did you mean "data_dir"`}},
		{"typo'd top-level key", "scope:", "scpoe:", []string{"scpoe: unknown key"}},
		{"wrong type", "endpoints: [http://127.0.0.1:2379]", "endpoints: {a: b}", []string{"etcd.endpoints:"}},
		{"section of the wrong kind", "watchdog: {mode: off}", "watchdog: off", []string{"watchdog: must be a mapping"}},
		{"missing data_dir", "  data_dir: /var/lib/regent/pg1\n", "", []string{"postgres.data_dir"}},
		{"missing name", "name: pg1\n", "", []string{"name: required"}},
		{"member name with a slash", "name: pg1", "name: pg/1", []string{`name: "pg/1"`}},
		{"timings break loop_wait + 2·retry_timeout ≤ ttl", "retry_timeout: 3", "retry_timeout: 5", []string{"bootstrap.dcs.loop_wait", "must be ≤ ttl"}},
		{"ttl not a number", "ttl: 10", "ttl: abc", []string{"bootstrap.dcs.ttl", `"abc" is not a number`}},
		{"unknown dynamic key", "ttl: 10", "tll: 10", []string{"bootstrap.dcs.tll: unknown key"}},
		{"bad synchronous_mode", "ttl: 10,", "ttl: 10, synchronous_mode: quorom,", []string{"bootstrap.dcs.synchronous_mode", "not true, false or quorum"}},
		{"synchronous_node_count zero", "ttl: 10,", "ttl: 10, synchronous_node_count: 0,", []string{"bootstrap.dcs.synchronous_node_count", "outside 1"}},
		{"sync_priority not a number", "tags: {nofailover: false}", "tags: {sync_priority: high}", []string{"tags.sync_priority"}},
		{"sync_priority negative", "tags: {nofailover: false}", "tags: {sync_priority: -1}", []string{"tags.sync_priority: -1 is negative"}},
		{"bad watchdog mode", "mode: off", "mode: sometimes", []string{"watchdog.mode"}},
		{"unset environment variable", "${PGREPLPASS}", "${NOPE_NOT_SET}", []string{"postgres.replication.password: environment variable NOPE_NOT_SET is not set"}},
		{"replica method section nothing names", "  pg_hba:\n", "  pgbackrest: {command: pgbackrest restore}\n  pg_hba:\n", []string{"postgres.pgbackrest: unknown key", "create_replica_methods"}},
		{"unknown key in a method section", "  pg_hba:\n", "  create_replica_methods: [pgbackrest]\n  pgbackrest: {command: x, keep_data: maybe}\n  pg_hba:\n", []string{"postgres.pgbackrest.keep_data"}},
		{"basebackup option Regent sets", "  pg_hba:\n", "  basebackup: [{pgdata: /x}]\n  pg_hba:\n", []string{"postgres.basebackup", `"pgdata" is set by Regent`}},
		{"typo in recovery_conf", "  pg_hba:\n", "  recovery_conf: {restore_comand: x}\n  pg_hba:\n", []string{"postgres.recovery_conf.restore_comand: unknown key", `did you mean "restore_command"`}},
		{"bootstrap method without its section", "bootstrap:\n", "bootstrap:\n  method: pitr\n", []string{`bootstrap.method: "pitr" has no bootstrap.pitr section`}},
		{"bootstrap section nothing names", "bootstrap:\n", "bootstrap:\n  pitr: {command: restore}\n", []string{"bootstrap.pitr: unknown key", "bootstrap.method"}},
		{"bad recovery target action", "bootstrap:\n", "bootstrap:\n  method: pitr\n  pitr: {command: restore, recovery_conf: {recovery_target_action: shutdown}}\n", []string{"bootstrap.pitr.recovery_conf.recovery_target_action"}},
		{"initdb option Regent sets", "bootstrap:\n", "bootstrap:\n  initdb: [{pgdata: /x}]\n", []string{"bootstrap.initdb", `"pgdata" is set by Regent`}},
		{"not YAML", goodConfig, "name: [unclosed", []string{"not valid YAML"}},
		{"typo'd routing key", "watchdog: {mode: off}", "watchdog: {mode: off}\nrouting:\n  pgbouncer:\n    - {admin: x, databases: [app], include_file: /f}\n    - {admin: x, database: [app]}",
			[]string{"routing.pgbouncer[1].database: unknown key", `did you mean "databases"`}},
		{"routing pause_timeout not a duration", "watchdog: {mode: off}", "watchdog: {mode: off}\nrouting: {pgbouncer: [{admin: x, databases: [app], include_file: /f, pause_timeout: soon}]}",
			[]string{"routing.pgbouncer[0].pause_timeout: \"soon\" is not a duration"}},
		{"routing entry missing its include file", "watchdog: {mode: off}", "watchdog: {mode: off}\nrouting: {pgbouncer: [{admin: x, databases: [app]}]}",
			[]string{"routing.pgbouncer[0].include_file: required"}},
		{"fast failover without a fence command", "watchdog: {mode: off}", "watchdog: {mode: off}\nfence: {fast_failover: true}",
			[]string{"fence.fast_failover: requires fence.command"}},
		{"suspect_after not a duration", "watchdog: {mode: off}", "watchdog: {mode: off}\nfence: {command: [/bin/true], suspect_after: soon}",
			[]string{"fence.suspect_after: \"soon\" is not a duration"}},
		{"suspect_after too long", "watchdog: {mode: off}", "watchdog: {mode: off}\nfence: {command: [/bin/true], suspect_after: 120}",
			[]string{"fence.suspect_after: 2m0s must be between"}},
		{"routing haproxy without a backend", "watchdog: {mode: off}", "watchdog: {mode: off}\nrouting: {haproxy: [{socket: /run/haproxy.sock}]}",
			[]string{"routing.haproxy[0].backend"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseEdited(t, tt.old, tt.new)
			if err == nil {
				t.Fatal("Parse accepted a bad config")
			}
			for _, want := range tt.wantParts {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestParseRoutingSection(t *testing.T) {
	t.Setenv("PGSUPERPASS", "x")
	t.Setenv("PGREPLPASS", "y")
	c, err := Parse([]byte(goodConfig + `routing:
  pgbouncer:
    - admin: host=/run/pgbouncer port=6432 user=pgbouncer dbname=pgbouncer
      databases: [app]
      include_file: /etc/pgbouncer/regent.ini
      pause_timeout: 2.5
  haproxy:
    - {socket: /run/haproxy/admin.sock, backend: primary}
  hooks: {repoint: [/usr/local/bin/dns-update], timeout: 3s}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r := c.Routing
	if len(r.PgBouncer) != 1 || r.PgBouncer[0].PauseTimeout != 2500*time.Millisecond || r.PgBouncer[0].Timeout != routing.DefaultCommandTimeout ||
		len(r.HAProxy) != 1 || r.HAProxy[0].Backend != "primary" || r.Hooks.Timeout != 3*time.Second || !r.Enabled() {
		t.Fatalf("routing decoded as %+v", r)
	}
}

// TestFastFailoverKeys: fence.suspect_after reads a bare number as
// seconds, as every duration key does (Patroni's style), and defaults to 1s.
func TestFastFailoverKeys(t *testing.T) {
	for _, tt := range []struct {
		fence string
		want  time.Duration
	}{
		{"fence: {command: [/bin/true], fast_failover: true}", time.Second},
		{"fence: {command: [/bin/true], fast_failover: true, suspect_after: 2}", 2 * time.Second},
		{"fence: {command: [/bin/true], fast_failover: true, suspect_after: 500ms}", 500 * time.Millisecond},
	} {
		c, err := parseEdited(t, "watchdog: {mode: off}", "watchdog: {mode: off}\n"+tt.fence)
		if err != nil {
			t.Fatalf("%s: %v", tt.fence, err)
		}
		if !c.Fence.FastFailover || c.Fence.SuspectAfter != tt.want {
			t.Errorf("%s: fast_failover %t, suspect_after %s; want true, %s", tt.fence, c.Fence.FastFailover, c.Fence.SuspectAfter, tt.want)
		}
	}
}

func TestSafetyMarginMustFitTheTimings(t *testing.T) {
	_, err := parseEdited(t, "watchdog: {mode: off}", "watchdog: {mode: off, safety_margin: 9s}")
	if err == nil || !strings.Contains(err.Error(), "watchdog.safety_margin") {
		t.Fatalf("err = %v, want a watchdog.safety_margin error", err)
	}
}

func TestParseSynchronousMode(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want SyncMode
		err  string
	}{
		{`{}`, SyncOff, ""}, {`{"synchronous_mode": true}`, SyncOn, ""}, {`{"synchronous_mode": "on"}`, SyncOn, ""},
		{`{"synchronous_mode": false}`, SyncOff, ""}, {`{"synchronous_mode": "quorum"}`, SyncQuorum, ""},
		{`{"synchronous_mode": "quorom"}`, SyncOff, "synchronous_mode: quorom is not true, false or quorum"},
		{`{"synchronous_mode": [1]}`, SyncOff, "synchronous_mode:"},
	} {
		c, err := ParseDynamic([]byte(tt.raw))
		if c.SynchronousMode != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: got %v, %v; want %v, %q", tt.raw, c.SynchronousMode, err, tt.want, tt.err)
		}
	}
	if err := CheckKeys(map[string]any{"synchronous_mode": "quorum", "synchronous_node_count": 2}); err != nil {
		t.Errorf("quorum edit refused: %v", err)
	}
	if err := CheckKeys(map[string]any{"synchronous_mode": "maybe"}); err == nil || !strings.Contains(err.Error(), "synchronous_mode") {
		t.Errorf("bad edit: %v", err)
	}
}

func TestSyncPriorityTag(t *testing.T) {
	for _, tt := range []struct {
		tags   Tags
		want   int
		nosync bool
	}{
		{Tags{}, 1, false}, {Tags{"sync_priority": 3}, 3, false}, {Tags{"sync_priority": "0"}, 0, true},
		{Tags{"nosync": true, "sync_priority": 5}, 5, true}, {Tags{"sync_priority": "x"}, 1, false},
	} {
		if got := tt.tags.SyncPriority(); got != tt.want || tt.tags.NoSync() != tt.nosync {
			t.Errorf("%v: priority %d nosync %v, want %d %v", tt.tags, got, tt.tags.NoSync(), tt.want, tt.nosync)
		}
	}
}

func TestParseDynamicIsLenientLikePatroni(t *testing.T) {
	c, err := ParseDynamic([]byte(`{"ttl": "20", "loop_wait": 2, "pause": "on", "unknown_key": {"x": 1}, "postgresql": {"parameters": {"work_mem": "8MB"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != 20*time.Second || c.LoopWait != 2*time.Second || !c.Pause || c.PostgresParameters["work_mem"] != "8MB" {
		t.Errorf("parsed %+v", c)
	}
	if c, err := ParseDynamic([]byte(`not json`)); err != nil || c.TTL != DefaultTTL {
		t.Errorf("unparsable value must count as {}: %+v, %v", c, err)
	}
	if _, err := ParseDynamic([]byte(`{"ttl": 5, "loop_wait": 1, "retry_timeout": 3}`)); err == nil {
		t.Error("ttl 5 with retry_timeout 3 must break the timing rule")
	}
}

// TestKeysAreWhatTheDecoderReads: every path Keys lists, set to null in
// an otherwise empty document, decodes strictly (an unknown key would be
// refused); a path it does not list is refused.
func TestKeysAreWhatTheDecoderReads(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"name", "postgres", "postgres.replication.username", "bootstrap.dcs", "watchdog.safety_margin"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %s: %v", want, keys)
		}
	}
	nested := func(path string) []byte {
		var b strings.Builder
		for i, part := range strings.Split(path, ".") {
			if i > 0 {
				b.WriteString(":\n")
			}
			b.WriteString(strings.Repeat("  ", i) + part)
		}
		b.WriteString(": null\n")
		return []byte(b.String())
	}
	for _, k := range keys {
		if err := decodeStrict(nested(k), &Config{}); err != nil {
			t.Errorf("Keys() lists %s, the decoder refuses it: %v", k, err)
		}
	}
	if err := decodeStrict(nested("postgres.replication.user"), &Config{}); err == nil {
		t.Error("the decoder accepted postgres.replication.user, which Keys() does not list")
	}
}

func TestParseConfigReplicaMethods(t *testing.T) {
	methods := `  create_replica_methods: [pgbackrest, basebackup]
  pgbackrest:
    command: pgbackrest --stanza=demo --delta restore
    keep_data: true
    no_params: true
  basebackup: [verbose, {max-rate: 10M}]
  recovery_conf: {restore_command: "pgbackrest --stanza=demo archive-get %f \"%p\""}
  pg_hba:
`
	c, err := parseEdited(t, "  pg_hba:\n", methods)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p := c.Postgres
	if got := p.ReplicaMethods(true); !slices.Equal(got, []string{"pgbackrest", "basebackup"}) {
		t.Errorf("methods = %v", got)
	}
	if m := p.Methods["pgbackrest"]; m.Command != "pgbackrest --stanza=demo --delta restore" || !m.KeepData || !m.NoParams {
		t.Errorf("pgbackrest section = %+v", m)
	}
	if !slices.Equal(p.Basebackup, []string{"--verbose", "--max-rate=10M"}) {
		t.Errorf("basebackup = %v", p.Basebackup)
	}
	if p.RecoveryConf.RestoreCommand != `pgbackrest --stanza=demo archive-get %f "%p"` {
		t.Errorf("restore_command = %q", p.RecoveryConf.RestoreCommand)
	}
}

func TestParseConfigBootstrapMethod(t *testing.T) {
	boot := `bootstrap:
  method: pitr
  initdb: [{encoding: UTF8}, data-checksums]
  pitr:
    command: pgbackrest --stanza=demo --delta restore
    no_params: true
    keep_existing_recovery_conf: true
    recovery_conf:
      restore_command: pgbackrest --stanza=demo archive-get %f "%p"
      recovery_target_time: "2026-12-06 04:00:00+00"
      recovery_target_action: promote
`
	c, err := parseEdited(t, "bootstrap:\n", boot)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	name, m, ok := c.Bootstrap.Custom()
	if !ok || name != "pitr" || !m.NoParams || !m.KeepExistingRecoveryConf || m.RecoveryConf["recovery_target_time"] != "2026-12-06 04:00:00+00" {
		t.Errorf("custom bootstrap = %q %+v %v", name, m, ok)
	}
	if !slices.Equal(c.Bootstrap.InitDB, []string{"--encoding=UTF8", "--data-checksums"}) {
		t.Errorf("initdb options = %v", c.Bootstrap.InitDB)
	}
}
