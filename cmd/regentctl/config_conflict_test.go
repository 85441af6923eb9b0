package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

type noPeers struct{}

func (noPeers) Fetch(context.Context, map[string]dcs.Member) []agent.PeerStatus { return nil }

type discardSnapshots struct{}

func (discardSnapshots) Publish(*restapi.Snapshot) {}

// realConfigAgent is a real agent's REST API (PATCH /config and the rest)
// over the fake etcd store, recording the If-Match of every request.
type realConfigAgent struct {
	url   string
	store *dcstest.Fake
	match recorder[string]
}

func newRealConfigAgent(t *testing.T, configKey string) *realConfigAgent {
	t.Helper()
	data, err := os.ReadFile(writeRegentYAML(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	store := dcstest.New(dcs.NewKeys("/service/", "demo"))
	if err := store.Put(t.Context(), store.Keys().Config(), []byte(configKey)); err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Options{Config: cfg, DCS: store, Postgres: pgtest.New(7000000000000000001),
		Publisher: discardSnapshots{}, Peers: noPeers{}})
	if err != nil {
		t.Fatal(err)
	}
	a := &realConfigAgent{store: store}
	h := restapi.New(restapi.Options{Commands: ag, Backend: ag}).Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.match.add(r.Header.Get("If-Match"))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	a.url = ts.URL
	return a
}

// loader reads the cluster as regentctl would, the config key from the
// store with its revision; then runs meanwhile (once), as another operator
// would while the first one edits.
func (a *realConfigAgent) loader(t *testing.T, meanwhile func()) func(context.Context) (*dcs.Cluster, error) {
	var once sync.Once
	return func(ctx context.Context) (*dcs.Cluster, error) {
		v, ok, err := a.store.Get(ctx, a.store.Keys().Config())
		if err != nil {
			return nil, fmt.Errorf("config key: %w", err)
		}
		if !ok {
			return nil, errors.New("config key: not present")
		}
		c := threeMembers(map[string]string{"pg1": a.url}, string(v.Data))
		c.Config.ModRevision = v.ModRevision
		if meanwhile != nil {
			once.Do(meanwhile)
		}
		return c, nil
	}
}

const conflictBase = `{"ttl":10,"loop_wait":1,"retry_timeout":3,"maximum_lag_on_failover":1048576}`

func TestEditConfigRefusesAConcurrentChange(t *testing.T) {
	clearEnv(t)
	a := newRealConfigAgent(t, conflictBase)
	key := a.store.Keys().Config()
	read, _, _ := a.store.Get(t.Context(), key)
	theirs := `{"ttl":10,"loop_wait":1,"retry_timeout":3,"maximum_lag_on_failover":5}`
	meanwhile := func() {
		if err := a.store.Put(t.Context(), key, []byte(theirs)); err != nil {
			t.Error(err)
		}
	}
	r := ctlRun{loader: a.loader(t, meanwhile)}.run(t, "edit-config", "-s", "ttl=20", "--force")
	now, _, _ := a.store.Get(t.Context(), key)
	if r.code != exitFailed || !errors.Is(r.err, errConfigChanged) {
		t.Fatalf("edit-config over a concurrent change: exit %d, %v\n%s", r.code, r.err, r.out)
	}
	want := fmt.Sprintf("configuration not changed: it was changed by someone else since it was read (revision %d, now %d); run edit-config again",
		read.ModRevision, now.ModRevision)
	if !strings.Contains(r.errOut, want) {
		t.Errorf("stderr %q lacks %q", r.errOut, want)
	}
	if string(now.Data) != theirs || strings.Contains(r.out, "Configuration changed") {
		t.Errorf("config key = %s (output %q): the other operator's value must stay", now.Data, r.out)
	}
	if got := a.match.all(); len(got) != 1 || got[0] != fmt.Sprintf("%q", fmt.Sprint(read.ModRevision)) {
		t.Errorf("If-Match sent = %q, want the revision shown, %d", got, read.ModRevision)
	}

	// Run again: it reads their change and applies ours on top.
	r = ctlRun{loader: a.loader(t, nil)}.run(t, "edit-config", "-s", "ttl=20", "--force")
	if r.err != nil {
		t.Fatalf("edit-config again: %v\n%s", r.err, r.out)
	}
	v, _, _ := a.store.Get(t.Context(), key)
	if !strings.Contains(string(v.Data), `"ttl":20`) || !strings.Contains(string(v.Data), `"maximum_lag_on_failover":5`) {
		t.Errorf("config key = %s, want ttl 20 on top of the other change", v.Data)
	}
}

func TestEditConfigConflictWithoutCurrentRevision(t *testing.T) {
	_, c := editCluster(t, answer{412, `{"error":"the config changed since revision 7"}`})
	r := ctlRun{loader: fixed(c)}.run(t, "edit-config", "-s", "ttl=20", "--force")
	if r.code != exitFailed || !strings.Contains(r.errOut, "(revision 7, now unknown); run edit-config again") {
		t.Errorf("412 without an ETag: exit %d, stderr %q", r.code, r.errOut)
	}
}
