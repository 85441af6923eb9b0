package fencingtest_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing/fencingtest"
)

func TestFakeDevice(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := fencingtest.NewFakeDevice(clock)
	open := f.Opener()

	if f.Armed() || f.Fired(now.Add(time.Hour)) || !f.Deadline().IsZero() {
		t.Fatal("a closed device is armed, fires or has a deadline")
	}
	f.FailOpen(os.ErrPermission)
	if _, err := open("/dev/watchdog"); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("scripted open error = %v", err)
	}
	f.FailOpen(nil)
	d, err := open("/dev/watchdog0")
	if err != nil || f.Path() != "/dev/watchdog0" || !f.Armed() {
		t.Fatalf("open = %v, path %q, armed %v", err, f.Path(), f.Armed())
	}
	if _, err := open("/dev/watchdog0"); !errors.Is(err, fencingtest.ErrBusy) {
		t.Errorf("second open = %v, want ErrBusy", err)
	}
	// Open starts the timer with the driver's default timeout.
	if !f.Deadline().Equal(now.Add(fencingtest.DefaultTimeout)) {
		t.Errorf("deadline after open = %s", f.Deadline())
	}

	now = now.Add(time.Second)
	if err := d.SetTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Timeout(); got != 5*time.Second || !f.Deadline().Equal(now.Add(5*time.Second)) {
		t.Errorf("timeout %s deadline %s; SetTimeout must set and ping", got, f.Deadline())
	}
	now = now.Add(3 * time.Second)
	if err := d.Ping(); err != nil {
		t.Fatal(err)
	}
	fire := now.Add(5 * time.Second)
	if f.Fired(fire) || !f.Fired(fire.Add(time.Nanosecond)) {
		t.Errorf("Fired must turn true just after lastPing + timeout (%s)", fire)
	}

	f.ReadBackLonger(2 * time.Second)
	if err := d.SetTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Timeout(); got != 7*time.Second {
		t.Errorf("read back %s, want 7s", got)
	}

	f.FailPing(errors.New("EIO"))
	if err := d.Ping(); err == nil || f.Pings() != 1 {
		t.Errorf("scripted ping failure: err %v, pings %d", err, f.Pings())
	}
	f.FailSetTimeout(errors.New("EINVAL"))
	if err := d.SetTimeout(time.Second); err == nil {
		t.Error("scripted SetTimeout failure returned nil")
	}

	if err := d.Close(); err != nil || f.Armed() || f.Fired(now.Add(time.Hour)) || f.Closes() != 1 {
		t.Errorf("Close = %v; armed %v, closes %d", err, f.Armed(), f.Closes())
	}
	if err := d.Ping(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Ping after Close = %v, want os.ErrClosed", err)
	}
	if got := len(f.SetTimeouts()); got != 3 || f.Opens() != 1 {
		t.Errorf("recorded %d SetTimeouts, %d opens; want 3, 1", got, f.Opens())
	}
}
