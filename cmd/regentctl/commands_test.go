package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

func TestFailover(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"POST /failover": {{200, `Successfully failed over to "pg2"`}}})
	c := threeMembers(map[string]string{"pg1": leader.URL}, "")
	r := ctlRun{loader: fixed(c)}.run(t, "failover", "--candidate", "pg2", "--force")
	if r.err != nil {
		t.Fatalf("failover: %v", r.err)
	}
	if d := cmp.Diff([]string{`{"leader":"pg1","candidate":"pg2"}`}, leader.bodies("POST /failover")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if !strings.Contains(r.out, `Successfully failed over to "pg2"`) {
		t.Errorf("output = %q", r.out)
	}
}

func TestFailoverAssumeOldPrimaryDown(t *testing.T) {
	cand := newFakeMember(t, map[string][]answer{"POST /failover": {{200, `Successfully failed over to "pg3"`}}})
	c := threeMembers(map[string]string{"pg3": cand.URL}, "")
	c.Leader = nil
	r := ctlRun{loader: fixed(c)}.run(t, "failover", "--candidate", "pg3", "--force", "--assume-old-primary-down")
	if r.err != nil {
		t.Fatalf("failover: %v", r.err)
	}
	if d := cmp.Diff([]string{`{"leader":null,"candidate":"pg3","assume_old_primary_down":true}`}, cand.bodies("POST /failover")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

func TestFailoverWithoutLeaderGoesToTheCandidate(t *testing.T) {
	cand := newFakeMember(t, map[string][]answer{"POST /failover": {{200, `Successfully failed over to "pg3"`}}})
	c := threeMembers(map[string]string{"pg3": cand.URL}, "")
	c.Leader = nil
	r := ctlRun{loader: fixed(c)}.run(t, "failover", "--candidate", "pg3", "--force")
	if r.err != nil {
		t.Fatalf("failover: %v", r.err)
	}
	if d := cmp.Diff([]string{`{"leader":null,"candidate":"pg3"}`}, cand.bodies("POST /failover")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

func TestFailoverRefusals(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"POST /failover": {{412, "candidate does not exists"}}})
	c := threeMembers(map[string]string{"pg1": leader.URL}, "")
	nofail := c.Members["pg3"]
	nofail.Tags = map[string]any{"nofailover": true}
	c.Members["pg3"] = nofail
	cases := []struct {
		name  string
		run   ctlRun
		args  []string
		code  int
		err   string
		sends bool
	}{
		{"agent refuses", ctlRun{}, []string{"--candidate", "pg2", "--force"}, exitFailed, "failover failed, details: 412, candidate does not exists", true},
		{"no candidate", ctlRun{}, []string{"--force"}, exitUsage, "--candidate is required", false},
		{"unknown candidate", ctlRun{}, []string{"--candidate", "pg9", "--force"}, exitFailed, "member pg9 is not in cluster demo", false},
		{"candidate is the leader", ctlRun{}, []string{"--candidate", "pg1", "--force"}, exitFailed, "pg1 is already the leader", false},
		{"nofailover", ctlRun{}, []string{"--candidate", "pg3", "--force"}, exitFailed, "tagged nofailover", false},
		{"no terminal, no --force", ctlRun{}, []string{"--candidate", "pg2"}, exitFailed, "pass --force", false},
		{"answered no", ctlRun{tty: true, stdin: "n\n"}, []string{"--candidate", "pg2"}, exitFailed, "not confirmed", false},
		{"answered yes", ctlRun{tty: true, stdin: "y\n"}, []string{"--candidate", "pg2"}, exitFailed, "412", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(leader.bodies("POST /failover"))
			tc.run.loader = fixed(c)
			r := tc.run.run(t, append([]string{"failover"}, tc.args...)...)
			if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.err) {
				t.Errorf("exit %d, %v; want %d with %q", r.code, r.err, tc.code, tc.err)
			}
			if sent := len(leader.bodies("POST /failover")) > before; sent != tc.sends {
				t.Errorf("request sent = %v, want %v", sent, tc.sends)
			}
		})
	}
}

func TestPauseAndResume(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"PATCH /config": {{200, `{"ttl":30,"pause":true}`}}})
	r := ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": leader.URL}, `{"ttl":30}`))}.run(t, "pause")
	if r.err != nil || !strings.Contains(r.out, "Success: cluster management is paused") {
		t.Fatalf("pause: %v %q", r.err, r.out)
	}
	r = ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": leader.URL}, `{"ttl":30,"pause":true}`))}.run(t, "resume")
	if r.err != nil || !strings.Contains(r.out, "Success: cluster management is unpaused") {
		t.Fatalf("resume: %v %q", r.err, r.out)
	}
	if d := cmp.Diff([]string{`{"pause":true}`, `{"pause":null}`}, leader.bodies("PATCH /config")); d != "" {
		t.Errorf("bodies (-want +got):\n%s", d)
	}
	// Already in the wanted state: refused without a request.
	r = ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": leader.URL}, `{"pause":"yes"}`))}.run(t, "pause")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "already paused") || len(leader.requests()) != 2 {
		t.Errorf("pause when paused: exit %d, %v", r.code, r.err)
	}
	// The agent's refusal is shown.
	refusing := newFakeMember(t, map[string][]answer{"PATCH /config": {{503, `{"error":"the config key does not exist"}`}}})
	r = ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": refusing.URL}, `{}`))}.run(t, "pause")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "the config key does not exist (HTTP 503)") {
		t.Errorf("refused pause: exit %d, %v", r.code, r.err)
	}
}

// pausingCluster reports pause on every member from the nth read on.
func pausingCluster(url string, n int32, pause bool) func(context.Context) (*dcs.Cluster, error) {
	var reads atomic.Int32
	return func(context.Context) (*dcs.Cluster, error) {
		c := threeMembers(map[string]string{"pg1": url}, `{"pause":`+map[bool]string{true: "false", false: "true"}[pause]+`}`)
		if reads.Add(1) >= n {
			for name, m := range c.Members {
				m.Pause = pause
				c.Members[name] = m
			}
		} else { // one member already follows
			m := c.Members["pg1"]
			m.Pause = pause
			c.Members["pg1"] = m
		}
		return c, nil
	}
}

func TestPauseWait(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"PATCH /config": {{200, `{}`}}})
	r := ctlRun{loader: pausingCluster(leader.URL, 4, true)}.run(t, "pause", "--wait")
	if r.err != nil || !strings.Contains(r.out, "Waiting for cluster demo to become paused") || !strings.Contains(r.out, "Success") {
		t.Errorf("pause --wait: %v\n%s", r.err, r.out)
	}
	r = ctlRun{loader: pausingCluster(leader.URL, 4, false)}.run(t, "resume", "--wait")
	if r.err != nil || !strings.Contains(r.out, "Success: cluster management is unpaused") {
		t.Errorf("resume --wait: %v\n%s", r.err, r.out)
	}
	start := time.Now()
	r = ctlRun{loader: pausingCluster(leader.URL, 1<<30, true)}.run(t, "pause", "--wait", "--wait-timeout", "200ms")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "pg2, pg3 do not report pause yet") {
		t.Errorf("pause --wait never done: exit %d, %v", r.code, r.err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("--wait-timeout 200ms took %s", time.Since(start))
	}
}

func TestRestart(t *testing.T) {
	answers := func() map[string][]answer {
		return map[string][]answer{"POST /restart": {{200, "restarted successfully"}}, "DELETE /restart": {{200, "scheduled restart deleted"}}}
	}
	pg1, pg2, pg3 := newFakeMember(t, answers()), newFakeMember(t, answers()), newFakeMember(t, answers())
	c := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL, "pg3": pg3.URL}, "")
	run := ctlRun{loader: fixed(c)}

	r := run.run(t, "restart", "--force")
	if r.err != nil {
		t.Fatalf("restart: %v", r.err)
	}
	for _, m := range []*fakeMember{pg1, pg2, pg3} {
		if d := cmp.Diff([]string{`{}`}, m.bodies("POST /restart")); d != "" {
			t.Errorf("restart body (-want +got):\n%s", d)
		}
	}
	if strings.Count(r.out, "Success: restart on member") != 3 {
		t.Errorf("output:\n%s", r.out)
	}

	// Filters: replicas only, with every option; pg3 has a scheduled
	// restart, which --force replaces.
	m := c.Members["pg3"]
	m.ScheduledRestart = map[string]any{"schedule": "2030-01-01T00:00:00+00:00"}
	c.Members["pg3"] = m
	pg2.set("POST /restart", answer{202, "Restart scheduled"})
	pg3.set("POST /restart", answer{202, "Restart scheduled"})
	r = run.run(t, "restart", "--force", "--role", "replica", "--pending", "--pg-version", "15.4",
		"--scheduled", "2030-01-01T03:00+02", "--restart-timeout", "45s")
	if r.err != nil {
		t.Fatalf("restart with filters: %v\n%s", r.err, r.out)
	}
	want := `{"postgres_version":"15.4","restart_pending":true,"role":"replica","schedule":"2030-01-01T03:00:00+02:00","timeout":45}`
	for _, m := range []*fakeMember{pg2, pg3} {
		if got := m.bodies("POST /restart"); len(got) != 2 || got[1] != want {
			t.Errorf("filtered restart bodies = %q, want …%s", got, want)
		}
	}
	if len(pg1.bodies("POST /restart")) != 1 {
		t.Error("--role replica restarted the leader")
	}
	if len(pg3.bodies("DELETE /restart")) != 1 || len(pg2.bodies("DELETE /restart")) != 0 {
		t.Error("--force did not replace exactly pg3's scheduled restart")
	}
	if strings.Count(r.out, "Success: restart scheduled on member") != 2 {
		t.Errorf("output:\n%s", r.out)
	}
}

func TestRestartFailures(t *testing.T) {
	pg1 := newFakeMember(t, map[string][]answer{"POST /restart": {{503, "restart conditions are not satisfied"}}})
	pg2 := newFakeMember(t, map[string][]answer{"POST /restart": {{409, "Another restart is already scheduled"}}})
	c := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL}, "")
	r := ctlRun{loader: fixed(c)}.run(t, "restart", "pg1", "pg2", "pg3", "--force")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "restart failed on 3 of 3 members") {
		t.Errorf("exit %d, %v", r.code, r.err)
	}
	for _, want := range []string{
		"Failed: restart for member pg1, status code=503, (restart conditions are not satisfied)",
		"Failed: another restart is already scheduled on member pg2",
		"Failed: restart for member pg3: POST http://127.0.0.1:1/restart",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"restart", "pg9", "--force"}, exitFailed, "member pg9 is not in cluster demo"},
		{[]string{"restart", "--role", "sync", "--force"}, exitUsage, `--role "sync"`},
		{[]string{"restart", "--scheduled", "tomorrow", "--force"}, exitUsage, `--scheduled "tomorrow"`},
	} {
		if r := (ctlRun{loader: fixed(c)}).run(t, tc.args...); r.code != tc.code || !strings.Contains(r.err.Error(), tc.err) {
			t.Errorf("%v: exit %d, %v; want %d %q", tc.args, r.code, r.err, tc.code, tc.err)
		}
	}
}

func TestScheduleWithoutZoneIsLocal(t *testing.T) {
	at, err := scheduleTime("2030-06-01 03:00")
	if err != nil || !at.Equal(time.Date(2030, 6, 1, 3, 0, 0, 0, time.Local)) {
		t.Errorf("scheduleTime = %v, %v", at, err)
	}
}

func TestReload(t *testing.T) {
	pg1 := newFakeMember(t, map[string][]answer{"POST /reload": {{202, "reload scheduled"}}})
	pg2 := newFakeMember(t, map[string][]answer{"POST /reload": {{200, ""}}})
	c := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL}, "")
	r := ctlRun{loader: fixed(c)}.run(t, "reload", "pg1", "pg2", "--force")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.out, "Reload request received for member pg1") || !strings.Contains(r.out, "No changes to apply on member pg2") {
		t.Errorf("output:\n%s", r.out)
	}
	if got := pg1.requests(); len(got) != 1 || got[0].Body != "" {
		t.Errorf("reload request = %+v, want one without a body", got)
	}
	if r := (ctlRun{loader: fixed(c)}).run(t, "reload", "--force"); r.code != exitFailed || !strings.Contains(r.out, "Failed: reload for member pg3") {
		t.Errorf("reload with pg3 down: exit %d\n%s", r.code, r.out)
	}
}

func TestReinit(t *testing.T) {
	pg2 := newFakeMember(t, map[string][]answer{
		"POST /reinitialize": {{200, "reinitialize started"}},
		"GET /patroni":       {{200, `{"state":"running"}`}, {200, `{"state":"creating replica"}`}, {200, `{"state":"starting"}`}, {200, `{"state":"running"}`}},
	})
	pg1 := newFakeMember(t, map[string][]answer{"POST /reinitialize": {{503, "I am the leader, can not reinitialize"}}})
	c := threeMembers(map[string]string{"pg1": pg1.URL, "pg2": pg2.URL}, "")
	r := ctlRun{loader: fixed(c), tty: true, stdin: "y\n"}.run(t, "reinit", "pg2", "--wait")
	if r.err != nil {
		t.Fatalf("reinit --wait: %v\n%s", r.err, r.out)
	}
	if d := cmp.Diff([]string{`{"force":false}`}, pg2.bodies("POST /reinitialize")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if n := len(pg2.bodies("GET /patroni")); n != 4 {
		t.Errorf("polled /patroni %d times, want 4 (until running again)", n)
	}
	if !strings.Contains(r.out, "Reinitialize is completed on: pg2") {
		t.Errorf("output:\n%s", r.out)
	}

	r = ctlRun{loader: fixed(c)}.run(t, "reinit", "pg1", "--force")
	if r.code != exitFailed || !strings.Contains(r.out, "Failed: reinitialize for member pg1, status code=503, (I am the leader, can not reinitialize)") {
		t.Errorf("reinit of the leader: exit %d\n%s", r.code, r.out)
	}
	if d := cmp.Diff([]string{`{"force":true}`}, pg1.bodies("POST /reinitialize")); d != "" {
		t.Errorf("--force body (-want +got):\n%s", d)
	}

	failing := newFakeMember(t, map[string][]answer{
		"POST /reinitialize": {{200, "reinitialize started"}},
		"GET /patroni":       {{200, `{"state":"creating replica"}`}, {200, `{"state":"start failed"}`}},
	})
	c = threeMembers(map[string]string{"pg3": failing.URL}, "")
	r = ctlRun{loader: fixed(c)}.run(t, "reinit", "pg3", "--force", "--wait")
	if r.code != exitFailed || !strings.Contains(r.out, `state "start failed"`) {
		t.Errorf("reinit ending in a failed state: exit %d\n%s", r.code, r.out)
	}
	if r := (ctlRun{loader: fixed(c)}).run(t, "reinit", "--force"); r.code != exitUsage {
		t.Errorf("reinit without a member: exit %d", r.code)
	}
}
