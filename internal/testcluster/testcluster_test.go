package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/proc"
	"gopkg.in/yaml.v3"
)

// These tests check the harness itself, without the real agent: etcd
// start/stop, the config files, and process control through a fake agent
// (a shell script that runs PostgreSQL with pg_ctl as the real one does).

func TestEtcdStopStartKeepsData(t *testing.T) {
	c := setup(t, Options{Nodes: 1}, "/nonexistent/regent")
	ctx := t.Context()
	if _, err := c.Leader(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader on an empty etcd: %v, want ErrNoLeader", err)
	}
	if _, err := c.Etcd().Put(ctx, c.Keys().Leader(), "pg1"); err != nil {
		t.Fatal(err)
	}
	c.StopEtcd(t)
	if _, err := c.Leader(ctx); err == nil || errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader with etcd stopped: %v, want a connection error", err)
	}
	c.StartEtcd(t)
	Poll(t, 10*time.Second, "the leader key after an etcd restart", func(ctx context.Context) error {
		name, err := c.Leader(ctx)
		if err == nil && name != "pg1" {
			return fmt.Errorf("leader %q", name)
		}
		return err
	})
}

func TestConfigFiles(t *testing.T) {
	c := setup(t, Options{Nodes: 2, Tags: map[string]map[string]any{"pg2": {"nofailover": true}},
		ExtraConfig: func(node string, cfg map[string]any) { cfg["log"] = map[string]any{"level": "info"} }}, "/nonexistent/regent")
	n := c.Node("pg2")
	data, err := os.ReadFile(n.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Name    string
		Scope   string
		Etcd    struct{ Endpoints []string }
		Restapi struct {
			Listen         string
			ConnectAddress string `yaml:"connect_address"`
		}
		Postgres struct {
			DataDir string `yaml:"data_dir"`
			Listen  string
		}
		Watchdog  struct{ Mode string }
		Tags      map[string]any
		Log       struct{ Level string }
		Bootstrap struct{ DCS map[string]any }
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%v in\n%s", err, data)
	}
	want := []string{cfg.Name, cfg.Scope, cfg.Etcd.Endpoints[0], cfg.Restapi.ConnectAddress, cfg.Postgres.DataDir, cfg.Postgres.Listen, cfg.Watchdog.Mode, cfg.Log.Level}
	got := []string{"pg2", "e2e", n.EtcdEndpoint(), n.apiAddr(), n.DataDir, n.pgAddr(), "off", "info"}
	if strings.Join(want, " ") != strings.Join(got, " ") {
		t.Errorf("config fields %q, want %q\n%s", want, got, data)
	}
	if cfg.Tags["nofailover"] != true || cfg.Bootstrap.DCS["ttl"] != 10 {
		t.Errorf("tags %v, bootstrap.dcs %v", cfg.Tags, cfg.Bootstrap.DCS)
	}
	if fi, err := os.Stat(n.ConfigPath); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != c.user.uid {
		t.Errorf("config file not owned by uid %d: %v", c.user.uid, err)
	}
	pc, err := os.ReadFile(c.PatronictlConfig(t))
	if err != nil || !strings.Contains(string(pc), "etcd3:") || strings.Contains(string(pc), "etcd:") {
		t.Errorf("patronictl config %q (%v)", pc, err)
	}
}

// fakeAgent is a shell script standing in for regent: it starts PostgreSQL
// with pg_ctl (its own session, as the real agent) and stops it on SIGTERM.
const fakeAgent = `#!/bin/sh
set -eu
BIN=%q DATA=%q PORT=%d
trap '"$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true; echo "fake agent: stopped"; exit 0' TERM
echo "fake agent as $(id -un)"
[ -f "$DATA/PG_VERSION" ] || "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -N >/dev/null
"$BIN/pg_ctl" -D "$DATA" -l "$DATA/../postgres.log" -w start \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c shared_buffers=16MB" >/dev/null
echo "fake agent: postgres started"
while :; do sleep 0.1 & wait $! || true; done
`

func startFake(t *testing.T) (*Cluster, *Node) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	c := setup(t, Options{Nodes: 1}, "")
	n := c.nodes[0]
	bin := filepath.Join(n.Dir, "fake-regent")
	if err := os.WriteFile(bin, fmt.Appendf(nil, fakeAgent, c.opts.BinDir, n.DataDir, n.PGPort), 0o755); err != nil {
		t.Fatal(err)
	}
	n.SetBinary(bin)
	n.Start(t)
	waitSQL(t, n)
	return c, n
}

func waitSQL(t *testing.T, n *Node) {
	t.Helper()
	Poll(t, 60*time.Second, n.Name+" PostgreSQL answering", func(ctx context.Context) error {
		return n.Exec(ctx, "SELECT 1")
	})
}

func procState(pid int) (uid int, state byte, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return 0, 0, err
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), stat[strings.LastIndexByte(string(stat), ')')+2], nil
}

func TestProcessControl(t *testing.T) {
	c, n := startFake(t)
	ctx := t.Context()
	pm, alive := n.PostmasterPID()
	if !alive {
		t.Fatal("no live postmaster")
	}
	for _, pid := range []int{n.AgentPID(), pm} {
		if uid, _, err := procState(pid); err != nil || uid != c.user.uid {
			t.Errorf("pid %d runs as uid %d (%v), want %d", pid, uid, err, c.user.uid)
		}
	}

	n.Freeze(t)
	// Every postmaster child is a session leader of its own (setsid): the
	// postmaster's process group alone would leave them running.
	procs := proc.ServerProcesses(n.DataDir, false)
	if len(procs) < 2 {
		t.Errorf("no child of the postmaster found: %v", procs)
	}
	for _, pid := range append(procs, n.AgentPID()) {
		if _, st, err := procState(pid); err != nil || st != 'T' {
			t.Errorf("frozen pid %d in state %c (%v), want T", pid, st, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if err := n.Exec(fctx, "SELECT 1"); err == nil {
		t.Error("a frozen PostgreSQL answered")
	}
	cancel()
	n.Thaw(t)
	waitSQL(t, n)

	n.StopAgent(t)
	if n.Running() || n.PostgresRunning() {
		t.Fatalf("after StopAgent: agent running %v, postgres running %v", n.Running(), n.PostgresRunning())
	}

	n.Start(t)
	waitSQL(t, n)
	procs = proc.ServerProcesses(n.DataDir, false)
	n.Kill(t)
	if n.Running() || n.PostgresRunning() {
		t.Fatalf("after Kill: agent running %v, postgres running %v", n.Running(), n.PostgresRunning())
	}
	for _, pid := range procs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("after Kill: pid %d of the postmaster's processes %v still exists", pid, procs)
		}
	}

	n.Start(t)
	waitSQL(t, n)
	n.KillPostgres(t)
	if !n.Running() || n.PostgresRunning() {
		t.Fatalf("after KillPostgres: agent running %v, postgres running %v", n.Running(), n.PostgresRunning())
	}
}

// recordTB captures Logf lines.
type recordTB struct {
	testing.TB
	mu    sync.Mutex
	lines []string
}

func (r *recordTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func TestLineWriter(t *testing.T) {
	rec := &recordTB{TB: t}
	log := &testLog{t: rec}
	w := &lineWriter{log: log, prefix: "[pg1]"}
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\r\nthree")
	w.Flush()
	log.close()
	fmt.Fprint(w, "dropped\n")
	if got, want := strings.Join(rec.lines, "|"), "[pg1] one|[pg1] two|[pg1] three"; got != want {
		t.Errorf("lines %q, want %q", got, want)
	}
}

// TestEveryStopsWithItsContext: Every returns once its context ends and
// does not call fn after that, even with a tick already due.
func TestEveryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func() {
			calls++
			if calls == 3 {
				cancel()
				time.Sleep(5 * time.Millisecond) // let the next tick become due beside the end
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if calls != 3 {
		t.Fatalf("fn called %d times, want 3: Every called it after its context ended", calls)
	}
}
