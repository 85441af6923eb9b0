package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/clusterlist"
)

func TestListFormats(t *testing.T) {
	c := threeMembers(nil, `{"ttl":10,"pause":true}`)
	c.Failover = dcs.Failover{Leader: "pg1", Member: "pg2", ScheduledAt: "2030-01-01T00:00:00+00:00"}
	run := ctlRun{loader: fixed(c)}

	r := run.run(t, "list")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"Cluster: demo", "| pg1 ", "Leader", "Lag in MB", "Maintenance mode: on", "Switchover scheduled at: 2030-01-01T00:00:00+00:00", "to: pg2"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("list lacks %q:\n%s", want, r.out)
		}
	}

	r = run.run(t, "list", "-o", "json")
	var fromJSON []clusterlist.Row
	if err := json.Unmarshal([]byte(r.out), &fromJSON); err != nil || r.err != nil {
		t.Fatalf("list -o json = %q, %v, %v", r.out, r.err, err)
	}
	if d := cmp.Diff(clusterlist.Rows(c), fromJSON); d != "" {
		t.Errorf("list -o json (-want +got):\n%s", d)
	}

	r = run.run(t, "list", "-o", "yaml")
	var fromYAML []map[string]any
	if err := yaml.Unmarshal([]byte(r.out), &fromYAML); err != nil || r.err != nil {
		t.Fatalf("list -o yaml = %q, %v, %v", r.out, r.err, err)
	}
	if len(fromYAML) != 3 || fromYAML[1]["name"] != "pg2" || fromYAML[1]["lag_in_mb"] != 2 || fromYAML[0]["role"] != "Leader" {
		t.Errorf("list -o yaml:\n%s", r.out)
	}
	if strings.Contains(r.out, "{") {
		t.Errorf("list -o yaml is not block style:\n%s", r.out)
	}

	if r = run.run(t, "list", "-o", "xml"); r.code != exitUsage {
		t.Errorf("list -o xml: exit %d, err %v; want usage error", r.code, r.err)
	}
}

func TestYAMLKeepsStringsStrings(t *testing.T) {
	var b strings.Builder
	if err := printYAML(&b, map[string]any{"a": "123", "b": "on", "c": "true", "d": 5, "e": nil}); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal([]byte(b.String()), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"a": "123", "b": "on", "c": "true", "d": 5, "e": nil}, back); d != "" {
		t.Errorf("YAML round trip (-want +got):\n%s\n%s", d, b.String())
	}
}

func TestListWatchRedrawsUntilCancelled(t *testing.T) {
	for _, tty := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		var reads atomic.Int32
		c := threeMembers(nil, `{}`)
		run := ctlRun{tty: tty, loader: func(context.Context) (*dcs.Cluster, error) {
			if reads.Add(1) == 3 {
				cancel() // Ctrl-C after the third draw has started
			}
			return c, nil
		}}
		r := run.runCtx(t, ctx, "list", "--watch=0.1")
		cancel()
		if r.err != nil || r.code != exitOK {
			t.Fatalf("list --watch: %v (exit %d)", r.err, r.code)
		}
		if n := strings.Count(r.out, "Cluster: demo"); n != 2 {
			t.Errorf("tty=%v: %d tables drawn before the cancel, want 2:\n%s", tty, n, r.out)
		}
		if got := strings.Contains(r.out, clearScreen); got != tty {
			t.Errorf("tty=%v: screen cleared = %v", tty, got)
		}
	}
	if r := (ctlRun{loader: fixed(threeMembers(nil, ""))}).run(t, "list", "--watch=0"); r.code != exitUsage {
		t.Errorf("--watch=0: exit %d, want usage", r.code)
	}
}

func TestTopologyOrder(t *testing.T) {
	c := threeMembers(nil, "")
	add := func(name, from string) {
		m := dcs.Member{State: "running", Role: "replica", Tags: map[string]any{}}
		if from != "" {
			m.Tags["replicatefrom"] = from
		}
		c.Members[name] = m
	}
	add("pg4", "pg2")    // cascades from pg2
	add("pg5", "pg4")    // two levels down
	add("pg6", "nobody") // unknown upstream: under the leader
	add("pg7", "pg8")    // a loop: pg7 ⇄ pg8, both under the leader
	add("pg8", "pg7")
	add("pg9", "pg1") // the leader by name
	names, depth := topologyOrder(c)
	type node struct {
		Name  string
		Depth int
	}
	var got []node
	for _, n := range names {
		got = append(got, node{n, depth[n]})
	}
	want := []node{{"pg1", 0}, {"pg2", 1}, {"pg4", 2}, {"pg5", 3}, {"pg3", 1}, {"pg6", 1}, {"pg9", 1}, {"pg7", 1}, {"pg8", 2}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("topology (-want +got):\n%s", d)
	}

	r := ctlRun{loader: fixed(c)}.run(t, "topology")
	if r.err != nil {
		t.Fatal(r.err)
	}
	var order []string
	for _, line := range strings.Split(r.out, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| Member") {
			order = append(order, strings.TrimRight(strings.SplitN(line, "|", 3)[1], " "))
		}
	}
	wantLines := []string{" pg1", " + pg2", "   + pg4", "     + pg5", " + pg3", " + pg6", " + pg9", " + pg7", "   + pg8"}
	if d := cmp.Diff(wantLines, order); d != "" {
		t.Errorf("topology member column (-want +got):\n%s\n%s", d, r.out)
	}
}

func TestTopologyWithoutLeader(t *testing.T) {
	c := threeMembers(nil, "")
	c.Leader = nil
	names, depth := topologyOrder(c)
	if d := cmp.Diff([]string{"pg1", "pg2", "pg3"}, names); d != "" || depth["pg2"] != 0 {
		t.Errorf("no leader: %v %v", names, depth)
	}
}

func TestHistory(t *testing.T) {
	c := threeMembers(nil, "")
	c.History = []dcs.HistoryEntry{
		{Timeline: 1, SwitchLSN: 25165984, Reason: "no recovery target specified"},
		{Timeline: 2, SwitchLSN: 50331808, Reason: "switchover", PromotedAt: "2024-05-01T12:00:00+00:00", NewLeader: "pg2"},
	}
	// The failover to timeline 2 (pg3's record); a stand-down and a
	// failover record of another timeline add nothing.
	c.Extra = map[string]dcs.Value{
		"decisions/1-pg3": {Data: []byte(`{"member":"pg3","kind":"failover","timings":{"timeline":2,"phases":[{"phase":"detect","ms":9012},{"phase":"elect","ms":1003},{"phase":"promote","ms":120},{"phase":"first_write","ms":4}]}}`)},
		"decisions/2-pg2": {Data: []byte(`{"member":"pg2","kind":"stood_down"}`)},
		"decisions/3-pg2": {Data: []byte(`{"member":"pg2","kind":"failover","timings":{"timeline":9,"phases":[{"phase":"detect","ms":1}]}}`)},
	}
	c.History[0].NewLeader = "pg3"
	run := ctlRun{loader: fixed(c)}
	r := run.run(t, "history")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := `+----+----------+------------------------------+---------------------------+------------+-------------------------------------------------------------+
| TL | LSN      | Reason                       | Timestamp                 | New Leader | Failover Phases                                             |
+----+----------+------------------------------+---------------------------+------------+-------------------------------------------------------------+
|  1 | 25165984 | no recovery target specified |                           | pg3        | detect 9.012s, elect 1.003s, promote 120ms, first_write 4ms |
|  2 | 50331808 | switchover                   | 2024-05-01T12:00:00+00:00 | pg2        |                                                             |
+----+----------+------------------------------+---------------------------+------------+-------------------------------------------------------------+
`
	if d := cmp.Diff(want, r.out); d != "" {
		t.Errorf("history (-want +got):\n%s", d)
	}
	r = run.run(t, "history", "-o", "json")
	var rows []historyRow
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 2 || rows[1].NewLeader != "pg2" || len(rows[0].Phases) != 4 || rows[1].Phases != nil {
		t.Errorf("history -o json = %q, %v", r.out, err)
	}
	c.History = nil
	if r = run.run(t, "history", "-o", "json"); strings.TrimSpace(r.out) != "[]" {
		t.Errorf("empty history -o json = %q", r.out)
	}
}

const decisionLog = `[
 {"id":"2","at":"2024-05-01T12:00:05Z","member":"pg2","kind":"failover","reason":"leader key gone;\n I am most advanced","candidates":[{"name":"pg2","reachable":true,"eligible":true}]},
 {"id":"1","at":"2024-05-01T11:00:00Z","member":"pg3","kind":"stood_down","reason":"pg2 is more advanced"}
]`

func TestDecisions(t *testing.T) {
	m := newFakeMember(t, map[string][]answer{"GET /decisions": {{200, decisionLog}}})
	// The leader cannot be reached: the next member answers.
	run := ctlRun{loader: fixed(threeMembers(map[string]string{"pg2": m.URL}, ""))}
	r := run.run(t, "decisions")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"| At ", "| Member |", "failover", "leader key gone; I am most advanced", "stood_down", "pg3"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("decisions lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Index(r.out, "failover") > strings.Index(r.out, "stood_down") {
		t.Errorf("decisions not newest first:\n%s", r.out)
	}
	r = run.run(t, "decisions", "-o", "json", "--limit", "1")
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || len(got) != 1 || got[0]["candidates"] == nil {
		t.Errorf("decisions -o json --limit 1 = %q, %v", r.out, err)
	}
	bad := newFakeMember(t, map[string][]answer{"GET /decisions": {{503, `{"error":"reading decisions from the DCS failed"}`}}})
	r = ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": bad.URL}, ""))}.run(t, "decisions")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "reading decisions from the DCS failed") {
		t.Errorf("decisions on a 503: exit %d, %v", r.code, r.err)
	}
}

func TestShowConfig(t *testing.T) {
	c := threeMembers(nil, `{"ttl":30,"loop_wait":10,"maximum_lag_on_failover":1048576,"postgresql":{"parameters":{"max_connections":100,"wal_level":"replica"},"use_pg_rewind":true},"pause":"on","ratio":0.5}`)
	r := ctlRun{loader: fixed(c)}.run(t, "show-config")
	want := `loop_wait: 10
maximum_lag_on_failover: 1048576
pause: "on"
postgresql:
  parameters:
    max_connections: 100
    wal_level: replica
  use_pg_rewind: true
ratio: 0.5
ttl: 30
`
	if r.err != nil || r.out != want {
		t.Errorf("show-config = %v\n%s\nwant:\n%s", r.err, r.out, want)
	}
	c.Config = nil
	if r := (ctlRun{loader: fixed(c)}).run(t, "show-config"); r.code != exitFailed || !strings.Contains(r.err.Error(), "no config key") {
		t.Errorf("show-config without a key: exit %d, %v", r.code, r.err)
	}
}

// TestListShowsFailsafe: members holding a leader's failsafe call make
// list say failsafe mode is active, with whom and since when.
func TestListShowsFailsafe(t *testing.T) {
	c := threeMembers(nil, `{"ttl":10,"failsafe_mode":true}`)
	since := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"pg2", "pg3"} {
		m := c.Members[name]
		m.Failsafe = &dcs.MemberFailsafe{Leader: "pg1", Since: since.Add(time.Duration(len(name)) * time.Second).Format(time.RFC3339)}
		c.Members[name] = m
	}
	var b strings.Builder
	if err := clusterNotes(&b, c, since.Add(42*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := " Failsafe mode: active, leader pg1 confirmed without etcd by pg2, pg3 (since 2030-01-01T00:00:03Z, 39s ago)\n"
	if b.String() != want {
		t.Errorf("notes = %q, want %q", b.String(), want)
	}
	r := (&ctlRun{loader: fixed(c)}).run(t, "list")
	if r.err != nil || !strings.Contains(r.out, "Failsafe mode: active, leader pg1") {
		t.Errorf("list = %q, %v", r.out, r.err)
	}
}
