package testcluster

import (
	"os"
	"path/filepath"
	"testing"
)

// FreezeAgent SIGSTOPs the agent process alone — not its process group's
// children, not PostgreSQL — and returns once it is stopped (state T): the
// HA loop hangs while PostgreSQL keeps serving, the case a watchdog is for.
// It returns the agent's pid. Thaw (or the cleanup) resumes it.
func (n *Node) FreezeAgent(t testing.TB) int {
	t.Helper()
	pid, err := n.agent.FreezeProcess()
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	n.c.log.logf("[%s] agent frozen (SIGSTOP pid %d); PostgreSQL left running", n.Name, pid)
	return pid
}

// WriteFile writes name (relative to the node directory, or absolute)
// atomically — a temporary file renamed over it, so a process running the
// old file never sees a partial one — owned by the agent's OS user with
// mode perm (e.g. 0o755 for a script the agent runs). It returns the path.
func (n *Node) WriteFile(t testing.TB, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(n.Dir, name)
	}
	tmp := path + ".tmp"
	if err := n.c.user.writeOwned(tmp, data); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		t.Fatalf("testcluster: chmod %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testcluster: rename %s: %v", tmp, err)
	}
	return path
}
