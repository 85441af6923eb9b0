package fencing

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// linuxDevice is a Linux watchdog character device, driven with the ioctls
// of https://www.kernel.org/doc/html/latest/watchdog/watchdog-api.html.
// It follows github.com/mdlayher/watchdog (open O_WRONLY, WDIOC_GETSUPPORT
// for the identity, WDIOC_KEEPALIVE, magic close) but takes a path and sets
// the timeout, which that package cannot: it always opens /dev/watchdog and
// does not expose the file descriptor.
type linuxDevice struct {
	f        *os.File
	path     string
	identity string
}

// OpenLinux opens the watchdog device at path. From this moment the device
// is running: the caller must Ping it within its timeout or Close it.
// A missing device gives an error wrapping os.ErrNotExist; a file that is
// not a watchdog is closed again, untouched, and reported as an error.
func OpenLinux(path string) (Device, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err // *PathError: names the path, wraps ErrNotExist / ErrPermission
	}
	d := &linuxDevice{f: f, path: path}
	var info *unix.WatchdogInfo
	err = d.control(func(fd int) (err error) {
		info, err = unix.IoctlGetWatchdogInfo(fd)
		return err
	})
	if err != nil {
		// Not a watchdog (ENOTTY): do not write the magic 'V' into it.
		_ = f.Close()
		return nil, fmt.Errorf("%s is not a watchdog device: WDIOC_GETSUPPORT: %w", path, err)
	}
	d.identity = strings.TrimRight(string(info.Identity[:]), "\x00")
	return d, nil
}

// Identity is the driver's name (for example "Software Watchdog").
func (d *linuxDevice) Identity() string { return d.identity }

func (d *linuxDevice) SetTimeout(t time.Duration) error {
	secs := int(t / time.Second)
	if secs < 1 {
		return fmt.Errorf("timeout %s is below 1s", t)
	}
	return d.control(func(fd int) error {
		return unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, secs)
	})
}

func (d *linuxDevice) Timeout() (time.Duration, error) {
	var secs int
	err := d.control(func(fd int) (err error) {
		secs, err = unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
		return err
	})
	return time.Duration(secs) * time.Second, err
}

func (d *linuxDevice) Ping() error {
	return d.control(unix.IoctlWatchdogKeepalive)
}

// Close writes the magic 'V' so the driver disarms on close, then closes the
// file even if the write failed.
func (d *linuxDevice) Close() error {
	_, werr := d.f.Write([]byte("V"))
	cerr := d.f.Close()
	if werr != nil {
		werr = fmt.Errorf("magic close: %w", werr)
	}
	return errors.Join(werr, cerr)
}

// control runs fn on the raw descriptor without handing it out of *os.File.
func (d *linuxDevice) control(fn func(fd int) error) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
