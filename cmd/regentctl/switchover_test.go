package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

const testID = "20261122-030512-4f2a"

// fakeAgent is a leader's REST API: PATCH /switchover answers patchCode
// and patchBody; the events stream serves a full run ending in endState.
type fakeAgent struct {
	*httptest.Server
	patchCode  int
	patchBody  string
	endData    string // the end event's data
	abortCode  int
	abortBody  string
	blockPatch bool

	patches, aborts recorder[string]
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	f := &fakeAgent{
		patchCode: 202, patchBody: `{"id":"` + testID + `","events":"/switchover/` + testID + `/events"}`,
		endData: `{"state":"completed"}`, abortCode: 202, abortBody: `{"id":"` + testID + `","abort_requested":true}`,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PATCH /switchover", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.patches.add(string(body))
		if f.blockPatch {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.patchCode)
		io.WriteString(w, f.patchBody)
	})
	mux.HandleFunc("GET /switchover/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testID {
			http.Error(w, `{"error":"switchover not found"}`, 404)
			return
		}
		last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		w.Header().Set("Content-Type", "text/event-stream")
		for seq := last + 1; seq <= 14; seq++ {
			writeEvent(w, seq)
		}
		fmt.Fprintf(w, "event: end\ndata: %s\n\n", f.endData)
	})
	mux.HandleFunc("DELETE /switchover/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.aborts.add(r.PathValue("id"))
		w.WriteHeader(f.abortCode)
		io.WriteString(w, f.abortBody)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAgent) sent() []string { return f.patches.all() }

// testCluster is pg1 (leader, at leaderURL), pg2 and pg3.
func testCluster(leaderURL string) *dcs.Cluster {
	return &dcs.Cluster{
		Leader: &dcs.Leader{Name: "pg1"},
		Members: map[string]dcs.Member{
			"pg1": {APIURL: leaderURL + "/patroni"},
			"pg2": {APIURL: "http://127.0.0.1:1/patroni"},
			"pg3": {APIURL: "not a url"},
		},
	}
}

type cmdResult struct {
	out, errOut string
	err         error
}

// runSwitchover runs `switchover args…` against cluster with stdin in;
// tty says whether stdin counts as a terminal.
func runSwitchover(t *testing.T, cluster *dcs.Cluster, in string, tty bool, args ...string) cmdResult {
	t.Helper()
	stdin := strings.NewReader(in)
	o := &switchoverCmd{
		s:     &settings{scope: "demo", timeout: 5 * time.Second},
		load:  func(context.Context) (*dcs.Cluster, error) { return cluster, nil },
		isTTY: func(v any) bool { return tty && v == stdin },
		width: func(any) int { return 120 }, stages: switchover.StageNames(), now: time.Now,
		callTimeout: 2 * time.Second, idle: 5 * time.Second, budget: 2 * time.Second, spin: time.Hour,
	}
	cmd := o.command()
	var out, errOut bytes.Buffer
	cmd.SetIn(stdin)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return cmdResult{out: out.String(), errOut: errOut.String(), err: err}
}

func TestSwitchoverCompleted(t *testing.T) {
	f := newFakeAgent(t)
	r := runSwitchover(t, testCluster(f.URL), "", false, "--to", "pg2", "--reason", "kernel patching", "--switchover-timeout", "45s", "--yes")
	if r.err != nil {
		t.Fatalf("err = %v\n%s", r.err, r.out)
	}
	if d := cmp.Diff([]string{`{"to":"pg2","reason":"kernel patching","timeout":"45s"}`}, f.sent()); d != "" {
		t.Errorf("PATCH bodies (-want +got):\n%s", d)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if lines[0] != "Switchover "+testID+" started: pg1 → pg2" || lines[len(lines)-1] != "Switchover "+testID+" completed." {
		t.Errorf("output:\n%s", r.out)
	}
	for _, s := range switchover.StageNames() { // one running and one done line per stage, in order
		if strings.Count(r.out, s+" ") != 2 {
			t.Errorf("stage %s appears %d times:\n%s", s, strings.Count(r.out, s+" "), r.out)
		}
	}
	if i, j := strings.Index(r.out, string(switchover.StagePreFlight)), strings.Index(r.out, string(switchover.StageCleanup)); i < 0 || j < i {
		t.Errorf("stages out of order:\n%s", r.out)
	}
}

func TestSwitchoverOutcomes(t *testing.T) {
	cases := []struct {
		name, end, errHas string
		outHas            []string
	}{
		{"failed", `{"state":"failed","failure":{"reason":"pg2 did not catch up within 30s","hint":"pg1 is primary again"}}`,
			"switchover " + testID + " failed: pg2 did not catch up within 30s",
			[]string{"failure: pg2 did not catch up within 30s\n", "hint: pg1 is primary again\n"}},
		{"aborted", `{"state":"aborted"}`, "switchover " + testID + " was aborted", nil},
		{"unknown state", `{"state":"weird"}`, `ended in state "weird"`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.endData = tc.end
			r := runSwitchover(t, testCluster(f.URL), "", false, "--yes")
			if r.err == nil || !strings.Contains(r.err.Error(), tc.errHas) {
				t.Errorf("err = %v, want %q", r.err, tc.errHas)
			}
			for _, s := range tc.outHas {
				if !strings.Contains(r.out, s) {
					t.Errorf("output lacks %q:\n%s", s, r.out)
				}
			}
		})
	}
}

func TestSwitchoverRefused(t *testing.T) {
	t.Run("409 names the running switchover", func(t *testing.T) {
		f := newFakeAgent(t)
		f.patchCode, f.patchBody = 409, `{"error":"a switchover is running","id":"20261122-020000-abcd"}`
		r := runSwitchover(t, testCluster(f.URL), "", false, "--yes")
		if r.err == nil || !strings.Contains(r.err.Error(), "switchover 20261122-020000-abcd is already running") ||
			!strings.Contains(r.err.Error(), "regentctl switchover watch 20261122-020000-abcd") {
			t.Errorf("err = %v", r.err)
		}
	})
	t.Run("412 prints the reasons", func(t *testing.T) {
		f := newFakeAgent(t)
		f.patchCode = 412
		f.patchBody = `{"error":"no candidate qualifies","rejected":[{"member":"pg2","ok":false,"reasons":["lag 3.2 MB > 1 MB","tag nofailover"]}]}`
		r := runSwitchover(t, testCluster(f.URL), "", false, "--yes", "--to", "pg2")
		if r.err == nil || !strings.Contains(r.err.Error(), "HTTP 412") || r.errOut != "  pg2: lag 3.2 MB > 1 MB; tag nofailover\n" {
			t.Errorf("err = %v, stderr %q", r.err, r.errOut)
		}
	})
	t.Run("other errors", func(t *testing.T) {
		f := newFakeAgent(t)
		f.patchCode, f.patchBody = 503, "upstream trouble"
		r := runSwitchover(t, testCluster(f.URL), "", false, "--yes")
		if r.err == nil || !strings.Contains(r.err.Error(), "upstream trouble (HTTP 503)") {
			t.Errorf("err = %v", r.err)
		}
	})
}

func TestSwitchoverConfirmation(t *testing.T) {
	cases := []struct {
		name, in string
		tty      bool
		args     []string
		errHas   string // "" = proceeds
		prompt   string
	}{
		{"no terminal, no --yes", "y\n", false, nil, "stdin is not a terminal; pass --yes", ""},
		{"answered no", "n\n", true, []string{"--to", "pg2"}, "not confirmed", "Switch over from pg1 to pg2? [y/N] "},
		{"empty answer is no", "\n", true, nil, "not confirmed", "Switch over from pg1 to the best candidate? [y/N] "},
		{"closed stdin is no", "", true, nil, "not confirmed", "Switch over from pg1 to the best candidate? [y/N] "},
		{"answered yes", "yes\n", true, []string{"--to", "pg2"}, "", "Switch over from pg1 to pg2? [y/N] "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			r := runSwitchover(t, testCluster(f.URL), tc.in, tc.tty, tc.args...)
			switch {
			case tc.errHas == "" && r.err != nil:
				t.Errorf("err = %v", r.err)
			case tc.errHas != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.errHas)):
				t.Errorf("err = %v, want %q", r.err, tc.errHas)
			}
			if !strings.HasPrefix(r.out, tc.prompt) {
				t.Errorf("output %q does not start with %q", r.out, tc.prompt)
			}
			if sent := len(f.sent()) > 0; sent != (tc.errHas == "") {
				t.Errorf("PATCH sent = %v", sent)
			}
		})
	}
}

func TestSwitchoverDryRun(t *testing.T) {
	f := newFakeAgent(t)
	f.patchCode = 200
	f.patchBody = `{"dry_run":true,"from":"pg1","to":"pg2","candidates":[{"member":"pg2","ok":true},` +
		`{"member":"pg3","ok":false,"reasons":["lag 3.2 MB > 1 MB","tag nofailover"]}]}`
	r := runSwitchover(t, testCluster(f.URL), "", false, "--dry-run") // no confirmation needed
	want := "Dry run: a switchover from pg1 to pg2 is possible.\n" +
		"  pg2              ok\n" +
		"  pg3              rejected: lag 3.2 MB > 1 MB; tag nofailover\n"
	if r.err != nil || r.out != want {
		t.Errorf("err = %v, output:\n%s\nwant:\n%s", r.err, r.out, want)
	}
	if d := cmp.Diff([]string{`{"dry_run":true}`}, f.sent()); d != "" {
		t.Errorf("PATCH bodies (-want +got):\n%s", d)
	}

	f.patchBody = `{"dry_run":true,"from":"pg1","candidates":[{"member":"pg2","ok":false,"reasons":["not streaming"]}]}`
	if r := runSwitchover(t, testCluster(f.URL), "", false, "--dry-run"); r.err == nil || !strings.Contains(r.out, "pg2              rejected: not streaming") {
		t.Errorf("no candidate: err = %v, output %q", r.err, r.out)
	}
}

func TestSwitchoverChecksTheCluster(t *testing.T) {
	f := newFakeAgent(t)
	noLeader := testCluster(f.URL)
	noLeader.Leader = nil
	badLeaderURL := testCluster(f.URL)
	badLeaderURL.Members["pg1"] = dcs.Member{APIURL: "ftp://x"}
	for _, tc := range []struct {
		name    string
		cluster *dcs.Cluster
		args    []string
		errHas  string
	}{
		{"unknown member", testCluster(f.URL), []string{"--to", "pg9"}, "member pg9 is not in cluster demo (members: pg1, pg2, pg3)"},
		{"to the leader", testCluster(f.URL), []string{"--to", "pg1"}, "pg1 is already the leader"},
		{"no leader", noLeader, nil, "cluster demo has no leader"},
		{"leader without api_url", badLeaderURL, nil, "leader pg1 has no usable api_url"},
		{"arguments", testCluster(f.URL), []string{"pg2"}, "unknown command"},
	} {
		r := runSwitchover(t, tc.cluster, "", false, append(tc.args, "--yes")...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.errHas) {
			t.Errorf("%s: err = %v, want %q", tc.name, r.err, tc.errHas)
		}
	}
	if len(f.sent()) != 0 {
		t.Errorf("PATCH sent: %q", f.sent())
	}
}

// Every call is bounded: an agent that never answers is an error, soon.
func TestSwitchoverNeverHangs(t *testing.T) {
	f := newFakeAgent(t)
	f.blockPatch = true
	start := time.Now()
	r := runSwitchover(t, testCluster(f.URL), "", false, "--yes")
	if r.err == nil || !errors.Is(r.err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("err = %v after %v", r.err, time.Since(start))
	}
}

func TestSwitchoverWatchAndAbort(t *testing.T) {
	f := newFakeAgent(t)
	r := runSwitchover(t, testCluster(f.URL), "", false, "watch", testID)
	if r.err != nil || !strings.HasSuffix(r.out, "Switchover "+testID+" completed.\n") {
		t.Errorf("watch: err = %v, output:\n%s", r.err, r.out)
	}
	if r := runSwitchover(t, testCluster(f.URL), "", false, "watch", "unknown"); r.err == nil || !strings.Contains(r.err.Error(), "switchover not found (HTTP 404)") {
		t.Errorf("watch unknown: err = %v", r.err)
	}
	// Watch needs no leader: any member serves the record.
	noLeader := testCluster(f.URL)
	noLeader.Leader = nil
	noLeader.Members["pg0"] = dcs.Member{APIURL: f.URL + "/patroni"} // sorts first
	if r := runSwitchover(t, noLeader, "", false, "watch", testID); r.err != nil {
		t.Errorf("watch without a leader: %v", r.err)
	}

	r = runSwitchover(t, testCluster(f.URL), "", false, "abort", testID)
	if r.err != nil || !strings.Contains(r.out, "Abort requested for switchover "+testID) {
		t.Errorf("abort: err = %v, output %q", r.err, r.out)
	}
	f.abortCode, f.abortBody = 409, `{"error":"past PROMOTE_STANDBY: it only goes forward","id":"`+testID+`"}`
	if r := runSwitchover(t, testCluster(f.URL), "", false, "abort", testID); r.err == nil || !strings.Contains(r.err.Error(), "past PROMOTE_STANDBY") {
		t.Errorf("abort 409: err = %v", r.err)
	}
	if d := cmp.Diff([]string{testID, testID}, f.aborts.all()); d != "" {
		t.Errorf("aborts (-want +got):\n%s", d)
	}
}

func TestMemberAPIs(t *testing.T) {
	c := &dcs.Cluster{
		Leader: &dcs.Leader{Name: "pg2"},
		Members: map[string]dcs.Member{
			"pg1": {APIURL: "http://10.0.0.1:8008/patroni"},
			"pg2": {APIURL: "https://10.0.0.2:8008/patroni?x=1"},
			"pg3": {APIURL: ""},
			"pg4": {APIURL: "http://[::1]:8008/patroni"},
		},
	}
	leader, bases := memberAPIs(c)
	if d := cmp.Diff([]string{"https://10.0.0.2:8008", "http://10.0.0.1:8008", "http://[::1]:8008"}, bases); leader != "pg2" || d != "" {
		t.Errorf("leader %q, bases (-want +got):\n%s", leader, d)
	}
	for _, bad := range []string{"", "10.0.0.1:8008", "ftp://x/patroni", "http:///patroni", "http://%zz"} {
		if b, err := apiBase(bad); err == nil {
			t.Errorf("apiBase(%q) = %q, want an error", bad, b)
		}
	}
}

// The API client moves on from a member it cannot reach, never from one
// that answered.
func TestAPIClientFallback(t *testing.T) {
	f := newFakeAgent(t)
	c := newAPIClient([]string{deadAddr(), f.URL}, 2*time.Second)
	resp, err := c.call(t.Context(), http.MethodPatch, "/switchover", restapi.SwitchoverRequest{To: "pg2"})
	if err != nil || resp.status != 202 || resp.base != f.URL {
		t.Errorf("call = %+v, %v", resp, err)
	}
	other := newFakeAgent(t)
	f.patchCode, f.patchBody = 409, `{"error":"running"}`
	c = newAPIClient([]string{f.URL, other.URL}, 2*time.Second)
	if resp, err := c.call(t.Context(), http.MethodPatch, "/switchover", nil); err != nil || resp.status != 409 || len(other.sent()) != 0 {
		t.Errorf("call = %+v, %v; the second member got %d requests", resp, err, len(other.sent()))
	}
}

// scriptedSwitchovers is restapi.Switchovers for one switchover whose
// record gains events 1..14 and then completes.
type scriptedSwitchovers struct {
	restapi.Switchovers // unused methods panic
	started             chan restapi.SwitchoverRequest
}

func (s *scriptedSwitchovers) StartSwitchover(_ context.Context, req restapi.SwitchoverRequest) (restapi.SwitchoverStarted, error) {
	s.started <- req
	return restapi.SwitchoverStarted{ID: testID, To: "pg2"}, nil
}

func (s *scriptedSwitchovers) WatchSwitchover(ctx context.Context, _ string) (<-chan json.RawMessage, error) {
	ch := make(chan json.RawMessage)
	go func() {
		defer close(ch)
		var evs []string
		for seq := int64(1); seq <= 14; seq++ {
			evs = append(evs, eventJSON(seq))
			state := "running"
			if seq == 14 {
				state = "completed"
			}
			rec := fmt.Sprintf(`{"id":%q,"state":%q,"events":[%s]}`, testID, state, strings.Join(evs, ","))
			select {
			case ch <- json.RawMessage(rec):
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// regentctl against the real restapi server: the wire formats agree.
func TestSwitchoverAgainstRESTServer(t *testing.T) {
	sw := &scriptedSwitchovers{started: make(chan restapi.SwitchoverRequest, 1)}
	srv := httptest.NewServer(restapi.New(restapi.Options{Switchovers: sw}).Handler())
	defer srv.Close()
	r := runSwitchover(t, testCluster(srv.URL), "", false, "--yes", "--to", "pg2", "--reason", "patching")
	if r.err != nil {
		t.Fatalf("err = %v\n%s", r.err, r.out)
	}
	if req := <-sw.started; req.To != "pg2" || req.Reason != "patching" || !strings.HasPrefix(req.RequestedBy, "127.0.0.1:") {
		t.Errorf("request = %+v", req)
	}
	for _, s := range switchover.StageNames() {
		if !regexp.MustCompile(`(?m)^` + s + ` +done `).MatchString(r.out) {
			t.Errorf("stage %s not done:\n%s", s, r.out)
		}
	}
	if !strings.HasSuffix(r.out, "Switchover "+testID+" completed.\n") {
		t.Errorf("output:\n%s", r.out)
	}
}
