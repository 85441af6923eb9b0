package postgres

import (
	"math"
	"strings"
	"testing"
)

func TestCheckSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   any
		wantErr string // "" = accepted
	}{
		// Regent owns these.
		{"port", 5433, "postgres.listen"},
		{"listen_addresses", "*", "postgres.listen"},
		{"synchronous_standby_names", "*", "synchronous_mode"},
		{"hot_standby", "off", "managed by Regent"},
		{"recovery_target_time", "2026-01-01", "recovery target"},
		// Names.
		{"no_such_setting", 1, "unknown setting"},
		{"bad-name", 1, "not a valid setting name"},
		{"block_size", 8192, "read-only"},
		{"DateStyle", "ISO, MDY", ""},
		{"pg_stat_statements.max", "anything", ""},
		// Integers, with and without units.
		{"max_connections", 100, ""},
		{"max_connections", "100", ""},
		{"max_connections", 100.4, ""},
		{"max_connections", "1e3", ""},
		{"max_connections", "0x10", ""},
		{"max_connections", "lots", "not a number"},
		{"max_connections", "1_000", "takes no unit"},
		{"max_connections", 300000, "outside the valid range"},
		{"max_connections", "10MB", "takes no unit"},
		{"shared_buffers", "128MB", ""},
		{"shared_buffers", "1.5GB", ""},
		{"shared_buffers", 16384, ""},
		{"shared_buffers", "-5", "outside the valid range"},
		{"shared_buffers", "1kB", "outside the valid range"},
		{"work_mem", "4MB", ""},
		{"work_mem", "4Mb", "unit \"Mb\""},
		{"work_mem", "5B", "outside the valid range"},
		{"checkpoint_timeout", "30s", ""},
		{"checkpoint_timeout", 300, ""},
		{"checkpoint_timeout", "1d", ""},
		{"checkpoint_timeout", "2d", "outside the valid range"},
		{"statement_timeout", "5 min", ""},
		{"statement_timeout", "1h", ""},
		// Reals.
		{"checkpoint_completion_target", 0.9, ""},
		{"checkpoint_completion_target", 1.5, "outside the valid range"},
		{"checkpoint_completion_target", math.NaN(), "not a finite number"},
		{"vacuum_cost_delay", "2.5ms", ""},
		{"vacuum_cost_delay", "200ms", "outside the valid range"},
		// Booleans, as parse_bool reads them.
		{"jit", true, ""},
		{"jit", "off", ""},
		{"jit", "of", ""},
		{"jit", "t", ""},
		{"jit", "Yes", ""},
		{"jit", 1, ""},
		{"jit", "o", "not a boolean"},
		{"jit", "maybe", "not a boolean"},
		{"jit", 2, "not a boolean"},
		// Enums, with guc.c's hidden spellings.
		{"wal_level", "replica", ""},
		{"wal_level", "LOGICAL", ""},
		{"wal_level", "hot_standby", ""},
		{"wal_level", "foo", "not one of minimal, replica, logical"},
		{"synchronous_commit", "remote_apply", ""},
		{"synchronous_commit", "true", ""},
		{"synchronous_commit", "sometimes", "not one of"},
		{"log_min_messages", "debug", ""},
		{"default_transaction_isolation", "repeatable read", ""},
		// Strings and value types.
		{"archive_command", "cp %p /archive/%f", ""},
		{"archive_command", "a\nb", "line breaks"},
		{"work_mem", nil, "empty"},
		{"work_mem", []any{1}, "not a string, number or boolean"},
	} {
		err := CheckSetting(tc.name, tc.value)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckSetting(%s, %#v) = %v, want accepted", tc.name, tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckSetting(%s, %#v) = %v, want an error containing %q", tc.name, tc.value, err, tc.wantErr)
		}
	}
}

func TestCatalogue(t *testing.T) {
	if n := len(catalog); n < 300 {
		t.Fatalf("catalogue has %d settings; gucs/pg15.txt is truncated", n)
	}
	s, ok := LookupSetting("shared_buffers")
	if !ok || s.Unit != "8kB" || !s.NeedsRestart() {
		t.Errorf("shared_buffers = %+v, %v", s, ok)
	}
	if s, _ := LookupSetting("work_mem"); s.NeedsRestart() {
		t.Error("work_mem needs no restart")
	}
}

func TestSetDynamicParametersKeepsGoodOnes(t *testing.T) {
	i := &Instance{}
	if err := i.SetDynamicParameters(map[string]any{"work_mem": "4MB", "max_connections": 50}); err != nil {
		t.Fatal(err)
	}
	err := i.SetDynamicParameters(map[string]any{"work_mem": "8MB", "max_connections": "lots", "port": 5433})
	if err == nil || !strings.Contains(err.Error(), "postgresql.parameters.max_connections") || !strings.Contains(err.Error(), "postgresql.parameters.port") {
		t.Fatalf("err = %v, want both refused parameters named", err)
	}
	want := map[string]any{"work_mem": "8MB", "max_connections": 50}
	if len(i.dynamic) != len(want) || i.dynamic["work_mem"] != "8MB" || i.dynamic["max_connections"] != 50 {
		t.Errorf("dynamic = %v, want %v (the good edit applied, the bad one keeps the last good value, port never set)", i.dynamic, want)
	}
}
