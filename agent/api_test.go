package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/dcs/dcstest"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

// heldView is a DCS whose View can be held at an older version, as a watch
// that has not delivered the latest events yet.
type heldView struct {
	*dcstest.Fake
	held atomic.Pointer[dcs.Cluster]
	// servedHeld, when set, is told (without blocking) each time View
	// serves the held version.
	servedHeld chan struct{}
}

func (d *heldView) View() *dcs.Cluster {
	if v := d.held.Load(); v != nil {
		if d.servedHeld != nil {
			select {
			case d.servedHeld <- struct{}{}:
			default:
			}
		}
		return v
	}
	return d.Fake.View()
}

// TestAPIReadsServeTheView: every REST read answers from the watch-fed
// view; none reads etcd.
func TestAPIReadsServeTheView(t *testing.T) {
	h, store, _ := configWithRevision(t)
	ctx := t.Context()
	rec := []byte(`{"id":"s1","state":"completed"}`)
	if err := store.Put(ctx, store.Keys().Switchover("s1"), rec); err != nil {
		t.Fatal(err)
	}
	h.events.take()
	if _, err := h.agent.Cluster(ctx); err != nil {
		t.Errorf("Cluster: %v", err)
	}
	if _, err := h.agent.History(ctx); err != nil {
		t.Errorf("History: %v", err)
	}
	if _, _, err := h.agent.Config(ctx); err != nil {
		t.Errorf("Config: %v", err)
	}
	if _, err := h.agent.Decisions(ctx); err != nil {
		t.Errorf("Decisions: %v", err)
	}
	if got, err := h.agent.ListSwitchovers(ctx); err != nil || string(got) != "["+string(rec)+"]" {
		t.Errorf("ListSwitchovers = %s, %v", got, err)
	}
	if got, err := h.agent.Switchover(ctx, "s1"); err != nil || string(got) != string(rec) {
		t.Errorf("Switchover = %s, %v", got, err)
	}
	if _, err := h.agent.Switchover(ctx, "nope"); !errors.Is(err, restapi.ErrNotFound) {
		t.Errorf("Switchover(absent) = %v, want ErrNotFound", err)
	}
	if ev := h.events.take(); len(ev) != 0 {
		t.Errorf("REST reads called etcd: %v", ev)
	}
}

// TestAPIConfigReadsOwnWrite: after this agent's PATCH /config, GET /config
// waits for the view to show the written revision instead of serving the
// older one.
func TestAPIConfigReadsOwnWrite(t *testing.T) {
	store := newStore()
	via := &heldView{Fake: store}
	h := newLoopHarnessVia(t, store, pgtest.NewEmpty(7000000000000000001), via)
	ctx := t.Context()
	if err := store.Put(ctx, store.Keys().Config(), []byte(`{"ttl":10,"loop_wait":1,"retry_timeout":3}`)); err != nil {
		t.Fatal(err)
	}
	via.held.Store(store.View()) // the watch stops delivering here
	if _, err := h.agent.PatchConfig(ctx, json.RawMessage(`{"ttl":20}`), 0); err != nil {
		t.Fatal(err)
	}
	written := store.Revision()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, rev, err := h.agent.Config(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Config while the view lags = revision %d, %v; want it to wait (deadline exceeded)", rev, err)
	}
	// The watch catches up: the waiting read answers with the write.
	done := make(chan error, 1)
	go func() {
		raw, rev, err := h.agent.Config(ctx)
		if err == nil && (rev != written || !strings.Contains(string(raw), `"ttl":20`)) {
			err = errors.New("Config = " + string(raw) + ", not the written revision")
		}
		done <- err
	}()
	via.catchUp(t, done, "Config")
}

// catchUp lets the held view go, signals readers with a change, and
// fails the test unless the waiting read (done) then answers without error.
func (d *heldView) catchUp(t *testing.T, done <-chan error, read string) {
	t.Helper()
	d.held.Store(nil)
	if err := d.Put(t.Context(), d.Keys().Switchover("other"), []byte(`{}`)); err != nil { // a view change signals readers
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s once the view caught up: %v", read, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not answer once the view caught up", read)
	}
}

// TestAPIStaleView: with no answer from etcd for a ttl the reads refuse
// (503) rather than serve the old view as current.
func TestAPIStaleView(t *testing.T) {
	h, _, _ := configWithRevision(t)
	h.mu.Lock()
	h.now = time.Now().Add(time.Minute)
	h.mu.Unlock()
	_, err := h.agent.Cluster(t.Context())
	if !errors.Is(err, restapi.ErrViewStale) {
		t.Fatalf("Cluster with etcd silent for a minute = %v, want ErrViewStale", err)
	}
	if _, err := h.agent.Switchover(t.Context(), "x"); !errors.Is(err, restapi.ErrViewStale) {
		t.Errorf("Switchover = %v, want ErrViewStale", err)
	}
}

func TestMemberHosts(t *testing.T) {
	store := newStore()
	via := &heldView{Fake: store}
	h := newLoopHarnessVia(t, store, pgtest.NewEmpty(7000000000000000001), via)
	if got := h.agent.MemberHosts(); len(got) != 0 {
		t.Errorf("MemberHosts with no members = %v", got)
	}
	via.held.Store(&dcs.Cluster{Members: map[string]dcs.Member{
		"pg1": {APIURL: "http://10.0.0.1:8008/patroni"},
		"pg2": {APIURL: "https://pg2.example.com:8008/patroni"},
		"pg3": {APIURL: "http://[fd00::3]:8008/patroni"},
		"pg4": {},
	}})
	got := h.agent.MemberHosts()
	slices.Sort(got)
	if want := []string{"10.0.0.1", "fd00::3", "pg2.example.com"}; !slices.Equal(got, want) {
		t.Errorf("MemberHosts = %v, want %v", got, want)
	}
}

// TestPatchConfigLogsKeysNotValues: a patch may carry secrets (a password
// among the parameters); the log names what changed, never a value.
func TestPatchConfigLogsKeysNotValues(t *testing.T) {
	h, _, _ := configWithRevision(t)
	var logs bytes.Buffer
	h.agent.log = slog.New(slog.NewTextHandler(&logs, nil))
	patch := `{"ttl":20,"postgresql":{"parameters":{"work_mem":"8MB","archive_command":"PGPASSWORD=hunter2 upload %p"}}}`
	if _, err := h.agent.PatchConfig(t.Context(), json.RawMessage(patch), 0); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "8MB") {
		t.Errorf("the log shows values:\n%s", out)
	}
	for _, k := range []string{"postgresql.parameters.archive_command", "postgresql.parameters.work_mem", "ttl"} {
		if !strings.Contains(out, k) {
			t.Errorf("the log does not name %s:\n%s", k, out)
		}
	}
}

// fakeFence prints a secret, as a careless fence script may.
type fakeFence struct{}

func (fakeFence) Run(context.Context, string, string, string) (fencing.HookResult, error) {
	return fencing.HookResult{Ran: true, Output: "ipmitool -H bmc1 --password hunter2 power off\nPGPASSWORD=hunter3 psql\nChassis Power Control: Down/Off"}, nil
}

// TestFenceOutputRedacted: the fence hook's output goes to etcd and GET
// /decisions only after what looks like a secret is redacted.
func TestFenceOutputRedacted(t *testing.T) {
	h := newLoopHarness(t, newStore(), pgtest.NewEmpty(7000000000000000001))
	h.agent.cfg.Fence.Command = []string{"/bin/fence"}
	h.agent.stonith = fakeFence{}
	h.agent.previousLeader = "pg9"
	view := &dcs.Cluster{Members: map[string]dcs.Member{"pg9": {State: "running"}}}
	rec, ok := h.agent.stonithOldLeader(t.Context(), Snapshot{View: view})
	if !ok || rec == nil {
		t.Fatalf("stonithOldLeader = %+v, %v", rec, ok)
	}
	if strings.Contains(rec.Output, "hunter") || !strings.Contains(rec.Output, "Chassis Power Control: Down/Off") {
		t.Errorf("fence output kept = %q, want secrets redacted and the rest kept", rec.Output)
	}
}

// TestSwitchoverWaitsForARecordTheViewHasNotYetSeen: a switchover another
// member just created may be missing from this member's view for a moment
// (its watch lags); a client reconnecting its event stream here must get
// the record, not a 404. The read waits for the view (no etcd query) up
// to recordMissWait; an id that never appears is still a 404.
func TestSwitchoverWaitsForARecordTheViewHasNotYetSeen(t *testing.T) {
	store := newStore()
	via := &heldView{Fake: store, servedHeld: make(chan struct{}, 1)}
	h := newLoopHarnessVia(t, store, pgtest.NewEmpty(7000000000000000001), via)
	ctx := t.Context()
	via.held.Store(store.View()) // the watch stops delivering here
	rec := []byte(`{"id":"s2","state":"running"}`)
	if err := store.Put(ctx, store.Keys().Switchover("s2"), rec); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		got, err := h.agent.Switchover(ctx, "s2")
		if err == nil && string(got) != string(rec) {
			err = errors.New("Switchover = " + string(got))
		}
		done <- err
	}()
	<-via.servedHeld // the read saw the view without the record
	via.catchUp(t, done, "Switchover")
	if _, err := h.agent.Switchover(ctx, "never"); !errors.Is(err, restapi.ErrNotFound) {
		t.Fatalf("Switchover(absent) = %v, want ErrNotFound", err)
	}
}
