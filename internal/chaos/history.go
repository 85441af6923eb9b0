package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// Clock is the run's one monotonic clock: every time the suite records is
// a duration since its start (time.Since reads the monotonic clock).
type Clock struct{ start time.Time }

// NewClock starts a clock.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now is the time since the clock started.
func (c *Clock) Now() time.Duration { return time.Since(c.start) }

// At is a wall-clock time (one another process logged) on the run's clock.
func (c *Clock) At(t time.Time) time.Duration { return t.Sub(c.start) }

// Event is one line of the fault timeline.
type Event struct {
	At   time.Duration
	Text string
}

// record is an append-only list of what a run observed, added to by many
// goroutines and read as a copy in time order (Timeline, History).
type record[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	r.mu.Unlock()
}

// sorted returns a copy ordered by at; items with equal times keep the
// order they were added in.
func (r *record[T]) sorted(at func(T) time.Duration) []T {
	r.mu.Lock()
	out := slices.Clone(r.items)
	r.mu.Unlock()
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(at(a), at(b)) })
	return out
}

// anyLatest reports whether an item matches, looking from the latest
// added (the ones a poll asks about).
func (r *record[T]) anyLatest(match func(T) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.items) - 1; i >= 0; i-- {
		if match(r.items[i]) {
			return true
		}
	}
	return false
}

// Timeline is the run's log of faults, heals, recoveries and leader
// changes. Safe for concurrent use.
type Timeline struct{ events record[Event] }

// Add records an event.
func (l *Timeline) Add(at time.Duration, format string, args ...any) {
	l.events.add(Event{At: at, Text: fmt.Sprintf(format, args...)})
}

// Events returns the events in time order.
func (l *Timeline) Events() []Event {
	return l.events.sorted(func(e Event) time.Duration { return e.At })
}

// String renders the timeline, one event a line.
func (l *Timeline) String() string {
	var b strings.Builder
	for _, e := range l.Events() {
		fmt.Fprintf(&b, "  %9s  %s\n", fmtDur(e.At), e.Text)
	}
	return b.String()
}

// OpKind is what an operation did.
type OpKind uint8

const (
	// OpInsert inserts a row with a unique id into chaos_writes.
	OpInsert OpKind = iota
	// OpWrite sets the register (chaos_reg row Key) to Value.
	OpWrite
	// OpRead reads the register (chaos_reg row Key): durably (its commit
	// waits for the synchronous standby), or plainly (Op.Plain).
	OpRead
)

func (k OpKind) String() string {
	return [...]string{"insert", "write", "read"}[k]
}

// Outcome is what the client knows of an operation's effect.
type Outcome uint8

const (
	// OK: acknowledged (committed; for a read, served by a primary).
	OK Outcome = iota
	// Fail: certainly not applied (refused before or without a commit).
	Fail
	// Unknown: may or may not have been applied (timeout, lost connection).
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"ok", "fail", "unknown"}[o]
}

// Op is one client operation.
type Op struct {
	Kind   OpKind
	Node   string // the node the client sent it to
	Client int
	// ID is the row id of an insert; Key the register row of a write/read.
	ID, Key int64
	// Value is the value a write wrote or a read returned.
	Value    int64
	Invoke   time.Duration
	Complete time.Duration
	Outcome  Outcome
	// Plain: a read that does not wait for the synchronous standby.
	Plain bool
	// Timeline: the primary's timeline at the operation; LSN: its WAL
	// insert position at a write (acknowledged operations only).
	Timeline int
	LSN      uint64
	Err      string // a short reason for Fail and Unknown
	// Via is ViaPgBouncer for an operation sent through PgBouncer ("":
	// straight to Node). Node is then the node whose address the server
	// reported (Server), or ViaPgBouncer when it did not answer.
	Via    string
	Server string
}

func (o Op) String() string {
	what := fmt.Sprintf("%s id=%d", o.Kind, o.ID)
	if o.Kind != OpInsert {
		what = fmt.Sprintf("%s k=%d v=%d", o.Kind, o.Key, o.Value)
	}
	if o.Plain {
		what = "plain " + what
	}
	node := o.Node
	if o.Via != "" && o.Node != o.Via {
		node = o.Via + "→" + o.Node
	}
	s := fmt.Sprintf("[%s, %s] %s c%d %s → %s", fmtDur(o.Invoke), fmtDur(o.Complete), node, o.Client, what, o.Outcome)
	switch {
	case o.Outcome == OK && o.Kind == OpRead && o.Timeline > 0:
		s += fmt.Sprintf(" (tl %d)", o.Timeline)
	case o.Outcome == OK && o.Timeline > 0:
		s += fmt.Sprintf(" (tl %d, lsn %s)", o.Timeline, postgres.LSN(o.LSN))
	}
	if o.Err != "" {
		s += " (" + o.Err + ")"
	}
	return s
}

// History is the record of every operation. Safe for concurrent use.
type History struct{ ops record[Op] }

// Add records a completed (or abandoned) operation.
func (h *History) Add(op Op) { h.ops.add(op) }

// Ops returns a copy of the history, ordered by invocation.
func (h *History) Ops() []Op {
	return h.ops.sorted(func(o Op) time.Duration { return o.Invoke })
}

// window returns the ops of ops overlapping [from, to].
func window(ops []Op, from, to time.Duration) []Op {
	var out []Op
	for _, o := range ops {
		if o.Complete >= from && o.Invoke <= to {
			out = append(out, o)
		}
	}
	return out
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}
