package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
	"github.com/regent-ha/regent/config"
)

// TestValidateWarnsAboutLockOut: a pg_hba line that turns Regent's
// replication away is a warning on stderr, not a failure; Debian's peer
// line is no warning at all.
func TestValidateWarnsAboutLockOut(t *testing.T) {
	for _, tc := range []struct {
		hba, warn string
	}{
		{"    - local all postgres peer", ""},
		{"    - host replication all 10.0.0.0/8 reject", `warning: postgres.pg_hba[0] "host replication all 10.0.0.0/8 reject" would turn away the members' replication connections`},
	} {
		path := testconfig.Write(t, testconfig.LoopbackAPI, tc.hba+"\n")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != exitOK {
			t.Fatalf("validate with %q: exit %d\n%s", tc.hba, code, stderr.String())
		}
		if tc.warn == "" && stderr.Len() != 0 || !strings.Contains(stderr.String(), tc.warn) {
			t.Errorf("validate with %q: stderr %q, want %q", tc.hba, stderr.String(), tc.warn)
		}
		if !strings.HasSuffix(stdout.String(), ": ok\n") {
			t.Errorf("validate with %q: stdout %q", tc.hba, stdout.String())
		}
	}
}

// patroniTimings is testconfig's regent.yml with Patroni's timings (ttl 30,
// loop_wait 10, retry_timeout 10), which need a safety margin of 11 s to
// 19 s, and the watchdog section and bootstrap parameters given.
func patroniTimings(watchdog, params string) string {
	doc := testconfig.Doc(testconfig.LoopbackAPI, "    - local all postgres peer\n")
	doc = strings.Replace(doc, "dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3}",
		"dcs: {ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: {parameters: {"+params+"}}}", 1)
	return strings.Replace(doc, "watchdog: {mode: off}", "watchdog: {mode: off, "+watchdog+"}", 1)
}

func runOn(t *testing.T, doc string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append(args, "-c", testconfig.WriteDoc(t, doc)), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestSafetyMarginIsSecondsAsInPatroni (#16): a bare number is seconds,
// as Patroni reads every duration: safety_margin 15 fits Patroni's
// timings, where 15 nanoseconds (or 5 s) would not.
func TestSafetyMarginIsSecondsAsInPatroni(t *testing.T) {
	for _, tc := range []struct {
		margin string
		code   int
		want   string
	}{
		{"15", exitOK, ": ok"},
		{"15s", exitOK, ": ok"},
		{"5", exitUsage, "watchdog.safety_margin: 5s must be ≥ loop_wait + 1s (11s)"},
		{"NaN", exitUsage, "watchdog.safety_margin: NaN is not a number of seconds"},
	} {
		code, stdout, stderr := runOn(t, patroniTimings("safety_margin: "+tc.margin, "work_mem: 8MB"), "validate")
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("validate with safety_margin %s: exit %d, output %q; want exit %d and %q", tc.margin, code, stdout+stderr, tc.code, tc.want)
		}
	}
	cfg, err := config.Parse([]byte(patroniTimings("safety_margin: 15", "work_mem: 8MB")))
	if err != nil || cfg.Watchdog.SafetyMargin != 15*time.Second {
		t.Fatalf("safety_margin: 15 loads as %v (%v), want 15s", cfg.Watchdog.SafetyMargin, err)
	}
}

// TestUnknownParameterIsAConfigError (#16): a parameter PostgreSQL would
// refuse fails `regent validate` and the agent's start alike with exit
// status 2 (a config error systemd does not restart), naming the key —
// in bootstrap.dcs as in postgres.parameters.
func TestUnknownParameterIsAConfigError(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"bootstrap.dcs", patroniTimings("safety_margin: 15", "work_mme: 8MB"),
			"bootstrap.dcs.postgresql.parameters.work_mme: unknown setting"},
		{"managed in bootstrap.dcs", patroniTimings("safety_margin: 15", "port: 5433"),
			"bootstrap.dcs.postgresql.parameters.port: set postgres.listen instead"},
		{"postgres.parameters", strings.Replace(patroniTimings("safety_margin: 15", ""), "  pg_hba:", "  parameters: {work_mme: 8MB}\n  pg_hba:", 1),
			"postgres.parameters.work_mme: unknown setting"},
	} {
		for _, args := range [][]string{{"validate"}, nil} {
			code, _, stderr := runOn(t, tc.doc, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s, regent %v: exit %d, stderr %q; want exit 2 naming %q", tc.name, args, code, stderr, tc.want)
			}
		}
	}
}
