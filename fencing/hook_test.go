package fencing_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/fencing"
)

// script writes a shell script into a temp dir and returns a command that
// runs it through /bin/sh (not exec'ing the fresh file, which can fail with
// ETXTBSY while another test forks).
func script(t *testing.T, body string, args ...string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fence.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return append([]string{"/bin/sh", p}, args...)
}

func TestHookNotConfigured(t *testing.T) {
	res, err := fencing.HookConfig{}.Run(t.Context(), "pg1", "postgres://pg1:5432/postgres", "demo")
	if err != nil || res != (fencing.HookResult{}) {
		t.Fatalf("Run = %+v, %v; want zero result, nil", res, err)
	}
}

func TestHookSuccessGetsTargetInEnvironment(t *testing.T) {
	c := fencing.HookConfig{Command: script(t,
		`echo "target=$REGENT_FENCE_TARGET url=$REGENT_FENCE_TARGET_CONN_URL scope=$REGENT_SCOPE args=$*"
echo "to stderr" >&2
`, "--host")}
	c.SetDefaults()
	res, err := c.Run(t.Context(), "pg1", "postgres://10.0.0.1:5432/postgres", "demo")
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	want := "target=pg1 url=postgres://10.0.0.1:5432/postgres scope=demo args=--host\nto stderr\n"
	if diff := cmp.Diff(want, res.Output); diff != "" {
		t.Errorf("Output (-want +got):\n%s", diff)
	}
	if !res.Ran || res.ExitCode != 0 || res.Err != "" || res.Duration <= 0 {
		t.Errorf("result = %+v, want ran, exit 0, no error, a duration", res)
	}
}

func TestHookNonZeroExit(t *testing.T) {
	c := fencing.HookConfig{Command: script(t, "echo 'BMC unreachable' >&2\nexit 3\n"), Timeout: 10 * time.Second}
	res, err := c.Run(t.Context(), "pg1", "", "demo")
	if !errors.Is(err, fencing.ErrFenceFailed) {
		t.Fatalf("Run error = %v, want ErrFenceFailed", err)
	}
	if !res.Ran || res.ExitCode != 3 || res.Err == "" || res.Output != "BMC unreachable\n" {
		t.Errorf("result = %+v, want ran, exit 3, a reason, the output", res)
	}
}

func TestHookCannotStart(t *testing.T) {
	c := fencing.HookConfig{Command: []string{filepath.Join(t.TempDir(), "missing")}, Timeout: time.Second}
	res, err := c.Run(t.Context(), "pg1", "", "demo")
	if !errors.Is(err, fencing.ErrFenceFailed) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Run error = %v, want ErrFenceFailed wrapping os.ErrNotExist", err)
	}
	if res.Ran || res.ExitCode != -1 || res.Err == "" {
		t.Errorf("result = %+v, want not ran, exit -1, a reason", res)
	}
}

func TestHookOutputKeepsTail(t *testing.T) {
	// 5000 bytes of noise, then the line that matters, on stderr.
	c := fencing.HookConfig{Command: script(t, `i=0
while [ $i -lt 50 ]; do printf '%099d\n' $i; i=$((i+1)); done
echo "power is off" >&2
`), Timeout: 10 * time.Second}
	res, err := c.Run(t.Context(), "pg1", "", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) > 2048 || len(res.Output) < 2000 {
		t.Errorf("len(Output) = %d, want the last 2 KiB", len(res.Output))
	}
	if !strings.HasSuffix(res.Output, "power is off\n") {
		t.Errorf("Output does not end with the last line: …%q", res.Output[max(0, len(res.Output)-40):])
	}
}

func TestHookCancelledByCaller(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := fencing.HookConfig{Command: script(t, "sleep 1000\n"), Timeout: time.Minute}
	_, err := c.Run(ctx, "pg1", "", "demo")
	if !errors.Is(err, fencing.ErrFenceFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want ErrFenceFailed and context.Canceled", err)
	}
}

func TestHookConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     fencing.HookConfig
		wantKey string // "" = valid
	}{
		{name: "disabled", cfg: fencing.HookConfig{}},
		{name: "absolute command", cfg: fencing.HookConfig{Command: []string{"/usr/local/bin/ipmi-off", "--host"}}},
		{name: "relative command", cfg: fencing.HookConfig{Command: []string{"ipmi-off"}}, wantKey: "fence.command"},
		{name: "negative timeout", cfg: fencing.HookConfig{Timeout: -time.Second}, wantKey: "fence.timeout"},
		{name: "fast failover with a command", cfg: fencing.HookConfig{Command: []string{"/usr/local/bin/ipmi-off"}, FastFailover: true}},
		{name: "fast failover without a command", cfg: fencing.HookConfig{FastFailover: true}, wantKey: "fence.fast_failover"},
		{name: "negative suspect_after", cfg: fencing.HookConfig{SuspectAfter: -time.Second}, wantKey: "fence.suspect_after"},
		{name: "suspect_after longer than a minute", cfg: fencing.HookConfig{SuspectAfter: 2 * time.Minute}, wantKey: "fence.suspect_after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if tt.cfg.Timeout != fencing.DefaultHookTimeout || tt.cfg.SuspectAfter != fencing.DefaultSuspectAfter {
					t.Errorf("after SetDefaults: Timeout = %s, SuspectAfter = %s", tt.cfg.Timeout, tt.cfg.SuspectAfter)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantKey)
			}
		})
	}
}
