package clusterlist

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

func testView() *dcs.Cluster {
	init := "7218000000000000001"
	sb := "pg2"
	return &dcs.Cluster{
		Initialize: &init,
		Leader:     &dcs.Leader{Name: "pg1"},
		Status:     dcs.Status{Optime: 50 << 20},
		Sync:       dcs.Sync{Leader: "pg1", SyncStandby: &sb},
		Members: map[string]dcs.Member{
			"pg1": {ConnURL: "postgres://127.0.0.1:5432/postgres", State: "running", Role: "primary", Timeline: 2, XLogLocation: u64(50 << 20)},
			"pg2": {ConnURL: "postgres://127.0.0.1:5433/postgres", State: "running", Role: "replica", Timeline: 2, XLogLocation: u64(48 << 20)},
			"pg3": {ConnURL: "postgres://127.0.0.1:5434/postgres", State: "stopped", Role: "replica"},
		},
	}
}

func TestRowsRolesComeFromKeysAndLagIsRoundedMiB(t *testing.T) {
	got := Rows(testView())
	want := []Row{
		{Member: "pg1", Host: "127.0.0.1:5432", Role: "Leader", State: "running", Timeline: 2},
		{Member: "pg2", Host: "127.0.0.1:5433", Role: "Sync Standby", State: "running", Timeline: 2, LagMB: i64(2)},
		{Member: "pg3", Host: "127.0.0.1:5434", Role: "Replica", State: "stopped", LagMB: i64(-1)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Rows (-want +got):\n%s", d)
	}
}

func TestRowsStandbyLeader(t *testing.T) {
	c := testView()
	m := c.Members["pg1"]
	m.Role = "standby_leader"
	c.Members["pg1"] = m
	if got := Rows(c)[0].Role; got != "Standby Leader" {
		t.Errorf("role of a standby cluster's leader = %q, want Standby Leader", got)
	}
}

func TestRenderShowsEveryMember(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, "demo", testView()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Cluster: demo (7218000000000000001)", "| pg1 ", "Leader", "Sync Standby", "unknown", "Lag in MB"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 7 {
		t.Errorf("table has %d lines, want 7:\n%s", n, out)
	}
}

// TestRenderShowsConfigErrorsOnlyWhenThereAreSome: a member that cannot
// apply the cluster config gets a "Config error" column; without one the
// table keeps patronictl's shape.
func TestRenderShowsConfigErrorsOnlyWhenThereAreSome(t *testing.T) {
	var plain bytes.Buffer
	if err := Render(&plain, "demo", testView()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "Config error") {
		t.Errorf("a column for config errors without any:\n%s", plain.String())
	}
	c := testView()
	m := c.Members["pg2"]
	m.ConfigError = "watchdog.safety_margin: 3s must be < ttl − loop_wait (3s)"
	c.Members["pg2"] = m
	var b bytes.Buffer
	if err := Render(&b, "demo", c); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if !strings.Contains(lines[1], "| Config error ") {
		t.Errorf("header lacks the Config error column: %q", lines[1])
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "| pg2 ") && !strings.HasSuffix(l, "| "+m.ConfigError+" |") {
			t.Errorf("pg2's line does not end with its config error: %q", l)
		}
	}
	if got := Rows(c)[1].ConfigError; got != m.ConfigError {
		t.Errorf("Rows: pg2 config_error = %q", got)
	}
}
