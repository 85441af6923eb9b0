package main

import (
	"context"
	"strings"
	"testing"

	"github.com/regent-ha/regent/dcs"
)

// TestRemove: the wipe runs only after every confirmation (or --force with
// the cluster's name); anything else changes nothing.
func TestRemove(t *testing.T) {
	noLeader := threeMembers(nil, "")
	noLeader.Leader = nil
	cases := []struct {
		name  string
		run   ctlRun
		c     *dcs.Cluster
		args  []string
		code  int
		want  string // in the error, or in the output on success
		wiped bool
	}{
		{"all three answers", ctlRun{stdin: "demo\nYes I am aware\npg1\n"}, nil, []string{"demo"}, exitOK, "Removed 12 keys of cluster demo", true},
		{"no leader: two answers", ctlRun{stdin: "demo\nYes I am aware\n"}, noLeader, []string{"demo"}, exitOK, "Removed 12 keys", true},
		{"--force", ctlRun{}, nil, []string{"demo", "--force"}, exitOK, "Removed 12 keys", true},
		{"wrong cluster name typed", ctlRun{stdin: "dmeo\nYes I am aware\npg1\n"}, nil, []string{"demo"}, exitFailed, "the cluster names do not match", false},
		{"not aware", ctlRun{stdin: "demo\nyes\npg1\n"}, nil, []string{"demo"}, exitFailed, `did not exactly type "Yes I am aware"`, false},
		{"wrong leader", ctlRun{stdin: "demo\nYes I am aware\npg2\n"}, nil, []string{"demo"}, exitFailed, "not specify the current leader", false},
		{"no answers", ctlRun{}, nil, []string{"demo"}, exitFailed, "nothing removed", false},
		{"another cluster than --scope", ctlRun{}, nil, []string{"other", "--force"}, exitUsage, `cluster "other" is not the cluster selected`, false},
		{"no cluster named", ctlRun{}, nil, []string{"--force"}, exitUsage, "accepts 1 arg(s), received 0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wiped := false
			tc.run.loader = fixed(cmpOr(tc.c, threeMembers(nil, "")))
			tc.run.wiper = func(context.Context) (int64, error) { wiped = true; return 12, nil }
			r := tc.run.run(t, append([]string{"remove"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit %d (%v), want %d", r.code, r.err, tc.code)
			}
			got := r.out
			if r.err != nil {
				got = r.err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q in it", got, tc.want)
			}
			if wiped != tc.wiped {
				t.Errorf("wiped = %v, want %v", wiped, tc.wiped)
			}
		})
	}
}

func cmpOr(c, def *dcs.Cluster) *dcs.Cluster {
	if c != nil {
		return c
	}
	return def
}

// TestFlush: restart sends DELETE /restart only to members with a
// scheduled restart; switchover sends DELETE /switchover to the leader
// only when one is scheduled; refusals and bad targets send nothing.
func TestFlush(t *testing.T) {
	pg1 := newFakeMember(t, map[string][]answer{"DELETE /restart": {{200, "scheduled restart deleted"}},
		"DELETE /switchover": {{200, "scheduled switchover deleted"}}})
	pg2 := newFakeMember(t, map[string][]answer{"DELETE /restart": {{200, "scheduled restart deleted"}}})
	c := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL}, "")
	m := c.Members["pg1"]
	m.ScheduledRestart = map[string]any{"schedule": "2030-01-01T00:00:00+00:00"}
	c.Members["pg1"] = m
	scheduled := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL}, "")
	scheduled.Failover = dcs.Failover{Leader: "pg1", ScheduledAt: "2030-01-01T00:00:00+00:00"}

	r := ctlRun{loader: fixed(c)}.run(t, "flush", "demo", "restart", "pg1", "pg2", "--force")
	if r.err != nil || !strings.Contains(r.out, "Success: flush scheduled restart for member pg1") ||
		!strings.Contains(r.out, "No scheduled restart for member pg2") {
		t.Fatalf("flush restart: %v %q", r.err, r.out)
	}
	if n1, n2 := len(pg1.bodies("DELETE /restart")), len(pg2.bodies("DELETE /restart")); n1 != 1 || n2 != 0 {
		t.Errorf("DELETE /restart sent %d times to pg1, %d to pg2; want 1, 0", n1, n2)
	}
	r = ctlRun{loader: fixed(scheduled)}.run(t, "flush", "demo", "switchover", "--force")
	if r.err != nil || !strings.Contains(r.out, "Success: scheduled switchover deleted") || len(pg1.bodies("DELETE /switchover")) != 1 {
		t.Fatalf("flush switchover: %v %q", r.err, r.out)
	}
	r = ctlRun{loader: fixed(c)}.run(t, "flush", "demo", "switchover", "--force")
	if r.err != nil || !strings.Contains(r.out, "No pending scheduled switchover") {
		t.Errorf("nothing scheduled: %v %q", r.err, r.out)
	}

	before := len(pg1.requests()) + len(pg2.requests())
	for _, tc := range []struct {
		name string
		run  ctlRun
		args []string
		code int
		want string
	}{
		{"no terminal, no --force", ctlRun{loader: fixed(c)}, []string{"demo", "restart"}, exitFailed, "pass --force"},
		{"answered no", ctlRun{loader: fixed(scheduled), tty: true, stdin: "n\n"}, []string{"demo", "switchover"}, exitFailed, "not confirmed"},
		{"bad target", ctlRun{loader: fixed(c)}, []string{"demo", "reboot", "--force"}, exitUsage, `flush "reboot": want restart or switchover`},
		{"members with switchover", ctlRun{loader: fixed(scheduled)}, []string{"demo", "switchover", "pg1", "--force"}, exitUsage, "takes no member names"},
		{"unknown member", ctlRun{loader: fixed(c)}, []string{"demo", "restart", "pg9", "--force"}, exitFailed, "member pg9 is not in cluster demo"},
		{"no target", ctlRun{loader: fixed(c)}, []string{"demo"}, exitUsage, "requires at least 2 arg(s)"},
	} {
		r := tc.run.run(t, append([]string{"flush"}, tc.args...)...)
		if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%s: exit %d, %v; want %d with %q", tc.name, r.code, r.err, tc.code, tc.want)
		}
	}
	if after := len(pg1.requests()) + len(pg2.requests()); after != before {
		t.Errorf("refusals sent %d requests, want none", after-before)
	}
}
