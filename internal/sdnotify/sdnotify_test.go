package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket as systemd does for NOTIFY_SOCKET and
// returns its name for the environment.
func listen(t *testing.T, abstract bool) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		name = fmt.Sprintf("\x00regent-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		env = "@" + name[1:]
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, env
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestFromEnvSendsToTheSocketAndClearsTheEnvironment(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			conn, name := listen(t, abstract)
			t.Setenv(envSocket, name)
			t.Setenv(envWatchdogUS, "30000000")
			t.Setenv(envWatchdogPID, fmt.Sprint(os.Getpid()))
			n, err := FromEnv()
			if err != nil || n == nil {
				t.Fatalf("FromEnv: %v, %v", n, err)
			}
			defer func() { _ = n.Close() }()
			for _, k := range []string{envSocket, envWatchdogUS, envWatchdogPID} {
				if v, set := os.LookupEnv(k); set {
					t.Errorf("%s=%q is still set: PostgreSQL would inherit it", k, v)
				}
			}
			if got := n.WatchdogInterval(); got != 30*time.Second {
				t.Errorf("WatchdogInterval = %s, want 30s", got)
			}
			if err := n.Send("READY=1", "STATUS=replica, postgres running"); err != nil {
				t.Fatal(err)
			}
			if got, want := receive(t, conn), "READY=1\nSTATUS=replica, postgres running"; got != want {
				t.Errorf("received %q, want %q", got, want)
			}
		})
	}
}

func TestFromEnvWithoutSocketIsNil(t *testing.T) {
	t.Setenv(envSocket, "")
	n, err := FromEnv()
	if n != nil || err != nil {
		t.Fatalf("FromEnv without NOTIFY_SOCKET = %v, %v; want nil, nil", n, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{"", "", 0, false},
		{"2000000", "", 2 * time.Second, false},
		{"2000000", "42", 2 * time.Second, false},
		{"2000000", "43", 0, false}, // meant for another process
		{"0", "", 0, true},
		{"soon", "", 0, true},
	} {
		got, err := watchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("watchdogInterval(%q, %q) = %s, %v; want %s, error %v", tc.usec, tc.pid, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), envWatchdogUS) {
			t.Errorf("error %q does not name %s", err, envWatchdogUS)
		}
	}
}

func TestDialRejectsARelativeName(t *testing.T) {
	if _, err := Dial("notify.sock", 0); err == nil || !strings.Contains(err.Error(), envSocket) {
		t.Fatalf("Dial(relative) = %v, want an error naming %s", err, envSocket)
	}
}

func TestSendWithoutListenerFails(t *testing.T) {
	conn, name := listen(t, false)
	n, err := Dial(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Close() }()
	_ = conn.Close()
	if err := n.Send("READY=1"); err == nil {
		t.Fatal("Send to a closed socket succeeded")
	}
}

// TestSendDoesNotWaitForAFullQueue: a receiver that stops reading (a
// stuck service manager) makes Send fail, not block the caller (the HA
// loop) — each send is bounded by writeTimeout.
func TestSendDoesNotWaitForAFullQueue(t *testing.T) {
	_, name := listen(t, false) // never read
	n, err := Dial(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Close() }()
	msg := strings.Repeat("x", 1024)
	for i := 0; ; i++ {
		start := time.Now()
		err := n.Send("STATUS=" + msg)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("send %d took %s with a full queue, want about %s", i, took, writeTimeout)
		}
		if err != nil {
			t.Logf("send %d failed as the queue filled: %v", i, err)
			return
		}
		if i > 100000 {
			t.Fatal("the queue never filled")
		}
	}
}
