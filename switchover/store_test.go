package switchover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/boundedlog"
)

// memStore is an in-memory Store; racer, when set, runs before each CAS
// (another writer getting there first).
type memStore struct {
	data   map[string][]byte
	rev    map[string]int64
	next   int64
	racer  func(m *memStore)
	getErr error
	casErr error
}

func newMemStore() *memStore { return &memStore{data: map[string][]byte{}, rev: map[string]int64{}} }

func (m *memStore) put(id string, data []byte) {
	m.next++
	m.data[id], m.rev[id] = data, m.next
}

func (m *memStore) Get(_ context.Context, id string) ([]byte, int64, bool, error) {
	if m.getErr != nil {
		return nil, 0, false, m.getErr
	}
	d, ok := m.data[id]
	return d, m.rev[id], ok, nil
}

func (m *memStore) CAS(_ context.Context, id string, data []byte, rev int64) (int64, error) {
	if m.casErr != nil {
		return 0, m.casErr
	}
	if m.racer != nil {
		m.racer(m)
	}
	if m.rev[id] != rev {
		return 0, fmt.Errorf("switchovers/%s: %w", id, dcs.ErrConflict)
	}
	m.put(id, data)
	return m.rev[id], nil
}

func (m *memStore) IDs() []string {
	return slices.Sorted(maps.Keys(m.data))
}

func (m *memStore) Delete(_ context.Context, id string) error {
	delete(m.data, id)
	delete(m.rev, id)
	return nil
}

func TestReadUpdateCreate(t *testing.T) {
	ctx := t.Context()
	st := newMemStore()
	r := at(StageCatchUp)
	if _, err := Create(ctx, st, r); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, st, r); !errors.Is(err, dcs.ErrConflict) {
		t.Errorf("Create of a taken id: err %v, want dcs.ErrConflict", err)
	}
	// An abort request lands between each read and write, twice: Update
	// re-reads and keeps both changes.
	races := 0
	st.racer = func(m *memStore) {
		if races < 2 {
			races++
			cur, _, _ := Read(ctx, m, "s1")
			cur.AbortRequested = true
			cur.AppendAt(t0, cur.Stage, KindInfo, "abort requested %d", races)
			data, _ := jsonOf(cur)
			m.put("s1", data)
		}
	}
	got, err := Update(ctx, st, "s1", func(r *Record) error {
		r.AppendAt(t0, StagePromote, KindStarted, "handing over")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := Read(ctx, st, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if races != 2 || !stored.AbortRequested || stored.Stage != StagePromote || len(stored.Events) != 3 || got.Stage != StagePromote {
		t.Errorf("after 2 lost races: %+v; want the abort's and the driver's changes", stored)
	}

	refused := errors.New("past the point of no return")
	if r, err := Update(ctx, st, "s1", func(*Record) error { return refused }); !errors.Is(err, refused) || r == nil || r.Stage != StagePromote {
		t.Errorf("Update with a refusing change = %+v, %v; want the record as read and the refusal", r, err)
	}
	if _, err := Update(ctx, st, "s9", func(*Record) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a missing record: err %v, want ErrNotFound", err)
	}
}

func TestUpdateGivesUp(t *testing.T) {
	ctx := t.Context()
	st := newMemStore()
	if _, err := Create(ctx, st, at(StageQuiesce)); err != nil {
		t.Fatal(err)
	}
	st.racer = func(m *memStore) { m.put("s1", m.data["s1"]) } // someone always wins
	if _, err := Update(ctx, st, "s1", func(*Record) error { return nil }); err == nil || errors.Is(err, dcs.ErrConflict) {
		t.Errorf("Update against an endless writer: err %v, want a bounded give-up", err)
	}
	st.racer = nil
	down := errors.New("etcd away")
	st.casErr = down
	if _, err := Update(ctx, st, "s1", func(*Record) error { return nil }); !errors.Is(err, down) {
		t.Errorf("Update with etcd away on write: err %v, want %v", err, down)
	}
	st.getErr = down
	if _, _, err := Read(ctx, st, "s1"); !errors.Is(err, down) {
		t.Errorf("Read with etcd away: err %v, want %v", err, down)
	}
	st.getErr = nil
	st.data["s1"] = []byte("{")
	if _, _, err := Read(ctx, st, "s1"); err == nil {
		t.Error("Read of a broken record succeeded")
	}
}

func TestTrim(t *testing.T) {
	ctx := t.Context()
	st := newMemStore()
	for i := 1; i <= 5; i++ {
		st.put(fmt.Sprintf("2026112%d-000000-aaaaaa", i), []byte("{}"))
	}
	if err := Trim(ctx, st, 3); err != nil {
		t.Fatal(err)
	}
	want := []string{"20261123-000000-aaaaaa", "20261124-000000-aaaaaa", "20261125-000000-aaaaaa"}
	if got := st.IDs(); !slices.Equal(got, want) {
		t.Errorf("after Trim to 3: %v, want the newest %v", got, want)
	}
	if got := boundedlog.Names(map[string]int{"switchovers/b": 0, "switchovers/a": 0}, recordsPrefix); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("record names %v", got)
	}
}

func jsonOf(r *Record) ([]byte, error) { return json.Marshal(r) }
