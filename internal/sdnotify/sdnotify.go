package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Environment variables systemd sets for the main process.
const (
	envSocket      = "NOTIFY_SOCKET"
	envWatchdogUS  = "WATCHDOG_USEC"
	envWatchdogPID = "WATCHDOG_PID"
)

// writeTimeout bounds one datagram. A unix datagram write blocks only
// while the receiver's queue is full (systemd not reading); the caller is
// the HA loop, whose leader must fence at its lease deadline, so the wait
// stays far below the smallest safety_margin (1 s): a notification that
// cannot go out at once is dropped with an error, never waited for.
const writeTimeout = 50 * time.Millisecond

// Notifier sends notifications to the service manager. Its methods are
// safe for concurrent use.
type Notifier struct {
	conn     *net.UnixConn
	watchdog time.Duration
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil (and no error)
// when the variable is unset: the process was not started by systemd with
// Type=notify. It unsets NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID
// either way, so children (PostgreSQL, which speaks the protocol itself
// when built with systemd support) do not inherit them and notify in our
// name.
func FromEnv() (*Notifier, error) {
	socket := os.Getenv(envSocket)
	usec, pid := os.Getenv(envWatchdogUS), os.Getenv(envWatchdogPID)
	for _, k := range []string{envSocket, envWatchdogUS, envWatchdogPID} {
		if err := os.Unsetenv(k); err != nil {
			return nil, fmt.Errorf("unset %s: %w", k, err)
		}
	}
	if socket == "" {
		return nil, nil
	}
	watchdog, err := watchdogInterval(usec, pid, os.Getpid())
	if err != nil {
		return nil, err
	}
	return Dial(socket, watchdog)
}

// watchdogInterval reads WATCHDOG_USEC (0 when unset), which applies to
// us only when WATCHDOG_PID is unset or names our pid.
func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" && pid != strconv.Itoa(self) {
		return 0, nil
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s=%q: not a positive number of microseconds", envWatchdogUS, usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// Dial connects to the notification socket at path ('@' for an abstract
// name). watchdog is the unit's WatchdogSec (0 when it has none).
func Dial(path string, watchdog time.Duration) (*Notifier, error) {
	if path == "" || (path[0] != '/' && path[0] != '@') {
		return nil, fmt.Errorf("%s=%q: want an absolute path or an @abstract name", envSocket, path)
	}
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	if path[0] == '@' {
		// Go names an abstract socket with a leading NUL byte.
		addr.Name = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s %s: %w", envSocket, path, err)
	}
	return &Notifier{conn: conn, watchdog: watchdog}, nil
}

// WatchdogInterval is the unit's watchdog timeout (WatchdogSec), 0 when
// it has none. Keep-alives must come more often: sd_watchdog_enabled(3)
// recommends every half of it.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Send sends one notification; lines are KEY=VALUE, joined by newlines.
func (n *Notifier) Send(lines ...string) error {
	var msg []byte
	for i, l := range lines {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, l...)
	}
	if len(msg) == 0 {
		return errors.New("sdnotify: empty notification")
	}
	if err := n.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := n.conn.Write(msg); err != nil {
		return fmt.Errorf("sdnotify: send %.80q: %w", msg, err)
	}
	return nil
}

// Close closes the socket.
func (n *Notifier) Close() error { return n.conn.Close() }
