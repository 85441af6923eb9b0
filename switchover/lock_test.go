package switchover

import (
	"testing"
	"time"
)

// TestLockVerdict: which switchover locks are removed, for the leader's
// cleanup (with memory) and a start's one-off check (without).
func TestLockVerdict(t *testing.T) {
	rec := func(state State) Lock {
		l, _ := LockInView(view("s1", map[string]State{"s1": state}))
		return l
	}
	bare := Lock{ID: "s1", Rev: 7}
	for _, tt := range []struct {
		name   string
		lock   Lock
		seen   StaleLock
		after  time.Duration
		remove bool
	}{
		{"running record", rec(StateRunning), StaleLock{}, time.Hour, false},
		{"finished record: at once", rec(StateFailed), StaleLock{}, 0, true},
		{"completed record: at once", rec(StateCompleted), StaleLock{}, 0, true},
		{"unreadable record: at once", Lock{ID: "s1", Rev: 7, Record: []byte("{"), HasRecord: true}, StaleLock{}, 0, true},
		{"no record, first seen (a start's one-off check)", bare, StaleLock{}, 0, false},
		{"no record, within the grace", bare, StaleLock{id: "s1", rev: 7, since: t0}, StaleLockGrace - time.Second, false},
		{"no record, past the grace", bare, StaleLock{id: "s1", rev: 7, since: t0}, StaleLockGrace, true},
		{"no record, lock taken again meanwhile", Lock{ID: "s1", Rev: 9}, StaleLock{id: "s1", rev: 7, since: t0}, time.Hour, false},
		{"no record, another switchover's lock", Lock{ID: "s2", Rev: 7}, StaleLock{id: "s1", rev: 7, since: t0}, time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			remove, next := LockVerdict(tt.lock, tt.seen, t0.Add(tt.after))
			if remove != tt.remove {
				t.Errorf("remove = %v, want %v", remove, tt.remove)
			}
			if !tt.lock.HasRecord && !remove {
				// The grace runs from the first sighting of this very lock.
				if next.id != tt.lock.ID || next.rev != tt.lock.Rev || next.since.After(t0.Add(tt.after)) {
					t.Errorf("next = %+v: does not remember this lock", next)
				}
			}
		})
	}
}

// TestLockVerdictGraceEndToEnd: a lock without a record, checked each
// second with the verdict's memory, goes once the grace has passed.
func TestLockVerdictGraceEndToEnd(t *testing.T) {
	var seen StaleLock
	for s := 0; s <= 20; s++ {
		remove, next := LockVerdict(Lock{ID: "s1", Rev: 7}, seen, t0.Add(time.Duration(s)*time.Second))
		seen = next
		if want := time.Duration(s)*time.Second >= StaleLockGrace; remove != want {
			t.Fatalf("after %ds: remove = %v, want %v", s, remove, want)
		}
		if remove {
			return
		}
	}
}

func TestLockInView(t *testing.T) {
	if _, ok := LockInView(nil); ok {
		t.Error("a lock without a view")
	}
	if _, ok := LockInView(view("", nil)); ok {
		t.Error("a lock in a view without one")
	}
	l, ok := LockInView(view("s1", nil))
	if !ok || l.ID != "s1" || l.Rev != 7 || l.HasRecord {
		t.Errorf("LockInView = %+v, %v; want s1 at rev 7 without a record", l, ok)
	}
	l, ok = LockInView(view("s1", map[string]State{"s1": StateRunning}))
	if r, err := Decode(l.Record); !ok || !l.HasRecord || err != nil || r.ID != "s1" {
		t.Errorf("LockInView = %+v, %v; want s1 with its record", l, ok)
	}
}
