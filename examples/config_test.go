package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// envRef matches ${VAR} as config.Parse expands it.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// readExample reads a file of this directory.
func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// setEnvRefs sets every ${VAR} the document references (commented-out
// lines included) to a placeholder value.
func setEnvRefs(t *testing.T, data []byte) {
	t.Helper()
	for _, m := range envRef.FindAllSubmatch(data, -1) {
		t.Setenv(string(m[1]), "example-"+strings.ToLower(string(m[1])))
	}
}

// TestRegentYMLParses: examples/regent.yml is accepted by config.Parse
// (strict keys, types and cross-field rules), and every value it annotates
// as the default is the default the code applies.
func TestRegentYMLParses(t *testing.T) {
	data := readExample(t, "regent.yml")
	setEnvRefs(t, data)
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatalf("config.Parse(examples/regent.yml):\n%v", err)
	}
	if got := cfg.Postgres.Superuser.Password.Reveal(); got != "example-pgsuperpass" {
		t.Errorf("postgres.superuser.password = %q, want ${PGSUPERPASS} expanded", got)
	}
	dyn, err := cfg.BootstrapDynamic()
	if err != nil {
		t.Fatalf("bootstrap.dcs: %v", err)
	}
	def := config.DefaultDynamic()
	checks := []struct {
		key       string
		got, want any
	}{
		{"namespace", cfg.Namespace, "/service/"},
		{"etcd.dial_timeout", cfg.Etcd.DialTimeout, dcs.DefaultDialTimeout},
		{"postgres.bin_dir", cfg.Postgres.BinDir, postgres.DefaultBinDir},
		{"postgres.superuser.username", cfg.Postgres.Superuser.Username, postgres.DefaultSuperuser},
		{"postgres.replication.username", cfg.Postgres.Replication.Username, postgres.DefaultReplicationUser},
		{"postgres.stop_timeout", cfg.Postgres.StopTimeout, postgres.DefaultStopTimeout},
		{"watchdog.mode", cfg.Watchdog.Mode, fencing.ModeOff},
		{"watchdog.device", cfg.Watchdog.Device, "/dev/watchdog"},
		{"watchdog.safety_margin", cfg.Watchdog.SafetyMargin, fencing.DefaultSafetyMargin},
		{"fence.timeout", cfg.Fence.Timeout, fencing.DefaultHookTimeout},
		{"fence.fast_failover", cfg.Fence.FastFailover, false},
		{"fence.suspect_after", cfg.Fence.SuspectAfter, fencing.DefaultSuspectAfter},
		{"callbacks.timeout", cfg.Callbacks.Timeout, config.DefaultCallbackTimeout},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "text"},
		{"bootstrap.dcs.ttl", dyn.TTL, def.TTL},
		{"bootstrap.dcs.loop_wait", dyn.LoopWait, def.LoopWait},
		{"bootstrap.dcs.retry_timeout", dyn.RetryTimeout, def.RetryTimeout},
		{"bootstrap.dcs.maximum_lag_on_failover", dyn.MaximumLagOnFailover, def.MaximumLagOnFailover},
		{"bootstrap.dcs.primary_start_timeout", dyn.PrimaryStartTimeout, def.PrimaryStartTimeout},
		{"bootstrap.dcs.primary_race_backoff", dyn.PrimaryRaceBackoff, def.PrimaryRaceBackoff},
		{"bootstrap.dcs.switchover_timeout", dyn.SwitchoverTimeout, def.SwitchoverTimeout},
		{"bootstrap.dcs.check_timeline", dyn.CheckTimeline, def.CheckTimeline},
		{"bootstrap.dcs.synchronous_mode", dyn.SynchronousMode, def.SynchronousMode},
		{"bootstrap.dcs.synchronous_mode_strict", dyn.SynchronousModeStrict, def.SynchronousModeStrict},
		{"bootstrap.dcs.synchronous_node_count", dyn.SynchronousNodeCount, def.SynchronousNodeCount},
		{"bootstrap.dcs.pause", dyn.Pause, def.Pause},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v in examples/regent.yml, but the code's default is %v: the file says it shows the default", c.key, c.got, c.want)
		}
	}
	// restapi.connect_address defaults to listen; the example sets both
	// because listen is a wildcard. Its default is Patroni's port.
	if restapi.DefaultListen != "127.0.0.1:8008" {
		t.Errorf("restapi.DefaultListen = %s; examples/regent.yml documents 127.0.0.1:8008", restapi.DefaultListen)
	}
}

// TestRegentYMLDocumentsEveryKey: every key of config.Config (its yaml
// tags, recursively), every cluster-wide bootstrap.dcs key Regent acts on
// and every tag with a meaning appears in examples/regent.yml, set or
// commented out ("# key: value" at the key's indentation).
func TestRegentYMLDocumentsEveryKey(t *testing.T) {
	documented, err := outlineKeys(readExample(t, "regent.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Keys()
	for _, k := range dynamicKeys(t) {
		want = append(want, "bootstrap.dcs."+k)
	}
	for _, tag := range []string{"nofailover", "noloadbalance", "nosync", "clonefrom", "failover_priority"} {
		want = append(want, "tags."+tag)
	}
	if len(want) < 40 {
		t.Fatalf("only %d config keys found by reflection: %v", len(want), want)
	}
	for _, k := range want {
		if !documented[k] {
			t.Errorf("examples/regent.yml does not document %s", k)
		}
	}
}

// TestRegentYMLCommentedKeysAreReal: with every commented-out setting
// uncommented, the file still decodes strictly into config.Config: no
// misspelt key, no wrongly typed value hides in a comment.
func TestRegentYMLCommentedKeysAreReal(t *testing.T) {
	data := readExample(t, "regent.yml")
	setEnvRefs(t, data)
	uncommented := commentedKey.ReplaceAll(data, []byte("$1$2"))
	if bytes.Equal(uncommented, data) {
		t.Fatal("no commented-out key found; the pattern no longer matches the file's style")
	}
	expanded := envRef.ReplaceAllFunc(uncommented, func(ref []byte) []byte {
		return []byte(os.Getenv(string(envRef.FindSubmatch(ref)[1])))
	})
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	var cfg config.Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("examples/regent.yml with its commented-out keys uncommented does not decode strictly: %v", err)
	}
	if len(cfg.Fence.Command) == 0 || len(cfg.Callbacks.OnRoleChange) == 0 || cfg.RestAPI.VerifyClient == "" {
		t.Errorf("uncommented keys were not decoded: fence.command %v, callbacks.on_role_change %v, restapi.verify_client %q",
			cfg.Fence.Command, cfg.Callbacks.OnRoleChange, cfg.RestAPI.VerifyClient)
	}
}

// commentedKey is a commented-out setting: "# key: value" where the "#"
// stands at the key's indentation. Prose lines never start with "word:".
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ([a-z_][a-z0-9_]*:(?:\s.*)?)$`)

// keyLine is a set or commented-out key line: indentation, key.
var keyLine = regexp.MustCompile(`^(\s*)(?:# )?([a-z_][a-z0-9_]*):(?:\s|$)`)

// outlineKeys returns the dotted paths of every key in a YAML document,
// set or commented out, from indentation alone.
func outlineKeys(data []byte) (map[string]bool, error) {
	type level struct {
		indent int
		key    string
	}
	var stack []level
	out := map[string]bool{}
	for n, line := range strings.Split(string(data), "\n") {
		if strings.ContainsRune(line, '\t') {
			return nil, fmt.Errorf("line %d: tab in indentation", n+1)
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, level{indent, m[2]})
		parts := make([]string, len(stack))
		for i, l := range stack {
			parts[i] = l.key
		}
		out[strings.Join(parts, ".")] = true
	}
	return out, nil
}

// dynamicKeys are the bootstrap.dcs keys, one per config.Dynamic
// field (Patroni's names). A field added to config.Dynamic fails the test
// until it is named here and documented in the example.
func dynamicKeys(t *testing.T) []string {
	t.Helper()
	byField := map[string][]string{
		"TTL": {"ttl"}, "LoopWait": {"loop_wait"}, "RetryTimeout": {"retry_timeout"},
		"MaximumLagOnFailover": {"maximum_lag_on_failover"}, "PrimaryStartTimeout": {"primary_start_timeout"},
		"PrimaryRaceBackoff": {"primary_race_backoff"},
		"SwitchoverTimeout":  {"switchover_timeout"}, "CheckTimeline": {"check_timeline"},
		"SynchronousMode": {"synchronous_mode"}, "SynchronousModeStrict": {"synchronous_mode_strict"},
		"SynchronousNodeCount": {"synchronous_node_count"}, "Pause": {"pause"},
		"FailsafeMode": {"failsafe_mode"},
		"Slots":        {"slots"}, "IgnoreSlots": {"ignore_slots"}, "MemberSlotsTTL": {"member_slots_ttl"},
		"PostgresParameters": {"postgresql", "postgresql.parameters"},
	}
	var keys []string
	dt := reflect.TypeOf(config.Dynamic{})
	for i := range dt.NumField() {
		names, ok := byField[dt.Field(i).Name]
		if !ok {
			t.Errorf("config.Dynamic.%s has no bootstrap.dcs key in this test: name it here and document it in examples/regent.yml", dt.Field(i).Name)
			continue
		}
		keys = append(keys, names...)
	}
	slices.Sort(keys)
	return keys
}
