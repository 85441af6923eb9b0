package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/regent-ha/regent/restapi"
)

// TestCallFailsafe: only 200 with the body "Accepted" counts; the call
// goes to /failsafe beside api_url's /patroni, with the cluster's REST
// credentials; a member without api_url or unreachable is a refusal.
func TestCallFailsafe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/failsafe" || string(body) != `{"name":"pg1"}`:
			http.Error(w, "bad request", http.StatusBadRequest)
		case user != "u" || pass != "p":
			http.Error(w, "no auth", http.StatusUnauthorized)
		default:
			_, _ = io.WriteString(w, "Accepted")
		}
	}))
	defer srv.Close()
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "Running as a leader")
	}))
	defer primary.Close()
	h := NewHTTPPeers(nil)
	h.Auth = restapi.Authentication{Username: "u", Password: "p"}
	got := h.CallFailsafe(t.Context(), map[string]string{
		"ok":      srv.URL + "/patroni",
		"primary": primary.URL + "/patroni",
		"noapi":   "",
		"down":    "http://127.0.0.1:1/patroni",
	}, []byte(`{"name":"pg1"}`))
	if got["ok"] != nil || got["primary"] == nil || got["noapi"] == nil || got["down"] == nil || len(got) != 4 {
		t.Errorf("answers = %v", got)
	}
	h.Auth = restapi.Authentication{}
	if err := h.CallFailsafe(t.Context(), map[string]string{"ok": srv.URL + "/patroni"}, []byte(`{"name":"pg1"}`))["ok"]; err == nil {
		t.Error("a 401 counted as accepted")
	}
}
