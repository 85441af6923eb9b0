package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

func TestPatchConfig(t *testing.T) {
	store := newStore()
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	h.bootstrapLeader()
	ctx := t.Context()
	got, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl": 20, "postgresql": {"parameters": {"work_mem": "8MB"}}, "maximum_lag_on_failover": null}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if m["ttl"] != float64(20) || m["loop_wait"] != float64(1) {
		t.Errorf("merged config = %s: want ttl 20 and loop_wait kept", got)
	}
	if _, ok := m["maximum_lag_on_failover"]; ok {
		t.Errorf("null must delete the key: %s", got)
	}
	if p, _ := m["postgresql"].(map[string]any)["parameters"].(map[string]any); p["work_mem"] != "8MB" {
		t.Errorf("nested merge lost: %s", got)
	}

	before, _, _ := store.Get(ctx, store.Keys().Config())
	for body, want := range map[string]string{
		`{"ttl": "abc"}`:    "ttl",
		`{"loop_wait": 50}`: "loop_wait",
		`[1,2]`:             "not a JSON object",
	} {
		_, err := h.agent.PatchConfig(ctx, json.RawMessage(body))
		var he *restapi.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(he.Message, want) {
			t.Errorf("PATCH %s: err = %v, want 400 naming %q", body, err, want)
		}
	}
	after, _, _ := store.Get(ctx, store.Keys().Config())
	if after.ModRevision != before.ModRevision {
		t.Error("a refused PATCH changed the config key")
	}
}

func TestPatchConfigWithoutKeyIs503(t *testing.T) {
	h := newLoopHarness(t, dcstest.New(newStore().Keys()), pgtest.New(7000000000000000001))
	_, err := h.agent.PatchConfig(t.Context(), json.RawMessage(`{"ttl": 20}`))
	var he *restapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
}
