package testcluster

import (
	"os"
	"testing"

	"github.com/regent-ha/regent/internal/proc"
)

// AgentBinary returns the path of the regent binary, built once per test
// process (proc.Build) into a directory the postgres user can read and
// execute. It fails the test if the build fails.
func AgentBinary(t testing.TB) string { return Binary(t, "./cmd/regent", "") }

// Binary returns the path of the binary of pkg built with tags (see
// proc.Build); the first caller pays for the build.
func Binary(t testing.TB, pkg, tags string) string {
	t.Helper()
	path, err := proc.Build(t.Context(), pkg, tags, t.Logf)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return path
}

// Main runs the tests of an e2e package and then removes the binaries
// built for them. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testcluster.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	proc.RemoveBuilds()
	os.Exit(code)
}

// BinaryAt returns the path of the binary of pkg built from the source of
// git commit (40 hex digits) of the clone the test runs in — a previous
// release, for a rolling-upgrade test (proc.BuildAt: cached across test
// processes, so only the first run builds it). It fails the test, saying
// so, when the commit is not in the clone's history.
func BinaryAt(t testing.TB, commit, pkg string) string {
	t.Helper()
	path, err := proc.BuildAt(t.Context(), commit, pkg, t.Logf)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return path
}
