package routing

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeConsole records admin commands; fail maps a command to its error,
// and block makes a command wait for its context (a PAUSE held by a long
// transaction).
type fakeConsole struct {
	mu    sync.Mutex
	got   []string
	fail  map[string]error
	block map[string]bool
}

func (f *fakeConsole) Exec(ctx context.Context, admin, command string) error {
	f.mu.Lock()
	f.got = append(f.got, admin+": "+command)
	err, block := f.fail[command], f.block[command]
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

type fakeAPI struct {
	got    []string
	answer map[string]string
}

func (f *fakeAPI) Send(_ context.Context, socket, command string) (string, error) {
	f.got = append(f.got, socket+": "+command)
	return f.answer[command], nil
}

type fakeCommander struct{ argv, env []string }

func (f *fakeCommander) Run(_ context.Context, argv, env []string) error {
	f.argv, f.env = argv, env
	return nil
}

func testRunner(c Config) (*Runner, *fakeConsole, *fakeAPI, *fakeCommander, map[string]string) {
	c.SetDefaults()
	files := map[string]string{}
	con, api, cmd := &fakeConsole{}, &fakeAPI{}, &fakeCommander{}
	r := &Runner{Config: c, Scope: "demo", Console: con, API: api, Commander: cmd,
		WriteFile: func(path string, data []byte) error { files[path] = string(data); return nil }}
	return r, con, api, cmd, files
}

func TestRunRepoint(t *testing.T) {
	c := Config{PgBouncer: []PgBouncer{{Admin: "pgb", Databases: []string{"app"}, IncludeFile: "/etc/pgb/db.ini"}},
		HAProxy: []HAProxy{{Socket: "/run/ha.sock", Backend: "primary", Servers: map[string]string{"pg1": "node1"}}},
		Hooks:   Hooks{Repoint: []string{"/bin/dns"}}}
	r, con, api, cmd, files := testRunner(c)
	con.fail = map[string]error{"RESUME app": errors.New("ERROR: database app is not paused")}
	tgt := Target{Switchover: "id1", Leader: "pg2", Host: "127.0.0.1", Port: 5433, Others: []string{"pg1"}}
	res := r.Run(t.Context(), PointRepoint, tgt, Plan(r.Config, PointRepoint, tgt))
	if err := FirstError(res); err != nil {
		t.Fatalf("repoint failed: %v", err)
	}
	if diff := cmp.Diff([]string{"pgb: RELOAD", "pgb: RESUME app"}, con.got); diff != "" {
		t.Errorf("admin commands (-want +got):\n%s", diff)
	}
	wantAPI := []string{"/run/ha.sock: set server primary/pg2 state ready", "/run/ha.sock: set server primary/pg2 health up",
		"/run/ha.sock: set server primary/node1 state drain", "/run/ha.sock: shutdown sessions server primary/node1"}
	if diff := cmp.Diff(wantAPI, api.got); diff != "" {
		t.Errorf("runtime API commands (-want +got):\n%s", diff)
	}
	if !strings.Contains(files["/etc/pgb/db.ini"], "app = host=127.0.0.1 port=5433 dbname=app\n") {
		t.Errorf("include file: %q", files["/etc/pgb/db.ini"])
	}
	if cmd.argv[0] != "/bin/dns" || !contains(cmd.env, "REGENT_LEADER=pg2") || !contains(cmd.env, "REGENT_ROUTING_POINT=repoint") || !contains(cmd.env, "REGENT_LEADER_PORT=5433") {
		t.Errorf("hook ran %v with %v", cmd.argv, cmd.env)
	}
}

func TestRunPauseTimesOut(t *testing.T) {
	c := Config{PgBouncer: []PgBouncer{{Admin: "pgb", Databases: []string{"app"}, IncludeFile: "/f", PauseTimeout: 50 * time.Millisecond}}}
	r, con, _, _, _ := testRunner(c)
	con.block = map[string]bool{"PAUSE app": true}
	res := r.Run(t.Context(), PointPause, Target{}, Plan(r.Config, PointPause, Target{}))
	err := FirstError(res)
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PAUSE held past its timeout: got %v", err)
	}
	if got := Failed(res); len(got) != 1 || got[0].Kind != PgBouncerPause {
		t.Fatalf("Failed = %v", got)
	}
}

func TestRunHAProxyRefusal(t *testing.T) {
	r, _, api, _, _ := testRunner(Config{HAProxy: []HAProxy{{Socket: "/s", Backend: "primary"}}})
	api.answer = map[string]string{"set server primary/pg9 state ready": "No such server.\n"}
	res := r.Run(t.Context(), PointFailover, Target{Leader: "pg9"}, Plan(r.Config, PointFailover, Target{Leader: "pg9"}))
	if err := FirstError(res); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "No such server.") {
		t.Fatalf("got %v, want the refusal", err)
	}
}

// TestSocketAPI runs a one-shot runtime API server on a unix socket.
func TestSocketAPI(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 256)
		n, _ := conn.Read(buf)
		got <- string(buf[:n])
		_, _ = conn.Write([]byte("No such server.\n"))
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	answer, err := SocketAPI{}.Send(ctx, sock, "set server b/s state ready")
	if err != nil || answer != "No such server.\n" {
		t.Fatalf("Send = %q, %v", answer, err)
	}
	if c := <-got; c != "set server b/s state ready\n" {
		t.Fatalf("server read %q", c)
	}
}

func TestExecCommander(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	ctx := t.Context()
	err := ExecCommander{}.Run(ctx, []string{"/bin/sh", "-c", `echo "$REGENT_LEADER" > ` + out}, []string{"REGENT_LEADER=pg2"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "pg2\n" {
		t.Fatalf("hook saw %q", b)
	}
	err = ExecCommander{}.Run(ctx, []string{"/bin/sh", "-c", "echo broken >&2; exit 3"}, nil)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("a failing hook: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := (ExecCommander{}).Run(tctx, []string{"/bin/sh", "-c", "sleep 30"}, nil); err == nil {
		t.Fatal("a hung hook must fail at its timeout")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a hung hook was killed after %s", took)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.ini")
	for _, text := range []string{"one\n", "two\n"} {
		if err := WriteFileAtomic(path, []byte(text)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != text {
			t.Fatalf("read %q, want %q", b, text)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
