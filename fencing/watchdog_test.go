package fencing_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/fencing/fencingtest"
)

// clock is a manual clock shared by the watchdog and the fake device.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// logCount counts log records per level.
type logCount struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[slog.Level]int{}
	}
	l.n[r.Level]++
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }
func (l *logCount) count(lv slog.Level) int            { l.mu.Lock(); defer l.mu.Unlock(); return l.n[lv] }

type rig struct {
	clk  *clock
	dev  *fencingtest.FakeDevice
	logs *logCount
	wd   *fencing.Watchdog
}

func newRig(t *testing.T, mode fencing.Mode) *rig {
	t.Helper()
	cfg := fencing.Config{Mode: mode}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &rig{clk: newClock(), logs: &logCount{}}
	r.dev = fencingtest.NewFakeDevice(r.clk.Now)
	r.wd = fencing.NewWatchdog(cfg, r.dev.Opener(), slog.New(r.logs), r.clk.Now)
	t.Cleanup(func() {
		if err := r.wd.Disarm(); err != nil {
			t.Errorf("Disarm at cleanup: %v", err)
		}
		if r.dev.Armed() {
			t.Error("device still armed after Disarm")
		}
	})
	return r
}

func TestArmSetsAndReadsBackTimeout(t *testing.T) {
	for _, mode := range []fencing.Mode{fencing.ModeAutomatic, fencing.ModeRequired} {
		t.Run(string(mode), func(t *testing.T) {
			r := newRig(t, mode)
			if err := r.wd.Arm(7 * time.Second); err != nil {
				t.Fatalf("Arm: %v", err)
			}
			if !r.dev.Armed() || r.dev.Path() != "/dev/watchdog" {
				t.Fatalf("device armed=%v path=%q, want armed /dev/watchdog", r.dev.Armed(), r.dev.Path())
			}
			if diff := cmp.Diff([]time.Duration{7 * time.Second}, r.dev.SetTimeouts()); diff != "" {
				t.Errorf("SetTimeout calls (-want +got):\n%s", diff)
			}
			if r.dev.Pings() != 1 {
				t.Errorf("pings after Arm = %d, want 1", r.dev.Pings())
			}
			want := fencing.Status{Mode: mode, Armed: true, Timeout: 7 * time.Second, LastKeepalive: r.clk.Now()}
			if diff := cmp.Diff(want, r.wd.Status()); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
			if !r.wd.Usable() {
				t.Error("Usable() = false after a successful Arm")
			}

			// Idempotent: same timeout, nothing touches the device.
			if err := r.wd.Arm(7 * time.Second); err != nil {
				t.Fatalf("second Arm: %v", err)
			}
			if n, p := len(r.dev.SetTimeouts()), r.dev.Pings(); n != 1 || p != 1 || r.dev.Opens() != 1 {
				t.Errorf("second Arm touched the device: %d SetTimeout, %d pings, %d opens", n, p, r.dev.Opens())
			}

			// A new timeout re-sets the open device.
			if err := r.wd.Arm(5 * time.Second); err != nil {
				t.Fatalf("Arm(5s): %v", err)
			}
			if diff := cmp.Diff([]time.Duration{7 * time.Second, 5 * time.Second}, r.dev.SetTimeouts()); diff != "" {
				t.Errorf("SetTimeout calls (-want +got):\n%s", diff)
			}
			if got := r.wd.Status().Timeout; got != 5*time.Second || r.dev.Opens() != 1 {
				t.Errorf("Status.Timeout = %s, opens = %d; want 5s, 1", got, r.dev.Opens())
			}
		})
	}
}

func TestArmTruncatesToWholeSeconds(t *testing.T) {
	r := newRig(t, fencing.ModeRequired)
	if err := r.wd.Arm(7900 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{7 * time.Second}, r.dev.SetTimeouts()); diff != "" {
		t.Errorf("SetTimeout calls (-want +got):\n%s", diff)
	}
	if err := r.wd.Arm(500 * time.Millisecond); !errors.Is(err, fencing.ErrUnusable) {
		t.Errorf("Arm(500ms) = %v, want ErrUnusable", err)
	}
}

func TestArmReadBackLonger(t *testing.T) {
	t.Run("required refuses and closes", func(t *testing.T) {
		r := newRig(t, fencing.ModeRequired)
		r.dev.ReadBackLonger(time.Second)
		err := r.wd.Arm(7 * time.Second)
		if !errors.Is(err, fencing.ErrUnusable) {
			t.Fatalf("Arm = %v, want ErrUnusable", err)
		}
		if r.dev.Armed() || r.dev.Closes() != 1 {
			t.Errorf("device armed=%v closes=%d, want magic-closed once", r.dev.Armed(), r.dev.Closes())
		}
		st := r.wd.Status()
		if st.Armed || !st.Failed || st.Reason == "" || r.wd.Usable() {
			t.Errorf("Status = %+v, Usable = %v; want failed with a reason, unusable", st, r.wd.Usable())
		}
	})
	t.Run("automatic warns and stays armed", func(t *testing.T) {
		r := newRig(t, fencing.ModeAutomatic)
		r.dev.ReadBackLonger(time.Second)
		if err := r.wd.Arm(7 * time.Second); err != nil {
			t.Fatalf("Arm = %v, want nil", err)
		}
		st := r.wd.Status()
		if !r.dev.Armed() || !st.Armed || st.Failed || st.Timeout != 8*time.Second || st.Reason == "" {
			t.Errorf("Status = %+v; want armed at 8s, not failed, with a warning reason", st)
		}
		if r.logs.count(slog.LevelWarn) == 0 {
			t.Error("no warning logged")
		}
		if !r.wd.Usable() {
			t.Error("Usable() = false in automatic mode")
		}
	})
}

func TestArmOpenFailure(t *testing.T) {
	t.Run("required", func(t *testing.T) {
		r := newRig(t, fencing.ModeRequired)
		r.dev.FailOpen(os.ErrNotExist)
		err := r.wd.Arm(7 * time.Second)
		if !errors.Is(err, fencing.ErrUnusable) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Arm = %v, want ErrUnusable wrapping os.ErrNotExist", err)
		}
		if r.wd.Usable() {
			t.Error("Usable() = true after a failed Arm in required mode")
		}
		if st := r.wd.Status(); !st.Failed || st.Armed || st.Reason == "" {
			t.Errorf("Status = %+v, want Failed with a reason", st)
		}
		// Fixed device: the next Arm succeeds and clears Failed.
		r.dev.FailOpen(nil)
		if err := r.wd.Arm(7 * time.Second); err != nil {
			t.Fatalf("Arm after the device came back: %v", err)
		}
		if st := r.wd.Status(); st.Failed || !st.Armed || st.Reason != "" || !r.wd.Usable() {
			t.Errorf("Status = %+v, Usable = %v; want armed, usable", st, r.wd.Usable())
		}
	})
	t.Run("automatic logs once", func(t *testing.T) {
		r := newRig(t, fencing.ModeAutomatic)
		r.dev.FailOpen(os.ErrPermission)
		for range 5 { // the loop retries every tick
			if err := r.wd.Arm(7 * time.Second); err != nil {
				t.Fatalf("Arm = %v, want nil in automatic mode", err)
			}
		}
		st := r.wd.Status()
		if st.Armed || st.Failed || st.Reason == "" {
			t.Errorf("Status = %+v; want not armed, not failed, a reason", st)
		}
		if !r.wd.Usable() {
			t.Error("Usable() = false in automatic mode")
		}
		if n := r.logs.count(slog.LevelWarn); n != 1 {
			t.Errorf("%d warnings for 5 failed Arms, want 1", n)
		}
	})
}

func TestArmSetTimeoutFailureClosesDevice(t *testing.T) {
	for _, mode := range []fencing.Mode{fencing.ModeAutomatic, fencing.ModeRequired} {
		t.Run(string(mode), func(t *testing.T) {
			r := newRig(t, mode)
			r.dev.FailSetTimeout(errors.New("EOPNOTSUPP"))
			err := r.wd.Arm(7 * time.Second)
			if mode == fencing.ModeRequired != errors.Is(err, fencing.ErrUnusable) {
				t.Fatalf("Arm = %v in %s mode", err, mode)
			}
			if r.dev.Armed() {
				t.Error("device left open (it would reset the host): want magic-closed")
			}
			if r.wd.Status().Armed {
				t.Error("Status.Armed = true")
			}
		})
	}
}

func TestOffNeverOpens(t *testing.T) {
	r := newRig(t, fencing.ModeOff)
	if err := r.wd.Arm(7 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.wd.Keepalive(); err != nil {
		t.Fatal(err)
	}
	if r.dev.Opens() != 0 || !r.wd.Usable() || r.wd.Status() != (fencing.Status{Mode: fencing.ModeOff}) {
		t.Errorf("opens=%d usable=%v status=%+v", r.dev.Opens(), r.wd.Usable(), r.wd.Status())
	}
}

func TestKeepaliveBeforeArmDoesNothing(t *testing.T) {
	r := newRig(t, fencing.ModeRequired)
	if err := r.wd.Keepalive(); err != nil {
		t.Fatal(err)
	}
	if r.dev.Opens() != 0 || r.dev.Pings() != 0 || !r.wd.Status().LastKeepalive.IsZero() {
		t.Errorf("Keepalive before Arm touched the device: opens=%d pings=%d", r.dev.Opens(), r.dev.Pings())
	}
}

func TestKeepaliveRecordsTime(t *testing.T) {
	r := newRig(t, fencing.ModeRequired)
	if err := r.wd.Arm(7 * time.Second); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(time.Second)
	if err := r.wd.Keepalive(); err != nil {
		t.Fatal(err)
	}
	if got := r.wd.Status().LastKeepalive; !got.Equal(r.clk.Now()) || r.dev.Pings() != 2 {
		t.Errorf("LastKeepalive = %s (pings %d), want %s (2)", got, r.dev.Pings(), r.clk.Now())
	}
	if !r.dev.Deadline().Equal(r.clk.Now().Add(7 * time.Second)) {
		t.Errorf("device deadline %s, want now+7s", r.dev.Deadline())
	}
}

func TestKeepaliveFailure(t *testing.T) {
	t.Run("required marks unusable, keeps the device open", func(t *testing.T) {
		r := newRig(t, fencing.ModeRequired)
		if err := r.wd.Arm(7 * time.Second); err != nil {
			t.Fatal(err)
		}
		r.dev.FailPing(errors.New("EIO"))
		if err := r.wd.Keepalive(); !errors.Is(err, fencing.ErrUnusable) {
			t.Fatalf("Keepalive = %v, want ErrUnusable", err)
		}
		if r.wd.Usable() || !r.dev.Armed() {
			t.Errorf("Usable = %v, device armed = %v; want unusable and still armed", r.wd.Usable(), r.dev.Armed())
		}
		// Arm for the same timeout is not a silent no-op while failed.
		if err := r.wd.Arm(7 * time.Second); !errors.Is(err, fencing.ErrUnusable) {
			t.Errorf("Arm while pings fail = %v, want ErrUnusable", err)
		}
	})
	t.Run("automatic logs", func(t *testing.T) {
		r := newRig(t, fencing.ModeAutomatic)
		if err := r.wd.Arm(7 * time.Second); err != nil {
			t.Fatal(err)
		}
		r.dev.FailPing(errors.New("EIO"))
		for range 3 { // every tick
			if err := r.wd.Keepalive(); err != nil {
				t.Fatalf("Keepalive = %v, want nil", err)
			}
		}
		if !r.wd.Usable() || r.logs.count(slog.LevelWarn) != 1 {
			t.Errorf("usable=%v warnings=%d", r.wd.Usable(), r.logs.count(slog.LevelWarn))
		}
	})
}

func TestDisarmIdempotent(t *testing.T) {
	r := newRig(t, fencing.ModeRequired)
	if err := r.wd.Disarm(); err != nil { // before Arm
		t.Fatal(err)
	}
	if err := r.wd.Arm(7 * time.Second); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := r.wd.Disarm(); err != nil {
			t.Fatal(err)
		}
	}
	if r.dev.Armed() || r.dev.Closes() != 1 {
		t.Errorf("armed=%v closes=%d, want one magic close", r.dev.Armed(), r.dev.Closes())
	}
	if st := r.wd.Status(); st.Armed || st.Timeout != 0 {
		t.Errorf("Status = %+v after Disarm", st)
	}
	if err := r.wd.Keepalive(); err != nil || r.dev.Pings() != 1 {
		t.Errorf("Keepalive after Disarm = %v, pings %d; want nil, no ping", err, r.dev.Pings())
	}
	// Re-arming opens the device again (a real one admits one opener).
	if err := r.wd.Arm(7 * time.Second); err != nil || r.dev.Opens() != 2 {
		t.Errorf("re-Arm = %v, opens = %d", err, r.dev.Opens())
	}
}

func TestStatusConcurrentWithLoop(t *testing.T) {
	r := newRig(t, fencing.ModeRequired)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = r.wd.Status()
			_ = r.wd.Usable()
		}
	}()
	for range 50 {
		if err := r.wd.Arm(7 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := r.wd.Keepalive(); err != nil {
			t.Fatal(err)
		}
		if err := r.wd.Disarm(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}
