package config

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/postgres"
)

// TestEncodePatchRefusesBadEdits: every edit a member would refuse or
// ignore is refused before etcd, with one line naming the key.
func TestEncodePatchRefusesBadEdits(t *testing.T) {
	wd := fencing.Config{SafetyMargin: 3 * time.Second}
	base := map[string]any{"ttl": int64(10), "loop_wait": int64(1), "retry_timeout": int64(3)}
	params := func(name string, v any) string {
		raw, _ := json.Marshal(map[string]any{"postgresql": map[string]any{"parameters": map[string]any{name: v}}})
		return string(raw)
	}
	tests := []struct {
		name, patch string
		want        []string // parts of the error
	}{
		{"managed: port", params("port", 5433), []string{"postgresql.parameters.port: set postgres.listen instead"}},
		{"managed: listen_addresses", params("listen_addresses", "*"), []string{"postgresql.parameters.listen_addresses: set postgres.listen"}},
		{"managed: synchronous_standby_names", params("synchronous_standby_names", "*"),
			[]string{"postgresql.parameters.synchronous_standby_names: managed by Regent"}},
		{"unknown parameter", params("work_mme", "4MB"), []string{"postgresql.parameters.work_mme: unknown setting"}},
		{"wrong type", params("max_connections", "lots"), []string{"postgresql.parameters.max_connections:", `"lots" is not a number`}},
		{"out of range", params("shared_buffers", "-5"), []string{"postgresql.parameters.shared_buffers:", "outside the valid range"}},
		{"bad enum", params("wal_level", "maximal"), []string{"postgresql.parameters.wal_level:", "not one of"}},
		{"read-only", params("block_size", 8192), []string{"postgresql.parameters.block_size: read-only"}},
		{"one bad among good ones", `{"postgresql":{"parameters":{"work_mem":"8MB","port":5433}}}`,
			[]string{"postgresql.parameters.port:"}},
		{"parameters not an object", `{"postgresql":{"parameters":"work_mem=4MB"}}`, []string{"postgresql.parameters: must be an object"}},
		{"postgresql not an object", `{"postgresql":true}`, []string{"postgresql: must be an object"}},
		{"NaN ttl", `{"ttl":"NaN"}`, []string{`ttl: NaN is not a number of seconds`}},
		{"NaN switchover_timeout", `{"switchover_timeout":"NaN"}`, []string{"switchover_timeout: NaN is not a number of seconds"}},
		{"infinite loop_wait", `{"loop_wait":"Inf"}`, []string{"loop_wait: Inf is not a number of seconds"}},
		{"negative duration", `{"primary_start_timeout":-5}`, []string{"primary_start_timeout: -5 seconds is out of range"}},
		{"absurd duration", `{"switchover_timeout":1e12}`, []string{"switchover_timeout: 1e+12 seconds is out of range"}},
		{"not a boolean", `{"pause":"maybe"}`, []string{"pause:", "not a boolean"}},
		{"negative lag", `{"maximum_lag_on_failover":-1}`, []string{"maximum_lag_on_failover: -1 is negative"}},
		{"sync node count 0", `{"synchronous_node_count":0}`, []string{"synchronous_node_count: 0 is outside 1 .. 64"}},
		{"unknown top-level key", `{"ttll":20}`, []string{`ttll: unknown key (did you mean "ttl"?)`}},
		{"failsafe_mode not a boolean", `{"failsafe_mode":"sometimes"}`, []string{"failsafe_mode:", "not a boolean"}},
		{"standby_cluster: port out of range", `{"standby_cluster":{"host":"10.0.0.9","port":70000}}`, []string{"standby_cluster: port: 70000 is outside 1 .. 65535"}},
		{"standby_cluster: bad slot", `{"standby_cluster":{"host":"h","primary_slot_name":"Bad-Slot"}}`, []string{"standby_cluster: primary_slot_name: a slot name has only"}},
		{"standby_cluster: unknown subkey", `{"standby_cluster":{"hots":"h"}}`, []string{`standby_cluster: hots: unknown key (did you mean "host"?)`}},
		{"standby_cluster: no host", `{"standby_cluster":{"port":5432}}`, []string{"standby_cluster: host: required"}},
		{"standby_cluster: host not a string", `{"standby_cluster":{"host":5}}`, []string{"standby_cluster: host: must be a string"}},
		{"standby_cluster: methods not a list", `{"standby_cluster":{"host":"h","create_replica_methods":"basebackup"}}`, []string{"standby_cluster: create_replica_methods: must be a list"}},
		{"standby_cluster: not an object", `{"standby_cluster":"h:5432"}`, []string{"standby_cluster: must be an object"}},
		{"slots: logical without plugin", `{"slots":{"cdc":{"type":"logical","database":"app"}}}`, []string{"slots: cdc: a logical slot needs database and plugin"}},
		{"slots: bad type", `{"slots":{"s1":{"type":"phisical"}}}`, []string{`slots: s1: type: "phisical" is neither physical nor logical`}},
		{"slots: bad name", `{"slots":{"My-Slot":{"type":"physical"}}}`, []string{"slots: My-Slot: a slot name has only"}},
		{"slots: unknown attribute", `{"slots":{"s1":{"typ":"physical"}}}`, []string{`slots: s1: typ: unknown key (did you mean "type"?)`}},
		{"slots: not an object", `{"slots":["s1"]}`, []string{"slots: must be an object"}},
		{"ignore_slots: empty entry", `{"ignore_slots":[{}]}`, []string{"ignore_slots: [0]: an entry sets at least one"}},
		{"ignore_slots: not a list", `{"ignore_slots":{"name":"x"}}`, []string{"ignore_slots: must be a list"}},
		{"ignore_slots: number", `{"ignore_slots":[{"name":5}]}`, []string{"ignore_slots: [0]: name: must be a non-empty string"}},
		{"member_slots_ttl", `{"member_slots_ttl":-1}`, []string{"member_slots_ttl: -1 seconds is out of range"}},
		{"maximum_lag_on_syncnode", `{"maximum_lag_on_syncnode":1048576}`, []string{"maximum_lag_on_syncnode: not supported yet"}},
		{"primary_stop_timeout", `{"primary_stop_timeout":30}`, []string{"primary_stop_timeout: not supported yet", "postgres.stop_timeout"}},
		{"use_pg_rewind false", `{"postgresql":{"use_pg_rewind":false}}`, []string{"postgresql.use_pg_rewind: not supported yet", "only true"}},
		{"use_slots false", `{"postgresql":{"use_slots":"off"}}`, []string{"postgresql.use_slots: not supported yet"}},
		{"pg_hba", `{"postgresql":{"pg_hba":["host all all 0.0.0.0/0 trust"]}}`, []string{"postgresql.pg_hba: not supported yet", "postgres.pg_hba"}},
		{"unknown postgresql key", `{"postgresql":{"parameter":{}}}`, []string{`postgresql.parameter: unknown key (did you mean "parameters"?)`}},
		{"timing rule", `{"ttl":4}`, []string{"loop_wait + 2·retry_timeout"}},
		{"this member's safety margin", `{"ttl":4,"retry_timeout":1}`, []string{"watchdog.safety_margin"}},
		{"every refusal at once", `{"standby_cluster":{"port":0},"ttl":"NaN"}`, []string{"standby_cluster: port: 0 is outside", "ttl: NaN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patch, err := DecodeObject([]byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodePatch(base, patch, wd)
			if err == nil {
				t.Fatalf("EncodePatch(%s) = %s, want a refusal", tt.patch, got)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
		})
	}
}

// TestEncodePatchAcceptsWhatRegentApplies: good edits pass, Patroni keys
// with the value Regent has anyway pass, and a key already in etcd that an
// edit would refuse does not block an unrelated edit.
func TestEncodePatchAcceptsWhatRegentApplies(t *testing.T) {
	wd := fencing.Config{SafetyMargin: 3 * time.Second}
	fromPatroni := map[string]any{"ttl": int64(10), "loop_wait": int64(1), "retry_timeout": int64(3),
		"failsafe_mode": true, "foreign": "x",
		"postgresql": map[string]any{"use_pg_rewind": false, "parameters": map[string]any{"port": int64(5433)}}}
	tests := []struct {
		name, patch string
		base        map[string]any
		want        string
	}{
		{"parameters", `{"postgresql":{"parameters":{"work_mem":"8MB","max_connections":"200","my.ext_setting":"x"}}}`, nil,
			`{"postgresql":{"parameters":{"max_connections":"200","my.ext_setting":"x","work_mem":"8MB"}}}`},
		{"slots", `{"slots":{"arch":{"type":"physical"},"cdc":{"type":"logical","database":"app","plugin":"pgoutput"}},"ignore_slots":[{"name":"x","type":"physical"}],"member_slots_ttl":0}`, nil,
			`{"ignore_slots":[{"name":"x","type":"physical"}],"member_slots_ttl":0,"slots":{"arch":{"type":"physical"},"cdc":{"database":"app","plugin":"pgoutput","type":"logical"}}}`},
		{"a duration as a numeric string", `{"switchover_timeout":"45"}`, nil, `{"switchover_timeout":"45"}`},
		{"failsafe_mode on", `{"failsafe_mode":true}`, nil, `{"failsafe_mode":true}`},
		{"Patroni keys off", `{"failsafe_mode":false,"slots":{},"ignore_slots":[],"standby_cluster":{},"maximum_lag_on_syncnode":-1,"max_timelines_history":0,"postgresql":{"use_pg_rewind":true,"use_slots":true}}`, nil,
			`{"failsafe_mode":false,"ignore_slots":[],"max_timelines_history":0,"maximum_lag_on_syncnode":-1,"postgresql":{"use_pg_rewind":true,"use_slots":true},"slots":{},"standby_cluster":{}}`},
		{"deleting a refused key", `{"failsafe_mode":null,"postgresql":{"parameters":{"port":null}}}`, fromPatroni,
			`{"foreign":"x","loop_wait":1,"postgresql":{"parameters":{},"use_pg_rewind":false},"retry_timeout":3,"ttl":10}`},
		{"an unrelated edit over foreign keys", `{"pause":true}`, fromPatroni,
			`{"failsafe_mode":true,"foreign":"x","loop_wait":1,"pause":true,"postgresql":{"parameters":{"port":5433},"use_pg_rewind":false},"retry_timeout":3,"ttl":10}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patch, err := DecodeObject([]byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodePatch(tt.base, patch, wd)
			if err != nil || string(got) != tt.want {
				t.Errorf("EncodePatch = %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}

// TestSecondsDurations: a bare number is seconds; NaN, infinities,
// negative and absurd values are refused rather than wrapped around.
func TestSecondsDurations(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Duration
		wantErr string
	}{
		{int64(15), 15 * time.Second, ""},
		{15.5, 15500 * time.Millisecond, ""},
		{"15", 15 * time.Second, ""},
		{" 0 ", 0, ""},
		{int64(86400), 24 * time.Hour, ""},
		{"NaN", 0, "NaN is not a number of seconds"},
		{math.NaN(), 0, "NaN is not a number of seconds"},
		{"-Inf", 0, "-Inf is not a number of seconds"},
		{math.Inf(1), 0, "+Inf is not a number of seconds"},
		{int64(-1), 0, "-1 seconds is out of range (0 to 86400)"},
		{int64(86401), 0, "86401 seconds is out of range"},
		{1e300, 0, "out of range"},
		{"15s", 0, "is not a number"},
		{true, 0, "is not a number"},
	}
	for _, tt := range tests {
		got, err := seconds(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("seconds(%v) = %s, %v; want %s", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("seconds(%v) = %s, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

// TestApplyDynamicKeepsGoodValues: a member applies what it can; a bad
// value keeps its current one, and timings it cannot accept keep its
// current timings while pause, synchronous_mode and parameters apply.
func TestApplyDynamicKeepsGoodValues(t *testing.T) {
	wd := fencing.Config{SafetyMargin: 3 * time.Second}
	cur := DefaultDynamic()
	cur.TTL, cur.SwitchoverTimeout = 12*time.Second, 40*time.Second
	tests := []struct {
		name    string
		raw     string
		want    func(d *Dynamic)
		wantErr []string
	}{
		{"applies fully", `{"ttl":20,"loop_wait":2,"pause":true}`, func(d *Dynamic) {
			d.TTL, d.LoopWait, d.Pause = 20*time.Second, 2*time.Second, true
		}, nil},
		{"absent keys take the defaults", `{}`, func(*Dynamic) {}, nil},
		{"a bad value keeps the current one", `{"switchover_timeout":"NaN","pause":"on"}`, func(d *Dynamic) {
			d.SwitchoverTimeout, d.Pause = 40*time.Second, true
		}, []string{"switchover_timeout: NaN"}},
		{"timings this member's margin refuses keep its timings", `{"ttl":4,"loop_wait":1,"retry_timeout":1,"pause":true,"synchronous_mode":true,"postgresql":{"parameters":{"work_mem":"8MB"}}}`,
			func(d *Dynamic) {
				d.TTL, d.Pause, d.SynchronousMode = 12*time.Second, true, SyncOn
				d.PostgresParameters = map[string]any{"work_mem": "8MB"}
			}, []string{"watchdog.safety_margin"}},
		{"synchronous replication is off in a standby cluster", `{"synchronous_mode":"quorum","standby_cluster":{"host":"dr","port":5433}}`, func(d *Dynamic) {
			d.StandbyCluster = &StandbyCluster{Host: "dr", Port: 5433}
		}, nil},
		{"timing rule broken", `{"ttl":4,"retry_timeout":3}`, func(d *Dynamic) { d.TTL = 12 * time.Second },
			[]string{"loop_wait + 2·retry_timeout"}},
		{"unparsable key reads as {}", `not json`, func(*Dynamic) {}, nil},
		{"foreign and unsupported keys are ignored", `{"maximum_lag_on_syncnode":5,"foreign":1}`, func(*Dynamic) {}, nil},
		{"standby_cluster", `{"standby_cluster":{"host":"dr-haproxy","primary_slot_name":"dr","restore_command":"cp /a/%f %p","create_replica_methods":["basebackup"]}}`,
			func(d *Dynamic) {
				d.StandbyCluster = &StandbyCluster{Host: "dr-haproxy", Port: 5432, PrimarySlotName: "dr", RestoreCommand: "cp /a/%f %p", CreateReplicaMethods: []string{"basebackup"}}
			}, nil},
		{"standby_cluster empty is off", `{"standby_cluster":{}}`, func(*Dynamic) {}, nil},
		{"standby_cluster archive only", `{"standby_cluster":{"restore_command":"cp /a/%f %p"}}`,
			func(d *Dynamic) { d.StandbyCluster = &StandbyCluster{RestoreCommand: "cp /a/%f %p"} }, nil},
		{"failsafe_mode", `{"failsafe_mode":"on"}`, func(d *Dynamic) { d.FailsafeMode = true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := DefaultDynamic()
			tt.want(&want)
			got, err := ApplyDynamic([]byte(tt.raw), cur, wd)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ApplyDynamic (-want +got):\n%s", d)
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			for _, part := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), part) {
					t.Errorf("err = %v, want it to contain %q", err, part)
				}
			}
		})
	}
}

// TestRegentYMLDurations: a bare number in regent.yml is seconds, as in
// Patroni; Go's form works too; NaN, negative and absurd values are
// refused naming the key.
func TestRegentYMLDurations(t *testing.T) {
	t.Setenv("PGSUPERPASS", "s")
	t.Setenv("PGREPLPASS", "r")
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"15", 15 * time.Second, ""},
		{"4.5", 4500 * time.Millisecond, ""},
		{`"15"`, 15 * time.Second, ""},
		{"15s", 15 * time.Second, ""},
		{"1500ms", 1500 * time.Millisecond, ""},
		{".nan", 0, `watchdog.safety_margin: ".nan" is not a duration`},
		{"NaN", 0, "watchdog.safety_margin: NaN is not a number of seconds"},
		{"-5", 0, "watchdog.safety_margin: -5 seconds is out of range"},
		{"-5s", 0, "watchdog.safety_margin: -5s is out of range"},
		{"1e9", 0, "watchdog.safety_margin: 1e9 seconds is out of range"},
		{"9999h", 0, "watchdog.safety_margin: 9999h0m0s is out of range"},
		{"soon", 0, `watchdog.safety_margin: "soon" is not a duration`},
		{"[1]", 0, "watchdog.safety_margin: must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			// ttl 30 leaves room for a 15 s margin.
			doc := strings.Replace(goodConfig, "watchdog: {mode: off}", "watchdog: {mode: off, safety_margin: "+tt.value+"}", 1)
			doc = strings.Replace(doc, "dcs: {ttl: 10,", "dcs: {ttl: 30,", 1)
			c, err := Parse([]byte(doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse with safety_margin %s: %v, want %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil && !strings.Contains(err.Error(), "safety_margin: ") {
				t.Fatalf("Parse: %v", err)
			}
			if c != nil && c.Watchdog.SafetyMargin != tt.want {
				t.Errorf("safety_margin %s = %s, want %s", tt.value, c.Watchdog.SafetyMargin, tt.want)
			}
		})
	}
}

// TestParseDynamicSlots: the slot keys parse into what the agent applies,
// Patroni's older names included.
func TestParseDynamicSlots(t *testing.T) {
	dyn, err := ParseDynamic([]byte(`{"permanent_slots":{"arch":{"type":"physical"},"cdc":{"database":"app","plugin":"test_decoding"},"bare":null},
		"ignore_slots":[{"name":"barman"},{"type":"logical","plugin":"pgoutput"}],"member_slots_ttl":"60"}`))
	if err != nil {
		t.Fatal(err)
	}
	wantSlots := []postgres.Slot{{Name: "arch", Type: "physical"}, {Name: "bare", Type: "physical"},
		{Name: "cdc", Type: "logical", Database: "app", Plugin: "test_decoding"}}
	if diff := cmp.Diff(wantSlots, dyn.Slots); diff != "" {
		t.Errorf("Slots (-want +got):\n%s", diff)
	}
	wantIgnore := []postgres.SlotMatch{{Name: "barman"}, {Type: "logical", Plugin: "pgoutput"}}
	if diff := cmp.Diff(wantIgnore, dyn.IgnoreSlots); diff != "" {
		t.Errorf("IgnoreSlots (-want +got):\n%s", diff)
	}
	if dyn.MemberSlotsTTL != time.Minute {
		t.Errorf("MemberSlotsTTL = %s, want 1m", dyn.MemberSlotsTTL)
	}
	if def, _ := ParseDynamic(nil); def.MemberSlotsTTL != DefaultMemberSlotsTTL || def.Slots != nil {
		t.Errorf("defaults: member_slots_ttl %s, slots %v", def.MemberSlotsTTL, def.Slots)
	}
}
