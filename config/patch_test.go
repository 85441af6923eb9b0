package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/fencing"
)

func TestMergePatch(t *testing.T) {
	base := map[string]any{"ttl": int64(10), "loop_wait": int64(1),
		"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "4MB", "max_connections": int64(100)}}}
	patch := map[string]any{"ttl": int64(20), "loop_wait": nil, "pause": true,
		"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "8MB", "max_connections": nil}}}
	got := MergePatch(base, patch)
	want := map[string]any{"ttl": int64(20), "pause": true,
		"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "8MB"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("MergePatch (-want +got):\n%s", d)
	}
	if base["ttl"] != int64(10) || base["loop_wait"] != int64(1) {
		t.Errorf("MergePatch modified its base: %v", base)
	}
}

func TestDecodeObjectKeepsIntegers(t *testing.T) {
	got, err := DecodeObject([]byte(`{"ttl": 20, "lag": 1.5, "big": 9007199254740993, "postgresql": {"parameters": {"max_connections": 100}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ttl": int64(20), "lag": 1.5, "big": int64(9007199254740993),
		"postgresql": map[string]any{"parameters": map[string]any{"max_connections": int64(100)}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("DecodeObject (-want +got):\n%s", d)
	}
	for _, bad := range []string{`[1,2]`, `null`, `{"ttl":`, ``} {
		if _, err := DecodeObject([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("DecodeObject(%q) = %v, want a 'not a JSON object' error", bad, err)
		}
	}
}

func TestEncodeDynamic(t *testing.T) {
	wd := fencing.Config{SafetyMargin: 5 * time.Second}
	tests := []struct {
		name    string
		in      map[string]any
		want    string // JSON, or a part of the error
		wantErr bool
	}{
		{"valid", map[string]any{"ttl": int64(20), "pause": "on", "failsafe_mode": false},
			`{"failsafe_mode":false,"pause":"on","ttl":20}`, false},
		{"a foreign key is refused by name", map[string]any{"ttl": int64(20), "foreign": "x"},
			`invalid config: foreign: unknown key`, true},
		{"a flag as PATCH decodes 1 (int64)", map[string]any{"pause": int64(1)}, `{"pause":1}`, false},
		{"bad value names the key", map[string]any{"ttl": "abc"}, `invalid config: ttl: "abc" is not a number`, true},
		{"timing rule, one line", map[string]any{"ttl": int64(4), "loop_wait": int64(1), "retry_timeout": int64(3)},
			"invalid config: loop_wait: loop_wait + 2·retry_timeout", true},
		{"safety margin against this member's watchdog", map[string]any{"ttl": int64(6), "loop_wait": int64(1), "retry_timeout": int64(1)},
			"invalid config: watchdog.safety_margin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeDynamic(tt.in, wd)
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n")):
				t.Errorf("err = %v, want one line containing %q", err, tt.want)
			case !tt.wantErr && (err != nil || string(got) != tt.want):
				t.Errorf("EncodeDynamic = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}
