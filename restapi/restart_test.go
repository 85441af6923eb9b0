package restapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRestartRequestParsing(t *testing.T) {
	future := time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC) // t0 + 1h
	at := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name, body string
		paused     bool
		code       int
		text       string          // exact text when refused
		want       *RestartRequest // what reaches the agent
	}{
		// The body.
		{name: "no body", body: "", want: &RestartRequest{}},
		{name: "empty object", body: "{}", want: &RestartRequest{}},
		{name: "malformed", body: `{"role":`, code: 400, text: "body is not valid JSON"},
		{name: "array", body: `[]`, code: 400, text: "body is not a JSON object"},
		// Filters.
		{name: "every filter", body: `{"schedule":"2024-05-01T13:00+00","role":"replica","postgres_version":"15.4","timeout":"30s","restart_pending":true}`,
			want: &RestartRequest{Schedule: at(future), Role: "replica", PostgresVersion: "15.4", Timeout: 30 * time.Second, RestartPending: true}},
		{name: "restart_pending any value", body: `{"restart_pending":false}`, want: &RestartRequest{RestartPending: true}},
		{name: "role master", body: `{"role":"master"}`, want: &RestartRequest{Role: "master"}},
		{name: "role primary", body: `{"role":"primary"}`, want: &RestartRequest{Role: "primary"}},
		{name: "role standby_leader", body: `{"role":"standby_leader"}`, code: 400, text: "PostgreSQL role should be either master, primary or replica"},
		{name: "role not a string", body: `{"role":1}`, code: 400, text: "PostgreSQL role should be either master, primary or replica"},
		{name: "version major", body: `{"postgres_version":"16"}`, want: &RestartRequest{PostgresVersion: "16"}},
		{name: "version number", body: `{"postgres_version":15.4}`, want: &RestartRequest{PostgresVersion: "15.4"}},
		{name: "version three parts", body: `{"postgres_version":"15.4.1"}`, code: 400, text: "Invalid PostgreSQL version format: N or N.N is accepted: 15.4.1"},
		{name: "version word", body: `{"postgres_version":"latest"}`, code: 400, text: "Invalid PostgreSQL version format: N or N.N is accepted: latest"},
		{name: "version null", body: `{"postgres_version":null}`, code: 400, text: "Invalid PostgreSQL version format: N or N.N is accepted: null"},
		{name: "timeout number", body: `{"timeout":30}`, want: &RestartRequest{Timeout: 30 * time.Second}},
		{name: "timeout fraction", body: `{"timeout":1.5}`, want: &RestartRequest{Timeout: 1500 * time.Millisecond}},
		{name: "timeout string", body: `{"timeout":"30"}`, want: &RestartRequest{Timeout: 30 * time.Second}},
		{name: "timeout minutes", body: `{"timeout":"2min"}`, want: &RestartRequest{Timeout: 2 * time.Minute}},
		{name: "timeout milliseconds", body: `{"timeout":"1500ms"}`, want: &RestartRequest{Timeout: 1500 * time.Millisecond}},
		{name: "timeout zero", body: `{"timeout":0}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "timeout negative", body: `{"timeout":"-5s"}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "timeout word", body: `{"timeout":"soon"}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "timeout exponent", body: `{"timeout":"1e3"}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "timeout bool", body: `{"timeout":true}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "timeout beyond a day", body: `{"timeout":"2d"}`, code: 400, text: "Timeout should be a positive number of seconds"},
		{name: "unknown filter", body: `{"force":true}`, code: 400, text: "Unknown filter for the scheduled restart: force"},
		// Patroni stops at the first bad key, in the order sent.
		{name: "first bad key wins (role)", body: `{"role":"x","force":true}`, code: 400, text: "PostgreSQL role should be either master, primary or replica"},
		{name: "first bad key wins (unknown)", body: `{"force":true,"role":"x"}`, code: 400, text: "Unknown filter for the scheduled restart: force"},
		// The schedule.
		{name: "schedule unparsable", body: `{"schedule":"tomorrow"}`, code: 422, text: "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
		{name: "schedule not a string", body: `{"schedule":1893456000}`, code: 422, text: "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
		{name: "schedule without zone", body: `{"schedule":"2030-01-01T00:00:00"}`, code: 400, text: "Timezone information is mandatory for the scheduled restart"},
		{name: "schedule in the past", body: `{"schedule":"2024-05-01T11:59:00Z"}`, code: 422, text: "Cannot schedule restart in the past"},
		{name: "schedule in another zone", body: `{"schedule":"2024-05-01T15:00:00+02:00"}`, want: &RestartRequest{Schedule: at(future)}},
		{name: "schedule while paused", paused: true, body: `{"role":"bad","schedule":"garbage"}`, code: 500, text: "Can't schedule restart in the paused state"},
		{name: "paused without a schedule", paused: true, body: `{"role":"replica"}`, want: &RestartRequest{Role: "replica"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []RestartRequest
			f := &fakeCommands{t: t, restart: func(_ context.Context, req RestartRequest) (int, string) {
				got = append(got, req)
				return 200, "restarted successfully"
			}}
			ts := newCommandServer(t, f, Config{})
			snap := primarySnap()
			snap.Paused = tc.paused
			ts.Publish(snap)
			r := doBody(t, ts.Handler(), http.MethodPost, "/restart", tc.body)
			if tc.want == nil {
				if r.code != tc.code || r.body != tc.text {
					t.Errorf("POST /restart %s = %d %q, want %d %q", tc.body, r.code, r.body, tc.code, tc.text)
				}
				if ct := r.header.Get("Content-Type"); ct != "text/html" {
					t.Errorf("Content-Type = %q, want text/html", ct)
				}
				if len(got) > 0 {
					t.Errorf("a refused request reached the agent: %+v", got)
				}
				return
			}
			if r.code != 200 {
				t.Fatalf("POST /restart %s = %d %q, want 200", tc.body, r.code, r.body)
			}
			if d := cmp.Diff([]RestartRequest{*tc.want}, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
				t.Errorf("request (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseTimestampIsTheScheduleParser(t *testing.T) {
	got, hasZone, err := ParseTimestamp("2030-01-01T00:00+00")
	if err != nil || !hasZone || !got.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseTimestamp = %v, %v, %v", got, hasZone, err)
	}
	if _, hasZone, err := ParseTimestamp("2030-01-01 10:00"); err != nil || hasZone {
		t.Errorf("ParseTimestamp without zone = %v, %v", hasZone, err)
	}
	if _, _, err := ParseTimestamp("soon"); err == nil {
		t.Error("ParseTimestamp(soon) did not fail")
	}
}
