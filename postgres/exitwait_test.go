package postgres

import (
	"os/exec"
	"testing"
	"time"
)

// TestExitWaiterWakesOnExit: the pidfd wait times out while the process
// runs and returns as soon as it exits (well before its generous bound).
func TestExitWaiterWakesOnExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := pidExitWaiter(cmd.Process.Pid)
	defer w.close()
	if w.fd < 0 {
		t.Skip("no pidfd on this kernel: waitExit polls instead")
	}
	if w.wait(10 * time.Millisecond) {
		t.Fatal("wait returned true while the process runs")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !w.wait(30 * time.Second) {
		t.Fatal("wait timed out although the process was killed")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the exit was seen after %s", took)
	}
	_ = cmd.Wait()
}
