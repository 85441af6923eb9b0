package fencingtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/regent-ha/regent/fencing"
)

// ErrBusy is what Open returns while the fake is already open: like Linux
// watchdog devices, it admits one opener at a time (EBUSY).
var ErrBusy = errors.New("fencingtest: device busy")

// DefaultTimeout is the timeout the fake runs with between Open and the first
// SetTimeout (softdog's default is 60s).
const DefaultTimeout = 60 * time.Second

// FakeDevice implements fencing.Device. Like a real device it starts its
// timer on open, restarts it on SetTimeout and Ping, and disarms on Close.
// It records every call and can be scripted to fail. Safe for concurrent
// use.
type FakeDevice struct {
	now func() time.Time

	mu            sync.Mutex
	open          bool
	path          string
	timeout       time.Duration
	lastPing      time.Time
	setTimeouts   []time.Duration
	opens, pings  int
	closes        int
	openErr       error
	setTimeoutErr error
	pingErr       error
	readBackExtra time.Duration
}

var _ fencing.Device = (*FakeDevice)(nil)

// NewFakeDevice returns a closed fake device reading time from now.
func NewFakeDevice(now func() time.Time) *FakeDevice {
	return &FakeDevice{now: now, timeout: DefaultTimeout}
}

// Opener returns a fencing.Opener that opens this fake (or returns the error
// set with FailOpen, or ErrBusy if it is already open).
func (f *FakeDevice) Opener() fencing.Opener {
	return func(path string) (fencing.Device, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.openErr != nil {
			return nil, f.openErr
		}
		if f.open {
			return nil, fmt.Errorf("open %s: %w", path, ErrBusy)
		}
		f.open, f.path, f.lastPing = true, path, f.now()
		f.opens++
		return f, nil
	}
}

// FailOpen makes the opener return err (nil: succeed again).
func (f *FakeDevice) FailOpen(err error) { f.mu.Lock(); f.openErr = err; f.mu.Unlock() }

// FailSetTimeout makes SetTimeout return err (nil: succeed again).
func (f *FakeDevice) FailSetTimeout(err error) { f.mu.Lock(); f.setTimeoutErr = err; f.mu.Unlock() }

// FailPing makes Ping return err (nil: succeed again).
func (f *FakeDevice) FailPing(err error) { f.mu.Lock(); f.pingErr = err; f.mu.Unlock() }

// ReadBackLonger makes the device use, and read back, extra more than any
// timeout it is set to — a driver that rounds up.
func (f *FakeDevice) ReadBackLonger(extra time.Duration) {
	f.mu.Lock()
	f.readBackExtra = extra
	f.mu.Unlock()
}

// SetTimeout records d; the device then fires d (+ the ReadBackLonger extra)
// after the last ping. Like Linux, setting the timeout also pings.
func (f *FakeDevice) SetTimeout(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return os.ErrClosed
	}
	f.setTimeouts = append(f.setTimeouts, d)
	if f.setTimeoutErr != nil {
		return f.setTimeoutErr
	}
	f.timeout, f.lastPing = d+f.readBackExtra, f.now()
	return nil
}

// Timeout reads back the timeout in use.
func (f *FakeDevice) Timeout() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return 0, os.ErrClosed
	}
	return f.timeout, nil
}

// Ping restarts the timer.
func (f *FakeDevice) Ping() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return os.ErrClosed
	}
	if f.pingErr != nil {
		return f.pingErr
	}
	f.pings++
	f.lastPing = f.now()
	return nil
}

// Close is the magic close: the device disarms.
func (f *FakeDevice) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return os.ErrClosed
	}
	f.open = false
	f.closes++
	return nil
}

// Armed reports whether the device is open (and so counting down).
func (f *FakeDevice) Armed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

// Deadline is when the device fires without another ping: the last ping
// (or open / SetTimeout) plus the timeout. Zero when not armed.
func (f *FakeDevice) Deadline() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return time.Time{}
	}
	return f.lastPing.Add(f.timeout)
}

// Fired reports whether a real device would have reset the host by now:
// armed and now − lastPing > timeout.
func (f *FakeDevice) Fired(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open && now.Sub(f.lastPing) > f.timeout
}

// SetTimeouts returns every timeout SetTimeout was called with.
func (f *FakeDevice) SetTimeouts() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.setTimeouts...)
}

// Opens counts successful opens.
func (f *FakeDevice) Opens() int { f.mu.Lock(); defer f.mu.Unlock(); return f.opens }

// Pings counts successful pings (not SetTimeout's implicit one).
func (f *FakeDevice) Pings() int { f.mu.Lock(); defer f.mu.Unlock(); return f.pings }

// Closes counts magic closes.
func (f *FakeDevice) Closes() int { f.mu.Lock(); defer f.mu.Unlock(); return f.closes }

// Path is the path the device was last opened with.
func (f *FakeDevice) Path() string { f.mu.Lock(); defer f.mu.Unlock(); return f.path }
