package fencing

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrUnusable is wrapped by every error Watchdog returns in required mode
// when the device cannot be opened, configured, verified or pinged. A node
// whose watchdog is unusable in required mode must not lead.
var ErrUnusable = errors.New("watchdog unusable")

// Device is an open watchdog device. Once opened it resets the host unless
// pinged within its timeout; Close disarms it. Implementations need not be
// safe for concurrent use: Watchdog serializes every call.
type Device interface {
	// SetTimeout asks the device to fire d after the last ping
	// (WDIOC_SETTIMEOUT, whole seconds). The driver may pick another value.
	SetTimeout(d time.Duration) error
	// Timeout reads back the timeout the device actually uses
	// (WDIOC_GETTIMEOUT).
	Timeout() (time.Duration, error)
	// Ping is a keepalive: the device fires Timeout() after the last one.
	Ping() error
	// Close disarms the device (magic close: write 'V') and closes it.
	Close() error
}

// Opener opens the watchdog device at path. OpenLinux is the real one;
// fencingtest.FakeDevice.Opener is the test double.
type Opener func(path string) (Device, error)

// Status is what the watchdog reports to the REST API and metrics.
type Status struct {
	Mode Mode
	// Armed is true while the device is open and being pinged.
	Armed bool
	// Timeout is the timeout the device read back when armed.
	Timeout time.Duration
	// LastKeepalive is the time of the last successful ping (zero if none).
	LastKeepalive time.Time
	// Failed is true in required mode when the device is unusable: arming
	// or a keepalive failed. It stays true until an Arm succeeds.
	Failed bool
	// Reason explains Failed, or why an automatic-mode watchdog is not armed
	// or armed unsafely. Empty when all is well.
	Reason string
}

// Watchdog arms, pings and disarms the host's watchdog device according to
// the configured mode:
//
//   - off: never opens the device; every method is a no-op.
//   - automatic: arms when it can; failures are logged (once) and the node
//     leads without a watchdog. Methods return nil.
//   - required: failures return errors wrapping ErrUnusable and make
//     Usable() false; the node must not race for, or keep, the lease.
//
// Keepalives must come only from the HA loop, right after an acknowledged
// lease renewal — never from a free-running goroutine or a timer — so that a
// stuck loop (deadlock, blocked I/O, SIGSTOP) stops the pings and the device
// resets the host before etcd can expire the lease and another node promotes.
//
// Concurrency: Arm, Keepalive and Disarm must be called from one goroutine
// (the HA loop); Status and Usable may be called from any goroutine.
type Watchdog struct {
	cfg  Config
	open Opener
	log  *slog.Logger
	now  func() time.Time

	// Owned by the HA loop goroutine.
	dev      Device
	armedFor time.Duration // the timeout the current arming was asked for
	warned   bool          // automatic mode: this run of failures was logged

	mu sync.Mutex // guards st
	st Status
}

// NewWatchdog returns a disarmed watchdog. cfg should have its defaults set.
// open is normally OpenLinux; now is the clock used for LastKeepalive
// (time.Now when nil).
func NewWatchdog(cfg Config, open Opener, log *slog.Logger, now func() time.Time) *Watchdog {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{
		cfg:  cfg,
		open: open,
		log:  log.With("device", cfg.Device, "watchdog_mode", string(cfg.Mode)),
		now:  now,
		st:   Status{Mode: cfg.Mode},
	}
}

// Status returns a copy of the current state. Safe for concurrent use.
func (w *Watchdog) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// Usable reports whether this node may lead as far as the watchdog is
// concerned: in required mode, false once arming (or a keepalive) failed,
// until an Arm succeeds; in off and automatic mode, always true. A node that
// never tried to arm is presumed usable: Arm is the probe. Safe for
// concurrent use.
func (w *Watchdog) Usable() bool {
	if w.cfg.Mode != ModeRequired {
		return true
	}
	return !w.Status().Failed
}

// Arm opens the device (if not open), sets its timeout, reads it back and
// pings once. Call it before promoting and on every tick as leader; it is a
// no-op when already armed for the same timeout (unless a keepalive failed
// since, in which case it sets up the device again). timeout should be
// DeviceTimeout(ttl, safety_margin); it is truncated to whole seconds.
//
// A device that reads back a longer timeout than asked could fire after the
// lease expires: in required mode Arm closes it and fails; in automatic mode
// it logs a warning and stays armed. Any other failure leaves the device
// closed: required mode returns an error wrapping ErrUnusable; automatic
// mode logs the first of a run of failures and returns nil.
func (w *Watchdog) Arm(timeout time.Duration) error {
	if w.cfg.Mode == ModeOff {
		return nil
	}
	if w.dev != nil && w.armedFor == timeout && !w.Status().Failed {
		return nil
	}
	want := timeout.Truncate(time.Second)
	if want < time.Second {
		return w.fail(fmt.Errorf("timeout %s is below the device resolution of 1s", timeout))
	}
	if w.dev == nil {
		dev, err := w.open(w.cfg.Device)
		if err != nil {
			return w.fail(fmt.Errorf("open %s: %w", w.cfg.Device, err))
		}
		w.dev = dev
	}
	if err := w.dev.SetTimeout(want); err != nil {
		return w.fail(fmt.Errorf("set timeout %s on %s: %w", want, w.cfg.Device, err))
	}
	got, warning, err := w.readBack(want)
	if err != nil {
		return err
	}
	if err := w.dev.Ping(); err != nil {
		return w.fail(fmt.Errorf("first keepalive on %s: %w", w.cfg.Device, err))
	}
	w.armedFor, w.warned = timeout, false
	at := w.now()
	w.mu.Lock()
	w.st = Status{Mode: w.cfg.Mode, Armed: true, Timeout: got, LastKeepalive: at, Reason: warning}
	w.mu.Unlock()
	w.log.Info("watchdog armed", "timeout", got, "identity", identity(w.dev))
	return nil
}

// identity is the driver name when the device tells it (OpenLinux does).
func identity(d Device) string {
	if i, ok := d.(interface{ Identity() string }); ok {
		return i.Identity()
	}
	return ""
}

// readBack checks the timeout the device really uses. It returns the value
// to report and, in automatic mode, a warning for an unsafe device; in
// required mode an unsafe device is closed and an error returned.
func (w *Watchdog) readBack(want time.Duration) (time.Duration, string, error) {
	got, err := w.dev.Timeout()
	var unsafe error
	switch {
	case err != nil:
		unsafe = fmt.Errorf("read back the timeout of %s: %w", w.cfg.Device, err)
		got = want
	case got > want:
		unsafe = fmt.Errorf("%s reads back a timeout of %s, above the %s asked: it could fire after the lease expires",
			w.cfg.Device, got, want)
	case got < want:
		// Safe (it fires earlier) but may cut into the loop's slack.
		w.log.Warn("watchdog timeout is shorter than asked", "timeout", got, "wanted", want)
	}
	if unsafe == nil {
		return got, "", nil
	}
	if w.cfg.Mode == ModeRequired {
		return 0, "", w.fail(unsafe)
	}
	w.log.Warn("watchdog armed with an unverified or too long timeout", "err", unsafe)
	return got, unsafe.Error(), nil
}

// fail closes the device (an open device nobody pings would reset the host)
// and records err. Required mode returns it wrapped in ErrUnusable;
// automatic mode logs the first failure of a run (the loop retries every
// tick) and returns nil.
func (w *Watchdog) fail(err error) error {
	if cerr := w.closeDevice(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("disarm: %w", cerr))
	}
	return w.failed(err, true, "watchdog unusable in required mode", "watchdog not armed; leading without it")
}

// failed records err in the status (disarmed: the device is closed too).
// In required mode the watchdog is unusable: it logs requiredMsg and
// returns an error wrapping ErrUnusable. In automatic mode it logs
// automaticMsg once per run of failures and returns nil.
func (w *Watchdog) failed(err error, disarmed bool, requiredMsg, automaticMsg string) error {
	required := w.cfg.Mode == ModeRequired
	w.mu.Lock()
	if disarmed {
		w.st.Armed, w.st.Timeout = false, 0
	}
	w.st.Failed, w.st.Reason = required, err.Error()
	w.mu.Unlock()
	if required {
		w.log.Error(requiredMsg, "err", err)
		return fmt.Errorf("%w: %w", ErrUnusable, err)
	}
	if !w.warned {
		w.log.Warn(automaticMsg, "err", err)
		w.warned = true
	}
	return nil
}

// Keepalive pings the device if it is armed, and does nothing otherwise.
//
// Call it only from the HA loop, right after a lease renewal was
// acknowledged, and only if that renewal was sent less than safety_margin
// ago: the device then fires before t_renew + ttl, when etcd could expire
// the lease. A failed ping in required mode marks the watchdog unusable and
// returns an error wrapping ErrUnusable (the device stays open: if the
// leader cannot step down in time, the reset still happens); in automatic
// mode it is logged (once per run of failures) and nil is returned.
func (w *Watchdog) Keepalive() error {
	if w.dev == nil {
		return nil
	}
	if err := w.dev.Ping(); err != nil {
		return w.failed(fmt.Errorf("keepalive on %s: %w", w.cfg.Device, err), false,
			"watchdog keepalive failed in required mode", "watchdog keepalive failed")
	}
	w.warned = false
	at := w.now()
	w.mu.Lock()
	w.st.LastKeepalive = at
	w.mu.Unlock()
	return nil
}

// Disarm magic-closes the device if it is open. It is idempotent and safe to
// call on every exit path (demote at the PostgreSQL-stopped safe point,
// pause, shutdown), including after a failed Arm. It does not clear Failed.
func (w *Watchdog) Disarm() error {
	if w.dev == nil {
		return nil
	}
	err := w.closeDevice()
	w.mu.Lock()
	w.st.Armed, w.st.Timeout = false, 0
	w.mu.Unlock()
	if err != nil {
		w.log.Error("watchdog disarm failed", "err", err)
		return fmt.Errorf("disarm %s: %w", w.cfg.Device, err)
	}
	w.log.Info("watchdog disarmed")
	return nil
}

// closeDevice magic-closes the device if open and forgets it either way.
func (w *Watchdog) closeDevice() error {
	if w.dev == nil {
		return nil
	}
	err := w.dev.Close()
	w.dev, w.armedFor = nil, 0
	return err
}
