package testcluster

import (
	"os"
	"syscall"
	"testing"
)

func TestFreezeAgentLeavesPostgresRunning(t *testing.T) {
	_, n := startFake(t)
	pm, alive := n.PostmasterPID()
	if !alive {
		t.Fatal("no live postmaster")
	}
	agent := n.FreezeAgent(t)
	if _, st, err := procState(agent); err != nil || st != 'T' {
		t.Errorf("frozen agent pid %d in state %c (%v), want T", agent, st, err)
	}
	if _, st, err := procState(pm); err != nil || st == 'T' {
		t.Errorf("postmaster pid %d in state %c (%v) after FreezeAgent, want it running", pm, st, err)
	}
	waitSQL(t, n)
	n.Thaw(t)
	if _, st, err := procState(agent); err != nil || st == 'T' {
		t.Errorf("thawed agent pid %d in state %c (%v)", agent, st, err)
	}
}

func TestWriteFileOwnedAndReplaced(t *testing.T) {
	c := setup(t, Options{Nodes: 1}, "")
	n := c.nodes[0]
	for _, content := range []string{"#!/bin/sh\nexit 1\n", "#!/bin/sh\nexit 0\n"} {
		path := n.WriteFile(t, "hook.sh", []byte(content), 0o755)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != c.user.uid || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: uid %d mode %v, want uid %d mode 0755", path, uid, fi.Mode().Perm(), c.user.uid)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Errorf("%s = %q (%v), want %q", path, got, err, content)
		}
	}
	if _, err := os.Stat(n.Dir + "/hook.sh.tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}
