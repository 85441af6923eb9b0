package restapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

type fakeFailsafe struct {
	got      string
	code     int
	text     string
	topology map[string]string
	err      error
}

func (f *fakeFailsafe) AcceptFailsafe(_ context.Context, body []byte) (int, string) {
	f.got = string(body)
	return f.code, f.text
}

func (f *fakeFailsafe) FailsafeTopology(context.Context) (map[string]string, error) {
	return f.topology, f.err
}

// TestFailsafeEndpoints: POST /failsafe hands the body to the agent and
// writes its plain-text answer (Patroni's "Accepted"); GET /failsafe
// serves the key as JSON, 502 when there is none, 503 when the view is
// stale; without a Failsafe both answer 503.
func TestFailsafeEndpoints(t *testing.T) {
	f := &fakeFailsafe{code: http.StatusOK, text: "Accepted", topology: map[string]string{"pg1": "http://a/patroni"}}
	h := New(Options{Failsafe: f}).Handler()
	body := `{"name":"pg1","api_url":"http://a/patroni"}`
	if r := do(t, h, http.MethodPost, "/failsafe", strings.NewReader(body)); r.code != 200 || r.body != "Accepted" || f.got != body {
		t.Errorf("POST: %d %q, agent got %q", r.code, r.body, f.got)
	}
	if r := do(t, h, http.MethodPost, "/failsafe", strings.NewReader(`{"name":`)); r.code != 400 {
		t.Errorf("POST invalid JSON: %d %q, want 400", r.code, r.body)
	}
	f.code, f.text = 500, "Running as a leader"
	if r := do(t, h, http.MethodPost, "/failsafe", strings.NewReader(body)); r.code != 500 || r.body != "Running as a leader" {
		t.Errorf("POST refused: %d %q", r.code, r.body)
	}
	if r := do(t, h, http.MethodGet, "/failsafe", nil); r.code != 200 || r.body != `{"pg1":"http://a/patroni"}`+"\n" {
		t.Errorf("GET: %d %q", r.code, r.body)
	}
	f.err = fmt.Errorf("%w: no failsafe key", ErrNotFound)
	if r := do(t, h, http.MethodGet, "/failsafe", nil); r.code != http.StatusBadGateway {
		t.Errorf("GET without a key: %d %q, want 502", r.code, r.body)
	}
	f.err = fmt.Errorf("%w for 12s", ErrViewStale)
	if r := do(t, h, http.MethodGet, "/failsafe", nil); r.code != http.StatusServiceUnavailable {
		t.Errorf("GET with a stale view: %d %q, want 503", r.code, r.body)
	}
	none := New(Options{}).Handler()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if r := do(t, none, m, "/failsafe", strings.NewReader(body)); r.code != http.StatusServiceUnavailable {
			t.Errorf("%s without Failsafe: %d, want 503", m, r.code)
		}
	}
}
