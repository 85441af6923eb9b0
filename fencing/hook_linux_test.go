package fencing_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"
)

// TestHookTimeoutKillsProcessGroup: a hook that hangs (a shell waiting on a
// child `sleep`) is killed at the timeout, child included.
func TestHookTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := fencing.HookConfig{
		Command: script(t, "sleep 1000 &\necho $! > \"$1\"\necho started\nwait\n", pidFile),
		Timeout: 500 * time.Millisecond,
	}
	start := time.Now()
	res, err := c.Run(t.Context(), "pg1", "", "demo")
	elapsed := time.Since(start)
	if !errors.Is(err, fencing.ErrFenceFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run error = %v, want ErrFenceFailed and context.DeadlineExceeded", err)
	}
	if !res.Ran || res.ExitCode != -1 || res.Output != "started\n" || res.Err == "" {
		t.Errorf("result = %+v, want ran, killed (-1), output kept, a reason", res)
	}
	// Killed at the timeout, not after the child's 1000 s (allow a loaded CI box).
	if elapsed < c.Timeout || elapsed > c.Timeout+5*time.Second {
		t.Errorf("Run took %s with a %s timeout", elapsed, c.Timeout)
	}

	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child sleep (pid %d) still alive after the hook was killed", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for an event
	}
}

// processGone: no such process, or a zombie waiting for a reaper (a
// container's pid 1 may not reap).
func processGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// Format: pid (comm) state ...; comm may contain spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}
