package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

const editBase = `{"ttl":30,"loop_wait":10,"postgresql":{"parameters":{"max_connections":100,"auto_explain.log_min_duration":50},"use_pg_rewind":true},"synchronous_mode":false}`

// editCluster is a cluster whose config key is editBase and whose leader
// pg1 answers PATCH /config with answers.
func editCluster(t *testing.T, answers ...answer) (*fakeMember, *dcs.Cluster) {
	t.Helper()
	leader := newFakeMember(t, map[string][]answer{"PATCH /config": answers})
	return leader, threeMembers(map[string]string{"pg1": leader.URL}, editBase)
}

func TestParseSetting(t *testing.T) {
	base, err := decodeConfig([]byte(editBase))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		pair  string
		patch string // the merge patch it makes against editBase
		err   string
	}{
		{pair: "ttl=20", patch: `{"ttl":20}`},
		{pair: " ttl = 20", patch: `{"ttl":20}`},
		{pair: "ttl='20'", patch: `{"ttl":"20"}`},
		{pair: "ratio=0.5", patch: `{"ratio":0.5}`},
		{pair: "synchronous_mode=true", patch: `{"synchronous_mode":true}`},
		{pair: "synchronous_mode=on", patch: `{"synchronous_mode":"on"}`},
		{pair: "check_timeline=yes", patch: `{"check_timeline":"yes"}`},
		{pair: "synchronous_mode=null", patch: `{"synchronous_mode":null}`},
		{pair: "synchronous_mode=~", patch: `{"synchronous_mode":null}`},
		{pair: "synchronous_mode=", patch: `{"synchronous_mode":null}`},
		{pair: "no_such_key=null", patch: `{}`},
		{pair: "postgresql.use_pg_rewind=false", patch: `{"postgresql":{"use_pg_rewind":false}}`},
		{pair: "standby_cluster.host=10.0.0.1", patch: `{"standby_cluster":{"host":"10.0.0.1"}}`},
		{pair: "ttl.sub=1", patch: `{"ttl":{"sub":1}}`}, // a scalar becomes a mapping, as in patronictl
		{pair: "postgresql.parameters.auto_explain.log_min_duration=100", patch: `{"postgresql":{"parameters":{"auto_explain.log_min_duration":100}}}`},
		{pair: "postgresql.parameters.work_mem=4MB", patch: `{"postgresql":{"parameters":{"work_mem":"4MB"}}}`},
		{pair: "slots={a: {type: physical}}", patch: `{"slots":{"a":{"type":"physical"}}}`},
		{pair: "tags=[a, b]", patch: `{"tags":["a","b"]}`},
		{pair: "ttl=a=b", patch: `{"ttl":"a=b"}`},
		{pair: "ttl", err: `invalid setting "ttl": want key=value`},
		{pair: "=1", err: "want key=value"},
		{pair: "a..b=1", err: `empty part in key "a..b"`},
		{pair: "ttl=[1", err: "the value is not YAML"},
	}
	for _, tc := range cases {
		st, err := parseSetting(tc.pair)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseSetting(%q) = %v, want an error with %q", tc.pair, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseSetting(%q): %v", tc.pair, err)
			continue
		}
		after, err := canonical(st.apply(base))
		if err != nil {
			t.Fatal(err)
		}
		patch, _ := json.Marshal(mergePatch(base, after))
		if string(patch) != tc.patch {
			t.Errorf("%q: patch %s, want %s", tc.pair, patch, tc.patch)
		}
	}
}

// canonical round-trips a document as edit-config does.
func canonical(m map[string]any) (map[string]any, error) {
	text, err := configYAML(m)
	if err != nil {
		return nil, err
	}
	return parseConfigYAML(text)
}

func TestDeletingTheLastKeyRemovesEmptyParents(t *testing.T) {
	base, _ := decodeConfig([]byte(`{"ttl":30,"postgresql":{"parameters":{"max_connections":100}}}`))
	st, err := parseSetting("postgresql.parameters.max_connections=null")
	if err != nil {
		t.Fatal(err)
	}
	got := st.apply(base)
	if d := cmp.Diff(map[string]any{"ttl": int64(30)}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, ok := base["postgresql"]; !ok {
		t.Error("apply modified its input")
	}
}

func TestMergePatch(t *testing.T) {
	before, _ := decodeConfig([]byte(`{"a":1,"b":{"c":2,"d":3},"e":[1,2],"f":"x"}`))
	after, _ := decodeConfig([]byte(`{"a":1,"b":{"c":5},"e":[1,2,3],"g":null,"h":{"i":1}}`))
	got, _ := json.Marshal(mergePatch(before, after))
	if string(got) != `{"b":{"c":5,"d":null},"e":[1,2,3],"f":null,"g":null,"h":{"i":1}}` {
		t.Errorf("mergePatch = %s", got)
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\n"
	b := "a: 1\nb: 2\nc: 30\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\nk: 11\n"
	want := `--- old
+++ new
@@ -1,6 +1,6 @@
 a: 1
 b: 2
-c: 3
+c: 30
 d: 4
 e: 5
 f: 6
@@ -8,3 +8,4 @@
 h: 8
 i: 9
 j: 10
+k: 11
`
	if d := cmp.Diff(want, unifiedDiff("old", "new", a, b)); d != "" {
		t.Errorf("unifiedDiff (-want +got):\n%s", d)
	}
	if got := unifiedDiff("old", "new", a, a); got != "" {
		t.Errorf("diff of equal texts = %q", got)
	}
	if got := unifiedDiff("old", "new", "", "x: 1\n"); got != "--- old\n+++ new\n@@ -0,0 +1 @@\n+x: 1\n" {
		t.Errorf("diff from empty = %q", got)
	}
}

func TestEditConfigWithSettings(t *testing.T) {
	leader, c := editCluster(t, answer{200, `{}`})
	r := ctlRun{loader: fixed(c)}.run(t, "edit-config", "-s", "ttl=20", "-s", "synchronous_mode=null", "-p", "max_connections=200", "--force")
	if r.err != nil {
		t.Fatalf("edit-config: %v\n%s", r.err, r.out)
	}
	if d := cmp.Diff([]string{`{"postgresql":{"parameters":{"max_connections":200}},"synchronous_mode":null,"ttl":20}`}, leader.bodies("PATCH /config")); d != "" {
		t.Errorf("patch (-want +got):\n%s", d)
	}
	for _, want := range []string{"--- config (etcd)", "+++ config (edited)", "-ttl: 30", "+ttl: 20", "-synchronous_mode: false", "-    max_connections: 100", "+    max_connections: 200", "Configuration changed"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}

	// Nothing to change: no request.
	r = ctlRun{loader: fixed(c)}.run(t, "edit-config", "-s", "ttl=30", "--force")
	if r.err != nil || !strings.Contains(r.out, "Not changed") || len(leader.requests()) != 1 {
		t.Errorf("unchanged edit: %v %q", r.err, r.out)
	}
	// Not confirmed: no request.
	r = ctlRun{loader: fixed(c), tty: true, stdin: "no\n"}.run(t, "edit-config", "-s", "ttl=20")
	if r.code != exitFailed || !strings.Contains(r.out, "Apply these changes? [y/N]") || len(leader.requests()) != 1 {
		t.Errorf("unconfirmed edit: exit %d %v %q", r.code, r.err, r.out)
	}
	// Bad -s: usage error before anything is read.
	if r = (ctlRun{loader: fixed(c)}).run(t, "edit-config", "-s", "ttl", "--force"); r.code != exitUsage {
		t.Errorf("bad -s: exit %d, %v", r.code, r.err)
	}
}

func TestEditConfigAgentRefusal(t *testing.T) {
	_, c := editCluster(t, answer{400, `{"error":"invalid config: loop_wait + 2·retry_timeout must be ≤ ttl"}`})
	r := ctlRun{loader: fixed(c)}.run(t, "edit-config", "-s", "ttl=5", "--force")
	if r.code != exitFailed || !strings.Contains(r.errOut, "invalid config: loop_wait + 2·retry_timeout must be ≤ ttl (HTTP 400)") {
		t.Errorf("refused edit: exit %d, stderr %q", r.code, r.errOut)
	}
	c.Config = nil
	if r = (ctlRun{loader: fixed(c)}).run(t, "edit-config", "-s", "ttl=5", "--force"); r.code != exitFailed || !strings.Contains(r.err.Error(), "no config key") {
		t.Errorf("edit without a config key: exit %d, %v", r.code, r.err)
	}
}

// fakeEditor writes an $EDITOR script running body with the file as $1.
func fakeEditor(t *testing.T, body string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nset -e\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDITOR", path)
	t.Setenv("VISUAL", "")
}

func TestEditConfigInEditor(t *testing.T) {
	leader, c := editCluster(t, answer{200, `{}`})
	seen := filepath.Join(t.TempDir(), "seen.yaml")
	// The editor saves what it was given, changes ttl, drops
	// synchronous_mode and adds a key.
	fakeEditor(t, `cp "$1" `+seen+`
sed -i -e 's/^ttl: 30$/ttl: 25/' -e '/^synchronous_mode:/d' "$1"
echo 'failsafe_mode: true' >> "$1"`)
	r := ctlRun{loader: fixed(c)}.run(t, "edit-config", "--force")
	if r.err != nil {
		t.Fatalf("edit-config: %v\n%s", r.err, r.out)
	}
	shown, _ := os.ReadFile(seen)
	want, _ := configYAML(mustDecode(t, editBase))
	if string(shown) != want {
		t.Errorf("the editor got:\n%s\nwant:\n%s", shown, want)
	}
	if d := cmp.Diff([]string{`{"failsafe_mode":true,"synchronous_mode":null,"ttl":25}`}, leader.bodies("PATCH /config")); d != "" {
		t.Errorf("patch (-want +got):\n%s", d)
	}

	for _, tc := range []struct{ name, script, err string }{
		{"editor fails", "exit 3", "exited with status 3; nothing applied"},
		{"invalid YAML", `echo 'ttl: [' > "$1"`, "not valid YAML"},
		{"emptied", `: > "$1"`, "the edited config is empty"},
		{"not a mapping", `echo '- a' > "$1"`, "not a mapping"},
	} {
		fakeEditor(t, tc.script)
		r := ctlRun{loader: fixed(c)}.run(t, "edit-config", "--force")
		if r.code != exitFailed || !strings.Contains(r.err.Error(), tc.err) {
			t.Errorf("%s: exit %d, %v; want %q", tc.name, r.code, r.err, tc.err)
		}
	}
	fakeEditor(t, "true") // saved unchanged
	if r := (ctlRun{loader: fixed(c)}).run(t, "edit-config", "--force"); r.err != nil || !strings.Contains(r.out, "Not changed") {
		t.Errorf("unchanged: %v %q", r.err, r.out)
	}
	if n := len(leader.requests()); n != 1 {
		t.Errorf("%d PATCH requests, want 1", n)
	}
}

func mustDecode(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := decodeConfig([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
