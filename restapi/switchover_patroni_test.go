package restapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPatroniSwitchoverValidation(t *testing.T) {
	future := t0.Add(time.Hour)
	cases := []struct {
		name, action, body string
		paused             bool
		code               int
		text               string // exact body
		want               *PatroniSwitchoverRequest
	}{
		// Step 1: the body.
		{name: "malformed", action: "switchover", body: `{"leader":`, code: 400, text: "body is not valid JSON"},
		{name: "array", action: "failover", body: `[]`, code: 400, text: "body is not a JSON object"},
		{name: "string", action: "switchover", body: `"pg1"`, code: 400, text: "body is not a JSON object"},
		{name: "empty object", action: "switchover", body: `{}`, code: 400, text: "body is an empty JSON object"},
		{name: "leader not a string", action: "switchover", body: `{"leader":1}`, code: 400, text: "leader must be a string"},
		// Step 2: who.
		{name: "failover without a candidate", action: "failover", body: `{"leader":"pg1","candidate":null,"scheduled_at":null}`,
			code: 400, text: "Failover could be performed only to a specific candidate"},
		{name: "switchover without a leader", action: "switchover", body: `{"leader":null,"candidate":"pg2","scheduled_at":null}`,
			code: 400, text: "Switchover could be performed only from a specific leader"},
		{name: "empty leader counts as absent", action: "switchover", body: `{"leader":"","candidate":"pg2"}`,
			code: 400, text: "Switchover could be performed only from a specific leader"},
		{name: "unknown keys only", action: "switchover", body: `{"foo":1}`,
			code: 400, text: "Switchover could be performed only from a specific leader"},
		// Step 3: the schedule, in Patroni's order.
		{name: "scheduled failover without a leader", action: "failover", body: `{"candidate":"pg2","scheduled_at":"2030-01-01T00:00+00"}`,
			code: 400, text: "Scheduled failover is possible only from a specific leader"},
		{name: "scheduled while paused", action: "switchover", paused: true, body: `{"leader":"pg1","candidate":"pg2","scheduled_at":"garbage"}`,
			code: 400, text: "Can't schedule switchover in the paused state"},
		{name: "unparsable", action: "switchover", body: `{"leader":"pg1","scheduled_at":"next tuesday"}`,
			code: 422, text: "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
		{name: "not a string", action: "switchover", body: `{"leader":"pg1","scheduled_at":1893456000}`,
			code: 422, text: "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
		{name: "no timezone", action: "switchover", body: `{"leader":"pg1","scheduled_at":"2030-01-01T00:00:00"}`,
			code: 400, text: "Timezone information is mandatory for the scheduled switchover"},
		{name: "failover no timezone", action: "failover", body: `{"leader":"pg1","candidate":"pg2","scheduled_at":"2030-01-01"}`,
			code: 400, text: "Timezone information is mandatory for the scheduled failover"},
		{name: "in the past", action: "switchover", body: `{"leader":"pg1","scheduled_at":"2024-05-01T11:59:59+00:00"}`,
			code: 422, text: "Cannot schedule switchover in the past"},
		{name: "in the past in another zone", action: "failover", body: `{"leader":"pg1","member":"pg2","scheduled_at":"2024-05-01T13:30+02"}`,
			code: 422, text: "Cannot schedule failover in the past"},
		// Step 4: paused needs a candidate.
		{name: "paused switchover without a candidate", action: "switchover", paused: true, body: `{"leader":"pg1","candidate":null,"scheduled_at":null}`,
			code: 400, text: "Switchover is possible only to a specific candidate in a paused state"},
		// Through to PatroniSwitchover.
		{name: "patronictl switchover", action: "switchover", body: `{"leader": "pg1", "candidate": null, "scheduled_at": null}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "switchover", Leader: "pg1"}},
		{name: "member is an alias of candidate", action: "failover", body: `{"leader":"pg1","member":"pg2"}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "failover", Leader: "pg1", Candidate: "pg2"}},
		{name: "candidate wins over member", action: "failover", body: `{"candidate":"pg2","member":"pg3"}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "failover", Candidate: "pg2"}},
		{name: "null candidate falls back to member", action: "failover", body: `{"candidate":null,"member":"pg3"}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "failover", Candidate: "pg3"}},
		{name: "paused with a candidate", action: "switchover", paused: true, body: `{"leader":"pg1","candidate":"pg2"}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "switchover", Leader: "pg1", Candidate: "pg2"}},
		{name: "scheduled", action: "switchover", body: `{"leader":"pg1","candidate":"pg2","scheduled_at":"2024-05-01T13:00+00"}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "switchover", Leader: "pg1", Candidate: "pg2", ScheduledAt: &future}},
		{name: "paused failover vouching the old primary is down", action: "failover", paused: true, body: `{"candidate":"pg2","assume_old_primary_down":true}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "failover", Candidate: "pg2", AssumeOldPrimaryDown: true}},
		{name: "assume_old_primary_down must be a boolean", action: "failover", body: `{"candidate":"pg2","assume_old_primary_down":"yes"}`,
			code: 400, text: "assume_old_primary_down must be a boolean"},
		{name: "empty schedule is no schedule", action: "switchover", body: `{"leader":"pg1","scheduled_at":""}`,
			code: 200, text: "called", want: &PatroniSwitchoverRequest{Action: "switchover", Leader: "pg1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got *PatroniSwitchoverRequest
			ts := newSwitchoverServer(t, &fakeSwitchovers{patroni: func(_ context.Context, req PatroniSwitchoverRequest) (int, string) {
				got = &req
				return 200, "called"
			}})
			snap := primarySnap()
			snap.Paused = tc.paused
			ts.Publish(snap)
			r := do(t, ts.Handler(), "POST", "/"+tc.action, strings.NewReader(tc.body))
			if r.code != tc.code || r.body != tc.text || r.header.Get("Content-Type") != "text/html" {
				t.Errorf("POST /%s %s = %d %q (%s), want %d %q", tc.action, tc.body, r.code, r.body,
					r.header.Get("Content-Type"), tc.code, tc.text)
			}
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
				t.Errorf("PatroniSwitchover request (-want +got):\n%s", d)
			}
		})
	}
}

// Patroni's code and text from the agent pass through unchanged.
func TestPatroniSwitchoverAnswers(t *testing.T) {
	for _, tc := range []struct {
		code int
		text string
		want int
	}{
		{200, `Successfully switched over to "pg2"`, 200},
		{202, "Switchover scheduled", 202},
		{412, "candidate does not exists", 412},
		{503, "Switchover status unknown", 503},
		{0, "", 502},
	} {
		ts := newSwitchoverServer(t, &fakeSwitchovers{patroni: func(context.Context, PatroniSwitchoverRequest) (int, string) { return tc.code, tc.text }})
		r := do(t, ts.Handler(), "POST", "/switchover", strings.NewReader(`{"leader":"pg1","candidate":"pg2","scheduled_at":null}`))
		if r.code != tc.want || (tc.code != 0 && r.body != tc.text) {
			t.Errorf("agent %d %q: answered %d %q", tc.code, tc.text, r.code, r.body)
		}
	}
}

func TestPatroniBodyRules(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{})
	for _, tc := range []struct {
		name string
		cl   int64
		code int
	}{
		{"no Content-Length", -2, 411},
		{"chunked", -1, 411},
		{"too large", 2 << 20, 413},
	} {
		req := bodyRequest(t, `{"leader":"pg1"}`, tc.cl)
		req.Method, req.URL.Path = "POST", "/switchover"
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.code || rec.Header().Get("Content-Type") != "text/html" || rec.Header().Get("Connection") != "close" {
			t.Errorf("%s: %d %q %v, want %d text/html, connection closed", tc.name, rec.Code, rec.Body, rec.Header(), tc.code)
		}
	}
}

func TestCancelScheduled(t *testing.T) {
	code, text := 200, "scheduled switchover deleted"
	ts := newSwitchoverServer(t, &fakeSwitchovers{cancel: func(context.Context) (int, string) { return code, text }})
	for _, tc := range []struct {
		code int
		text string
		want int
	}{
		{200, "scheduled switchover deleted", 200},
		{404, "no switchover is scheduled", 404},
		{409, "the switchover key changed", 409},
		{-1, "?", http.StatusBadGateway},
	} {
		code, text = tc.code, tc.text
		r := do(t, ts.Handler(), "DELETE", "/switchover", nil)
		if r.code != tc.want || r.header.Get("Content-Type") != "text/html" || (tc.want == tc.code && r.body != tc.text) {
			t.Errorf("DELETE /switchover (%d %q) = %d %q", tc.code, tc.text, r.code, r.body)
		}
	}
}
