package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestReinitializeRefusesForeignDirectory (issue #16, must-show 6): POST
// /reinitialize on a replica whose data_dir holds another cluster's
// database directory (PG_VERSION and relation files, but no pg_control to
// show whose), or files that are no PostgreSQL directory at all, answers
// 409 naming why and deletes nothing. The same request on the replica's
// own data directory still re-clones it. (A data directory with another
// system identifier never gets this far: the agent refuses to run on it.)
func TestReinitializeRefusesForeignDirectory(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Nodes: 2})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	replica := c.Others(leader.Name)[0]
	clusterID := controlSystemID(t, leader.DataDir)

	t.Log("another cluster's database directory in the replica's data_dir")
	replica.StopAgent(t)
	emptyDirectory(t, replica.DataDir)
	other := filepath.Join(filepath.Dir(replica.DataDir), "other")
	mustSucceed(t, pgTool(t, true, "initdb", "-D", other, "-U", "postgres", "--auth=trust", "--no-sync"))
	moveContents(t, filepath.Join(other, "base", "1"), replica.DataDir)
	writeOwned(t, replica.DataDir, "their-notes.txt", "the other cluster's")
	refusedReinit(t, replica, "another cluster's database directory", "cannot read its system identifier")

	t.Log("files that are no data directory in the replica's data_dir")
	emptyDirectory(t, replica.DataDir)
	writeOwned(t, replica.DataDir, "notes.txt", "keep me")
	writeOwned(t, replica.DataDir, filepath.Join("photos", "2024.jpg"), "and me")
	refusedReinit(t, replica, "a non-PostgreSQL directory", "no PG_VERSION")

	t.Log("the replica's own data directory: reinitialize still works")
	emptyDirectory(t, replica.DataDir)
	replica.Start(t)
	c.WaitHealthy(t, rejoinTimeout)
	writeOwned(t, replica.DataDir, "stale.txt", "wiped by the re-clone")
	code, body := reinitialize(t, replica)
	if code != http.StatusOK {
		t.Fatalf("POST /reinitialize on a healthy replica = %d %q, want 200", code, body)
	}
	c.WaitHealthy(t, rejoinTimeout)
	if _, err := os.Stat(filepath.Join(replica.DataDir, "stale.txt")); !os.IsNotExist(err) {
		t.Errorf("stale.txt after the re-clone: %v, want it wiped", err)
	}
	if id := controlSystemID(t, replica.DataDir); id != clusterID {
		t.Errorf("the re-cloned replica's system identifier is %s, want the cluster's %s", id, clusterID)
	}
}

// reinitialize sends POST /reinitialize until the agent answers other than
// 503 (its cluster view is still loading right after a start).
func reinitialize(t *testing.T, n *testcluster.Node) (int, string) {
	t.Helper()
	var code int
	var body []byte
	testcluster.Poll(t, rejoinTimeout, "an answer to POST /reinitialize on "+n.Name, func(ctx context.Context) error {
		var err error
		code, body, err = n.Do(ctx, http.MethodPost, "/reinitialize", map[string]any{"force": false})
		if err != nil {
			return err
		}
		if code == http.StatusServiceUnavailable {
			return fmt.Errorf("503 %s", body)
		}
		return nil
	})
	t.Logf("POST /reinitialize on %s: %d %s", n.Name, code, body)
	return code, string(body)
}

var systemIDLine = regexp.MustCompile(`(?m)^Database system identifier:\s+(\d+)$`)

// controlSystemID reads a data directory's system identifier with
// pg_controldata.
func controlSystemID(t *testing.T, dataDir string) string {
	t.Helper()
	r := pgTool(t, true, "pg_controldata", "-D", dataDir)
	m := systemIDLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("pg_controldata %s: %s", dataDir, r)
	}
	return m[1]
}

// moveContents moves what from holds into to.
func moveContents(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// emptyDirectory removes what dir holds (the agent is stopped).
func emptyDirectory(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// writeOwned writes dir/rel (and its directories) owned by the postgres
// OS user, so the agent could delete it: only the guard keeps it.
func writeOwned(t *testing.T, dir, rel, content string) {
	t.Helper()
	cred := postgresOSUser(t)
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for p := path; p != dir; p = filepath.Dir(p) {
		if err := os.Lchown(p, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// refusedReinit starts replica's agent over what its data_dir holds now
// (what), checks that POST /reinitialize answers 409 with a body naming
// why (want) and, once the agent is stopped again, that every file is
// still there, unchanged.
func refusedReinit(t *testing.T, replica *testcluster.Node, what, want string) {
	t.Helper()
	before := treeNames(t, replica.DataDir)
	replica.Start(t)
	code, body := reinitialize(t, replica)
	if code != http.StatusConflict || !strings.Contains(body, want) {
		t.Errorf("POST /reinitialize over %s = %d %q, want 409 with %q", what, code, body, want)
	}
	replica.StopAgent(t)
	assertKept(t, replica.DataDir, before)
}

// treeNames maps every path under dir to "", or to the content of the
// files the test wrote and of PG_VERSION. It walks through an os.Root, so
// a symlink the agent might leave cannot lead the walk out of dir.
func treeNames(t *testing.T, dir string) map[string]string {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = root.Close() }() // read-only: nothing to lose
	fsys := root.FS()
	out := map[string]string{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		out[p] = ""
		switch filepath.Ext(p) {
		case ".txt", ".jpg", "":
			if d.Type().IsRegular() && (filepath.Ext(p) != "" || d.Name() == "PG_VERSION") {
				data, err := fs.ReadFile(fsys, p)
				if err != nil {
					return err
				}
				out[p] = string(data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertKept fails for every path of before that is gone or changed.
func assertKept(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := treeNames(t, dir)
	for name, content := range before {
		got, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s was deleted", filepath.Join(dir, name))
		case got != content:
			t.Errorf("%s changed: %q, was %q", filepath.Join(dir, name), got, content)
		}
	}
	if len(before) < 3 {
		t.Fatalf("nothing to compare: %v", before)
	}
}
