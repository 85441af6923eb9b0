package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regent-ha/regent/dcs"
)

// TestDSN: a member is chosen by role or name, and bad choices are clear
// errors (exit 2 for a bad flag).
func TestDSN(t *testing.T) {
	c := threeMembers(nil, "")
	noLeader := threeMembers(nil, "")
	noLeader.Leader = nil
	m := noLeader.Members["pg1"]
	m.State = "stopped"
	noLeader.Members["pg1"] = m
	for _, tc := range []struct {
		name string
		c    *dcs.Cluster
		args []string
		code int
		want string
	}{
		{"default: the leader", c, nil, exitOK, "host=127.0.0.1 port=5432\n"},
		{"leader", c, []string{"--role", "primary"}, exitOK, "host=127.0.0.1 port=5432\n"},
		{"replica", c, []string{"--role", "replica"}, exitOK, "host=127.0.0.1 port=5433\n"},
		{"member", c, []string{"--member", "pg3"}, exitOK, "host=127.0.0.1 port=5434\n"},
		{"any without a leader", noLeader, nil, exitOK, "host=127.0.0.1 port=5433\n"},
		{"leader without a leader", noLeader, []string{"--role", "leader"}, exitFailed, "the cluster has no leader"},
		{"unknown member", c, []string{"--member", "pg9"}, exitFailed, "member pg9 is not in the cluster"},
		{"bad role", c, []string{"--role", "boss"}, exitUsage, `--role "boss": want leader, replica or any`},
		{"both", c, []string{"--role", "replica", "--member", "pg3"}, exitUsage, "mutually exclusive"},
		{"an argument", c, []string{"pg1"}, exitUsage, ""},
	} {
		r := ctlRun{loader: fixed(tc.c)}.run(t, append([]string{"dsn"}, tc.args...)...)
		got := r.out
		if r.err != nil {
			got = r.err.Error()
		}
		if r.code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("%s: exit %d %q, want %d %q", tc.name, r.code, got, tc.code, tc.want)
		}
	}
}

// TestQueryRefusesBadInput: no statement, both sources, bad flags: exit
// 2 before connecting anywhere.
func TestQueryRefusesBadInput(t *testing.T) {
	c := threeMembers(nil, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no SQL: give --command or --file"},
		{[]string{"--command", "select 1", "--file", "x.sql"}, "mutually exclusive"},
		{[]string{"--file", "/nonexistent/x.sql"}, "--file:"},
		{[]string{"--command", "select 1", "--role", "boss"}, `--role "boss"`},
	} {
		r := ctlRun{loader: fixed(c)}.run(t, append([]string{"query"}, tc.args...)...)
		if r.code != exitUsage || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("query %v: exit %d, %v; want 2 with %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

// TestPrintAligned: psql's aligned format.
func TestPrintAligned(t *testing.T) {
	fields := []pgconn.FieldDescription{{Name: "id", DataTypeOID: 23}, {Name: "name", DataTypeOID: 25}}
	var b bytes.Buffer
	printAligned(&b, fields, [][]string{{"1", "alpha"}, {"100", "b"}})
	want := " id  | name\n" +
		"-----+-------\n" +
		"   1 | alpha\n" +
		" 100 | b\n" +
		"(2 rows)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printAligned(&b, fields[:1], [][]string{{"7"}})
	if want := " id\n----\n  7\n(1 row)\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
