package agent

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres/pgtest"
)

// TestMemberThatCannotApplyTheConfigSaysSoOnce (#16): a member applies
// what it can of the cluster config, keeps its current values for the
// rest, and shows what it could not apply — member key, GET /patroni,
// /metrics — within the tick that read it, logging once per change, and
// clears it when a later config applies fully.
func TestMemberThatCannotApplyTheConfigSaysSoOnce(t *testing.T) {
	pg := pgtest.NewEmpty(7000000000000000001)
	h := newLoopHarness(t, newStore(), pg)
	var logs bytes.Buffer
	h.agent.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	h.agent.metrics = NewMetrics(reg)
	h.bootstrapLeader()
	timings := map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range timings {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	step := func(cfg map[string]any, ticks int) {
		t.Helper()
		h.setDynamic(cfg)
		for range ticks {
			h.advance(time.Second)
			h.tick()
		}
	}
	shows := func(want string) {
		t.Helper()
		snap := h.pub.get().Status.Regent.ConfigError
		raw, _, err := h.dcs.Get(t.Context(), h.dcs.Keys().Member("pg1"))
		if err != nil {
			t.Fatal(err)
		}
		var m dcs.Member
		if err := json.Unmarshal(raw.Data, &m); err != nil {
			t.Fatal(err)
		}
		gauge := testutil.ToFloat64(h.agent.metrics.configError)
		for where, got := range map[string]string{"GET /patroni": snap, "member key": m.ConfigError} {
			if want == "" && got != "" || !strings.Contains(got, want) {
				t.Errorf("%s config_error = %q, want %q", where, got, want)
			}
		}
		if wantGauge := b2f(want != ""); gauge != wantGauge {
			t.Errorf("regent_config_error = %v, want %v", gauge, wantGauge)
		}
	}
	warns := func() int {
		return strings.Count(logs.String(), "level=WARN msg=\"cannot apply the cluster config fully")
	}

	// A refused parameter does not drop the valid one of the same edit.
	step(with(map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "8MB", "port": 5433}}}), 1)
	shows("postgresql.parameters.port: set postgres.listen instead")
	if d := cmp.Diff(map[string]any{"work_mem": "8MB"}, pg.DynamicParameters()); d != "" {
		t.Errorf("parameters in effect (-want +got):\n%s", d)
	}
	step(with(map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "8MB", "port": 5433}}}), 3)
	if n := warns(); n != 1 {
		t.Errorf("%d WARN lines over 4 ticks with the same error, want 1:\n%s", n, logs.String())
	}

	// Timings this member's safety margin (3 s) refuses: it keeps its own
	// timings and applies everything else.
	step(map[string]any{"ttl": 4, "loop_wait": 1, "retry_timeout": 1, "pause": true, "synchronous_mode": true,
		"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "16MB"}}}, 1)
	shows("watchdog.safety_margin")
	if d := h.agent.dyn; d.TTL != 10*time.Second || d.RetryTimeout != 3*time.Second || !d.Pause || !d.SynchronousMode.Enabled() {
		t.Errorf("dynamic config in effect = ttl %s retry_timeout %s pause %v synchronous_mode %v; want the current timings kept, pause and synchronous_mode applied",
			d.TTL, d.RetryTimeout, d.Pause, d.SynchronousMode)
	}
	if got := pg.DynamicParameters()["work_mem"]; got != "16MB" {
		t.Errorf("work_mem = %v, want 16MB applied beside refused timings", got)
	}
	if n := warns(); n != 2 {
		t.Errorf("%d WARN lines, want 2 (one per change)", n)
	}

	// A later config that applies fully clears it, once.
	step(with(nil), 2)
	shows("")
	if n := strings.Count(logs.String(), "cluster config applies fully again"); n != 1 {
		t.Errorf("%d INFO lines for the clearing, want 1:\n%s", n, logs.String())
	}
	if n := warns(); n != 2 {
		t.Errorf("%d WARN lines after the clearing, want still 2", n)
	}
}
