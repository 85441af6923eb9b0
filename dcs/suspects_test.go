package dcs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSuspects: suspects/<member> keys read as suspicions; a value that is
// not one (invalid JSON, no leader) and keys deeper than one level are
// left out; other keys are not suspicions.
func TestSuspects(t *testing.T) {
	keys := NewKeys("/service/", "demo")
	kv := func(name, value string) KV { return KV{Key: keys.Prefix() + name, Value: []byte(value)} }
	c := ParseCluster(keys, []KV{
		kv("suspects/pg2", `{"leader":"pg1","leader_revision":7,"since":"2026-12-06T07:00:00Z"}`),
		kv("suspects/pg3", `{"leader":"pg1","leader_revision":"seven"}`),
		kv("suspects/pg4", `not json`),
		kv("suspects/pg5", `{"leader_revision":7}`),
		kv("suspects/a/b", `{"leader":"pg1","leader_revision":7}`),
		kv("decisions/1-pg2", `{"leader":"pg1"}`),
	}, 10)
	want := map[string]Suspicion{"pg2": {Leader: "pg1", LeaderRevision: 7, Since: "2026-12-06T07:00:00Z"}}
	if diff := cmp.Diff(want, c.Suspects()); diff != "" {
		t.Errorf("Suspects (-want +got):\n%s", diff)
	}
	if got := (*Cluster)(nil).Suspects(); len(got) != 0 {
		t.Errorf("nil view: %v", got)
	}
	if got := keys.Suspect("pg2"); got != "/service/demo/suspects/pg2" || keys.Change(got) != ChangeSuspects || keys.Change(keys.Decision("1-pg2")) != ChangeOther {
		t.Errorf("Suspect key %q (change %s), want /service/demo/suspects/pg2 (suspects; a decision: other)", got, keys.Change(got))
	}
}
