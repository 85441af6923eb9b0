package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// startShell starts sh running script with extra arguments (which show in
// its command line) and returns it; the test reaps it.
func startShell(t *testing.T, script string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", script}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd
}

func runHook(t *testing.T, h *FenceHook, target string) (int, string) {
	t.Helper()
	cmd := exec.Command(h.Path)
	cmd.Env = append(os.Environ(), "REGENT_FENCE_TARGET="+target)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestFenceHookKillsTheTarget runs the real script against stand-ins: an
// "agent" whose command line ends in "-c <config>" and a "postmaster"
// (named by postmaster.pid) with a child. Exit 0 comes only once all
// three are gone, and the log records it; the fail switch makes it exit 1
// and kill nothing; an unknown target exits 1.
func TestFenceHookKillsTheTarget(t *testing.T) {
	dir := t.TempDir()
	h, err := WriteFenceHook(filepath.Join(dir, "fence"), func(d string) error { return os.MkdirAll(d, 0o700) })
	if err != nil {
		t.Fatal(err)
	}
	config, data := filepath.Join(dir, "pg1", "regent.yml"), filepath.Join(dir, "pg1", "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := h.SetTarget("pg1", FenceTarget{Config: config, DataDir: data}); err != nil {
		t.Fatal(err)
	}
	agent := startShell(t, "while :; do sleep 0.1; done", "-c", config)
	pm := startShell(t, "sleep 300 & wait")
	if err := os.WriteFile(filepath.Join(data, "postmaster.pid"), fmt.Appendf(nil, "%d\n%s\n", pm.Process.Pid, data), 0o600); err != nil {
		t.Fatal(err)
	}
	var kid string
	for deadline := time.Now().Add(10 * time.Second); kid == "" && time.Now().Before(deadline); {
		out, _ := exec.Command("pgrep", "-P", fmt.Sprint(pm.Process.Pid)).Output()
		kid = strings.TrimSpace(string(out))
		if kid == "" {
			time.Sleep(20 * time.Millisecond) // polling for the child to exist
		}
	}
	if kid == "" {
		t.Fatal("the postmaster stand-in has no child")
	}

	if err := h.SetFailing(true); err != nil {
		t.Fatal(err)
	}
	if code, out := runHook(t, h, "pg1"); code != 1 || !running(agent.Process.Pid) {
		t.Fatalf("failing hook: exit %d, agent running %v: %s", code, running(agent.Process.Pid), out)
	}
	if err := h.SetFailing(false); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	code, out := runHook(t, h, "pg1")
	if code != 0 {
		t.Fatalf("hook exit %d: %s", code, out)
	}
	for _, pid := range []string{fmt.Sprint(agent.Process.Pid), fmt.Sprint(pm.Process.Pid), kid} {
		if running(atoi(t, pid)) {
			t.Errorf("pid %s still runs after exit 0", pid)
		}
	}
	if code, _ := runHook(t, h, "pg9"); code != 1 {
		t.Errorf("unknown target: exit %d, want 1", code)
	}
	runs, err := h.ReadFenceLog()
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, r := range runs {
		got = append(got, fmt.Sprintf("%s %d", r.Target, r.Exit))
	}
	if want := []string{"pg1 1", "pg1 0", "pg9 1"}; !slices.Equal(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
	if len(runs) == 3 && (runs[1].Returned.Before(before.Add(-time.Second)) || runs[1].Returned.After(time.Now())) {
		t.Errorf("success logged at %s, not between %s and now", runs[1].Returned, before)
	}
}

// running reports whether pid runs (a zombie does not).
func running(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(data)[strings.LastIndexByte(string(data), ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseFenceLine(t *testing.T) {
	r, err := parseFenceLine("1700000000123456789 pg2 0")
	if err != nil || r.Target != "pg2" || r.Exit != 0 || r.Returned.UnixNano() != 1700000000123456789 {
		t.Errorf("parseFenceLine = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "1 pg2", "x pg2 0", "1 pg2 zero"} {
		if _, err := parseFenceLine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestFenceCheck: with a working hook, an ack invoked after the
// confirmed fence is a violation, one invoked before is not (its answer
// may arrive late); with a failing hook, a take-over before the lease
// bound is a violation, after it is not.
func TestFenceCheck(t *testing.T) {
	s := time.Second
	ack := func(node string, invoke, complete time.Duration) Op {
		return Op{Kind: OpInsert, Node: node, Invoke: invoke, Complete: complete, Outcome: OK, Timeline: 1}
	}
	changes := []LeaderChange{{At: 4 * s, Leader: ""}, {At: 5 * s, Leader: "pg2"}}
	tests := []struct {
		name    string
		failing bool
		runs    []FenceRunAt
		ops     []Op
		bound   time.Duration
		bad     bool
	}{
		{"answer in flight at the fence", false, []FenceRunAt{{At: 3 * s, Target: "pg1"}}, []Op{ack("pg1", 2900*time.Millisecond, 3100*time.Millisecond)}, 10 * s, false},
		{"ack invoked after the fence", false, []FenceRunAt{{At: 3 * s, Target: "pg1"}}, []Op{ack("pg1", 3200*time.Millisecond, 3300*time.Millisecond)}, 10 * s, true},
		{"another node's acks", false, []FenceRunAt{{At: 3 * s, Target: "pg1"}}, []Op{ack("pg2", 6*s, 6*s)}, 10 * s, false},
		{"a failed run does not fence", false, []FenceRunAt{{At: 3 * s, Target: "pg1", Exit: 1}}, []Op{ack("pg1", 4*s, 4*s)}, 10 * s, false},
		{"failing: take-over before the bound", true, []FenceRunAt{{At: 2 * s, Target: "pg1", Exit: 1}}, nil, 10 * s, true},
		{"failing: take-over after the bound", true, []FenceRunAt{{At: 2 * s, Target: "pg1", Exit: 1}}, nil, 4 * s, false},
		{"failing until the heal, then fenced", true, []FenceRunAt{{At: 2 * s, Target: "pg1", Exit: 1}, {At: 4900 * time.Millisecond, Target: "pg1"}}, nil, 10 * s, false},
		{"fenced only after the take-over", true, []FenceRunAt{{At: 5100 * time.Millisecond, Target: "pg1"}}, nil, 10 * s, true},
		{"failing: retried once a second", true, runsEvery(2*s, time.Second, 8), nil, 4 * s, false},
		{"failing: retried in a loop", true, runsEvery(2*s, 40*time.Millisecond, 30), nil, 4 * s, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &FenceCheck{Failing: tt.failing, Runs: tt.runs}
			f.evaluate(tt.ops, changes, "pg1", 1, tt.bound)
			if bad := !f.OK(); bad != tt.bad {
				t.Errorf("violation %q, want one: %v", f.Violation, tt.bad)
			}
			if f.TookOver != 5*s {
				t.Errorf("TookOver = %s", f.TookOver)
			}
		})
	}
	v := CheckFence([]*Round{{N: 1, Kind: KillNodeFenced, Fence: &FenceCheck{Violation: "x"}}})
	if v.OK || !strings.Contains(v.Details, "round 1") {
		t.Errorf("CheckFence = %+v", v)
	}
}

// TestGroupFence: within each watchdog block the fence rounds come last,
// both orders kept; ParseFaults expands "fence" and keeps the fence kinds
// out of the default mix.
func TestGroupFence(t *testing.T) {
	plans := []RoundPlan{
		{Kind: KillNodeFenced, Watchdog: true}, {Kind: KillReplica, Watchdog: true}, {Kind: KillNodeFenceFails, Watchdog: true},
		{Kind: IsolatePrimary, Watchdog: true}, {Kind: PartitionReplicasFenced}, {Kind: KillReplica},
	}
	groupFence(plans)
	var got []FaultKind
	for _, p := range plans {
		got = append(got, p.Kind)
	}
	want := []FaultKind{KillReplica, IsolatePrimary, KillNodeFenced, KillNodeFenceFails, KillReplica, PartitionReplicasFenced}
	if !slices.Equal(got, want) {
		t.Errorf("groupFence = %v, want %v", got, want)
	}
	kinds, err := ParseFaults("kill-replica, fence", false)
	if err != nil || !slices.Equal(kinds, append([]FaultKind{KillReplica}, FenceFaults...)) {
		t.Errorf("ParseFaults = %v, %v", kinds, err)
	}
	if _, err := ParseFaults("kill-everything", false); err == nil {
		t.Error("an unknown kind parsed")
	}
	def, _ := ParseFaults("", false)
	for _, k := range def {
		if fenced(k) {
			t.Errorf("default mix has %s", k)
		}
	}
	if len(def) != len(AllFaults())-len(FenceFaults)-len(RoutingFaults)-len(StandbyFaults) {
		t.Errorf("default mix has %d kinds of %d", len(def), len(AllFaults()))
	}
}

// runsEvery is n failing runs against pg1 from start, every step.
func runsEvery(start, step time.Duration, n int) []FenceRunAt {
	var runs []FenceRunAt
	for i := range n {
		runs = append(runs, FenceRunAt{At: start + time.Duration(i)*step, Target: "pg1", Exit: 1})
	}
	return runs
}
