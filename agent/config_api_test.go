package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

func TestPatchConfig(t *testing.T) {
	store := newStore()
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	h.bootstrapLeader()
	ctx := t.Context()
	got, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl": 20, "postgresql": {"parameters": {"work_mem": "8MB"}}, "maximum_lag_on_failover": null}`), 0)
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
		`{"postgresql": {"parameters": {"work_mem": "8MB", "port": 5433}}}`: "postgresql.parameters.port: set postgres.listen instead",
		`{"failsafe_mode": "maybe"}`:                                        "failsafe_mode:",
		`{"synchronous_mode": "quorom"}`:                                    "synchronous_mode: quorom is not true, false or quorum",
		`{"synchronous_node_count": 0}`:                                     "synchronous_node_count: 0 is outside 1",
		`{"switchover_timeout": "NaN"}`:                                     "switchover_timeout: NaN is not a number of seconds",
	} {
		_, err := h.agent.PatchConfig(ctx, json.RawMessage(body), 0)
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
	_, err := h.agent.PatchConfig(t.Context(), json.RawMessage(`{"ttl": 20}`), 0)
	var he *restapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
}

// configWithRevision is a harness whose store holds a valid config key;
// it returns the key's revision.
func configWithRevision(t *testing.T) (*loopHarness, *dcstest.Fake, int64) {
	t.Helper()
	store := newStore()
	h := newLoopHarness(t, store, pgtest.NewEmpty(7000000000000000001))
	key := store.Keys().Config()
	if err := store.Put(t.Context(), key, []byte(`{"ttl":10,"loop_wait":1,"retry_timeout":3}`)); err != nil {
		t.Fatal(err)
	}
	v, _, err := store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return h, store, v.ModRevision
}

// wantChanged checks err is a ConfigChangedError from expected to current.
func wantChanged(t *testing.T, err error, expected, current int64) {
	t.Helper()
	var ce *restapi.ConfigChangedError
	if !errors.As(err, &ce) || ce.Expected != expected || ce.Current != current {
		t.Fatalf("err = %v, want ConfigChangedError{Expected: %d, Current: %d}", err, expected, current)
	}
}

// unchanged checks the config key still holds want at revision rev.
func unchanged(t *testing.T, store *dcstest.Fake, rev int64, want string) {
	t.Helper()
	v, _, err := store.Get(t.Context(), store.Keys().Config())
	if err != nil || v.ModRevision != rev || string(v.Data) != want {
		t.Fatalf("config key = %s at %d (%v), want %s at %d untouched", v.Data, v.ModRevision, err, want, rev)
	}
}

func TestPatchConfigIfRevision(t *testing.T) {
	h, store, read := configWithRevision(t)
	ctx := t.Context()
	key := store.Keys().Config()
	// Another operator changes the key after ours was read.
	other := `{"ttl":10,"loop_wait":1,"retry_timeout":3,"maximum_lag_on_failover":5}`
	if err := store.Put(ctx, key, []byte(other)); err != nil {
		t.Fatal(err)
	}
	now, _, _ := store.Get(ctx, key)
	_, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl":20}`), read)
	wantChanged(t, err, read, now.ModRevision)
	unchanged(t, store, now.ModRevision, other)

	// With the revision it has now, the patch goes through.
	got, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl":20}`), now.ModRevision)
	if err != nil || !strings.Contains(string(got), `"ttl":20`) || !strings.Contains(string(got), `"maximum_lag_on_failover":5`) {
		t.Fatalf("PATCH at the current revision = %s, %v", got, err)
	}
	if v, _, _ := store.Get(ctx, key); v.ModRevision == now.ModRevision {
		t.Error("PATCH at the current revision wrote nothing")
	}
}

func TestPatchConfigIfRevisionLosingTheCASIs412(t *testing.T) {
	h, store, read := configWithRevision(t)
	// The key changes between the agent's read and its CAS.
	store.Intercept(func(op, _ string) error {
		if op == "CAS" {
			return fmt.Errorf("%w: injected", dcs.ErrConflict)
		}
		return nil
	})
	_, err := h.agent.PatchConfig(t.Context(), json.RawMessage(`{"ttl":20}`), read)
	wantChanged(t, err, read, read)
	// Without If-Match the same race stays Patroni's 409.
	_, err = h.agent.PatchConfig(t.Context(), json.RawMessage(`{"ttl":20}`), 0)
	var he *restapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusConflict {
		t.Fatalf("lost CAS without If-Match: err = %v, want 409", err)
	}
}

func TestPutConfigIfRevision(t *testing.T) {
	h, store, read := configWithRevision(t)
	ctx := t.Context()
	key := store.Keys().Config()
	other := `{"ttl":10,"loop_wait":1,"retry_timeout":3,"pause":true}`
	if err := store.Put(ctx, key, []byte(other)); err != nil {
		t.Fatal(err)
	}
	now, _, _ := store.Get(ctx, key)
	mine := json.RawMessage(`{"ttl":20,"loop_wait":1,"retry_timeout":3}`)
	_, err := h.agent.PutConfig(ctx, mine, read)
	wantChanged(t, err, read, now.ModRevision)
	unchanged(t, store, now.ModRevision, other)

	if _, err := h.agent.PutConfig(ctx, mine, now.ModRevision); err != nil {
		t.Fatalf("PUT at the current revision: %v", err)
	}
	v, _, _ := store.Get(ctx, key)
	if string(v.Data) != `{"loop_wait":1,"retry_timeout":3,"ttl":20}` {
		t.Errorf("config key = %s after PUT at the current revision", v.Data)
	}
	// Without a revision PUT stays a plain put.
	if _, err := h.agent.PutConfig(ctx, json.RawMessage(other), 0); err != nil {
		t.Fatalf("PUT without a revision: %v", err)
	}
}

func TestConfigIfRevisionOnAbsentKey(t *testing.T) {
	store := newStore()
	h := newLoopHarness(t, store, pgtest.New(7000000000000000001))
	ctx := t.Context()
	_, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl":20}`), 5)
	wantChanged(t, err, 5, 0)
	_, err = h.agent.PutConfig(ctx, json.RawMessage(`{"ttl":20,"loop_wait":1,"retry_timeout":3}`), 5)
	wantChanged(t, err, 5, 0)
	if _, ok, _ := store.Get(ctx, store.Keys().Config()); ok {
		t.Error("a PUT against a revision created the absent config key")
	}
}

func TestConfigServesTheRevision(t *testing.T) {
	h, _, read := configWithRevision(t)
	raw, rev, err := h.agent.Config(t.Context())
	if err != nil || rev != read || string(raw) != `{"ttl":10,"loop_wait":1,"retry_timeout":3}` {
		t.Fatalf("Config = %s, %d, %v; want the key at revision %d", raw, rev, err, read)
	}
}
