package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestAgentNotifiesSystemd starts an agent as systemd starts a Type=notify
// unit with WatchdogSec=2s: NOTIFY_SOCKET names a socket the test listens
// on (an abstract one, so the agent's OS user needs no file permission).
// READY=1 comes once, after the first completed tick: by then the tick has
// written the member key and published GET /patroni. STATUS= follows the
// role, keep-alives keep coming, and PostgreSQL does not inherit
// NOTIFY_SOCKET.
func TestAgentNotifiesSystemd(t *testing.T) {
	name := fmt.Sprintf("regent-e2e-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sock.Close() }()
	c := testcluster.New(t, testcluster.Options{Nodes: 1, Env: func(string) []string {
		return []string{"NOTIFY_SOCKET=@" + name, "WATCHDOG_USEC=2000000"}
	}})
	n := c.Node("pg1")

	var before []string
	var ready string
	for msg := range notifications(t, sock, bootstrapTimeout) {
		if strings.Contains(msg, "READY=1") {
			t.Logf("READY: %q (after %q)", msg, before)
			ready = msg
			break
		}
		before = append(before, msg)
	}
	// The first tick is complete: its member key and its snapshot are out.
	if _, err := c.Member(t.Context(), n.Name); err != nil {
		t.Errorf("READY=1 before the member key was written: %v", err)
	}
	resp, err := http.Get(n.APIURL + "/patroni")
	if err != nil {
		t.Fatalf("READY=1 but GET /patroni: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("READY=1 but GET /patroni answers %d", resp.StatusCode)
	}

	// Bootstrap makes it the primary: the status says so; keep-alives go on.
	sawPrimary := strings.Contains(ready, "STATUS=primary (leader), postgres running")
	keepalives := 0
	for msg := range notifications(t, sock, bootstrapTimeout) {
		if strings.Contains(msg, "READY=1") {
			t.Errorf("READY=1 sent again: %q", msg)
		}
		sawPrimary = sawPrimary || strings.Contains(msg, "STATUS=primary (leader), postgres running")
		if strings.Contains(msg, "WATCHDOG=1") {
			keepalives++
		}
		if sawPrimary && keepalives >= 3 {
			break
		}
	}

	pid := postmasterPID(t, n.DataDir)
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("NOTIFY_SOCKET=")) || bytes.HasPrefix(kv, []byte("WATCHDOG_")) {
			t.Errorf("PostgreSQL (pid %d) inherited %s", pid, kv)
		}
	}
}

// notifications yields datagrams until the caller stops or timeout passes
// without the caller being satisfied (a failure).
func notifications(t *testing.T, sock *net.UnixConn, timeout time.Duration) func(func(string) bool) {
	return func(yield func(string) bool) {
		deadline := time.Now().Add(timeout)
		buf := make([]byte, 4096)
		for {
			if err := sock.SetReadDeadline(deadline); err != nil {
				t.Fatal(err)
			}
			k, err := sock.Read(buf)
			if err != nil {
				t.Fatalf("no expected notification within %s: %v", timeout, err)
			}
			if !yield(string(buf[:k])) {
				return
			}
		}
	}
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}
