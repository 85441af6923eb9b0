package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPlanStop(t *testing.T) {
	const s = time.Second
	const ms = time.Millisecond
	tests := []struct {
		name   string
		from   StopMode
		budget time.Duration
		want   stopPlan
	}{
		{
			name: "fencing immediate, 5 s: SIGKILL with a quarter left",
			from: StopImmediate, budget: 5 * s,
			want: stopPlan{Stages: []stopStage{{StopImmediate, 0}}, KillAt: 3750 * ms, End: 5 * s},
		},
		{
			name: "fencing immediate inside a 3 s safety margin",
			from: StopImmediate, budget: 3 * s,
			want: stopPlan{Stages: []stopStage{{StopImmediate, 0}}, KillAt: 2250 * ms, End: 3 * s},
		},
		{
			name: "immediate, 1 s",
			from: StopImmediate, budget: s,
			want: stopPlan{Stages: []stopStage{{StopImmediate, 0}}, KillAt: 750 * ms, End: s},
		},
		{
			name: "fast shares what SIGKILL leaves with immediate",
			from: StopFast, budget: 4 * s,
			want: stopPlan{Stages: []stopStage{{StopFast, 0}, {StopImmediate, 1500 * ms}}, KillAt: 3 * s, End: 4 * s},
		},
		{
			name: "smart, fast and immediate a third each of what SIGKILL leaves",
			from: StopSmart, budget: 3 * s,
			want: stopPlan{Stages: []stopStage{{StopSmart, 0}, {StopFast, 750 * ms}, {StopImmediate, 1500 * ms}}, KillAt: 2250 * ms, End: 3 * s},
		},
		{
			name: "a long stop_timeout keeps the kill wait at its cap",
			from: StopFast, budget: 60 * s,
			want: stopPlan{Stages: []stopStage{{StopFast, 0}, {StopImmediate, 27500 * ms}}, KillAt: 55 * s, End: 60 * s},
		},
		{
			name: "a budget shorter than the shortest kill wait kills at once",
			from: StopImmediate, budget: 50 * ms,
			want: stopPlan{Stages: []stopStage{{StopImmediate, 0}}, KillAt: 0, End: minKillWait},
		},
		{
			name: "the shortest kill wait",
			from: StopImmediate, budget: 300 * ms,
			want: stopPlan{Stages: []stopStage{{StopImmediate, 0}}, KillAt: 200 * ms, End: 300 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planStop(tt.from, tt.budget)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planStop(%s, %s) (-want +got):\n%s", tt.from, tt.budget, diff)
			}
			// The contract Stop's callers rely on, whatever the numbers.
			if got.End > max(tt.budget, minKillWait) {
				t.Errorf("End %s beyond the budget %s", got.End, tt.budget)
			}
			if kw := got.End - got.KillAt; kw < minKillWait || kw > maxKillWait {
				t.Errorf("kill wait %s outside [%s, %s]", kw, minKillWait, maxKillWait)
			}
			for n, st := range got.Stages {
				if st.At > got.KillAt || (n > 0 && st.At < got.Stages[n-1].At) {
					t.Errorf("stage %d (%s at %s) out of order before SIGKILL at %s", n, st.Mode, st.At, got.KillAt)
				}
			}
		})
	}
}

func TestStoppedState(t *testing.T) {
	tests := []struct {
		state byte
		want  bool
	}{
		{'T', true},  // SIGSTOP
		{'t', true},  // tracing stop
		{'R', false}, // running
		{'S', false}, // sleeping
		{'D', false}, // uninterruptible sleep
		{'Z', false}, // zombie: dead, not stopped
		{'X', false},
		{'I', false},
		{0, false}, // ProcStat could not read the state
	}
	for _, tt := range tests {
		if got := stoppedState(tt.state); got != tt.want {
			t.Errorf("stoppedState(%q) = %v, want %v", tt.state, got, tt.want)
		}
	}
}
