package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/linkproxy"
	"github.com/regent-ha/regent/internal/proc"
)

// Node is one member: its agent process and, through it, its PostgreSQL.
// The exported fields are fixed at New. Methods are safe for concurrent
// use; those taking a testing.TB must run on the test goroutine.
type Node struct {
	Name       string
	Dir        string // node directory, owned by the agent's OS user
	DataDir    string // PostgreSQL data directory (created by the agent)
	ConfigPath string // regent.yml
	PGPort     int
	APIPort    int
	APIURL     string // http://127.0.0.1:APIPort (no path)

	c     *Cluster
	link  *linkproxy.Proxy       // the agent's only way to etcd (see CutEtcd)
	agent proc.Handle            // the agent's runs, and the PostgreSQL on DataDir
	bin   atomic.Pointer[string] // the regent binary of the next Start
}

// NodeName is the node's name (Named).
func (n *Node) NodeName() string { return n.Name }

func (n *Node) apiAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.APIPort) }
func (n *Node) pgAddr() string  { return fmt.Sprintf("127.0.0.1:%d", n.PGPort) }

// Start starts the node's agent (its output goes to t.Logf prefixed with
// the node name). It does not wait for anything; it fails the test if the
// agent is already running or cannot be started.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

func (n *Node) start() error {
	prefix := "[" + n.Name + "]"
	stdout := &lineWriter{log: n.c.log, prefix: prefix}
	stderr := &lineWriter{log: n.c.log, prefix: prefix}
	cmd := exec.CommandContext(n.c.ctx, *n.bin.Load(), "-c", n.ConfigPath)
	cmd.Dir = n.Dir
	cmd.Env = n.env()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	p, err := n.agent.Start(cmd, n.c.user.cred, func(err error) {
		stdout.Flush()
		stderr.Flush()
		n.c.log.logf("%s agent exited: %s", prefix, proc.ExitString(err))
	})
	if err != nil {
		return err
	}
	n.c.log.logf("%s agent started (pid %d)", prefix, p.Pid())
	return nil
}

// SetBinary makes the node's next Start run the regent binary at path
// (one the agent's OS user can execute); a running agent keeps its own.
// A rolling upgrade: StopAgent, SetBinary, Start.
func (n *Node) SetBinary(path string) { n.bin.Store(&path) }

// Binary is the regent binary the node's next Start runs.
func (n *Node) Binary() string { return *n.bin.Load() }

// env is the agent's environment (proc.AgentEnv) with HOME in the node
// directory, plus Options.Env.
func (n *Node) env() []string {
	user := SuperuserName
	if n.c.user.cred == nil {
		user = os.Getenv("USER")
	}
	env := proc.AgentEnv(n.Dir, user)
	if n.c.opts.Env != nil {
		env = append(env, n.c.opts.Env(n.Name)...)
	}
	return env
}

// Running reports whether the node's agent process is alive (it may be
// frozen).
func (n *Node) Running() bool { return n.agent.Running() }

// Crashed returns an error naming the exit status when the node's last
// agent exited on its own (not stopped or killed through the harness),
// nil otherwise.
func (n *Node) Crashed() error { return n.agent.Crashed() }

// AgentPID returns the agent's pid, 0 if it is not running.
func (n *Node) AgentPID() int { return n.agent.PID() }

// StopAgent sends SIGTERM to the agent (after SIGCONT, in case it is
// frozen) and waits for it to exit. A clean shutdown stops PostgreSQL
// (unless paused). It fails the test (without stopping it) if the agent
// does not exit within agentStopTimeout (it is then SIGKILLed) or exits
// with a non-zero status.
func (n *Node) StopAgent(t testing.TB) {
	t.Helper()
	if err := n.stop(agentStopTimeout); err != nil {
		t.Errorf("testcluster: %v", err)
	}
}

// stop stops the agent; an exit status other than 0 is an error.
func (n *Node) stop(timeout time.Duration) error {
	exit, err := n.agent.Stop(timeout)
	if err != nil {
		return err
	}
	if exit != nil {
		return fmt.Errorf("stop %s: after SIGTERM it exited with %w", n.agent.Name, exit)
	}
	return nil
}

// KillAgent SIGKILLs the agent's process group (not PostgreSQL, which runs
// in its own session) and waits for the agent to be gone.
func (n *Node) KillAgent(t testing.TB) {
	t.Helper()
	if err := n.agent.Kill(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// Kill SIGKILLs the agent and PostgreSQL (the postmaster and every child
// of it) and waits until both are gone: a host crash, minus the reboot.
// Nothing is resumed first: SIGKILL ends stopped processes too, and a
// SIGCONT would let a frozen agent or a held walsender run for a moment
// (ping a watchdog, send WAL) that a crashed host never gets.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	err := errors.Join(n.agent.Kill(), n.killPostgres())
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// KillPostgres SIGKILLs PostgreSQL only (the postmaster and its children;
// the agent keeps running) and waits until they are all gone.
func (n *Node) KillPostgres(t testing.TB) {
	t.Helper()
	if err := n.killPostgres(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// Freeze SIGSTOPs the agent's process group and every PostgreSQL process
// (the postmaster and its children: backends, walsenders…), and returns
// once the agent and all of them are stopped: the node hangs as if its
// host stalled. Thaw resumes them.
func (n *Node) Freeze(t testing.TB) {
	t.Helper()
	if n.AgentPID() == 0 {
		t.Fatalf("testcluster: freeze %s: agent not running", n.Name)
	}
	if err := n.agent.Freeze(true, true); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

// Thaw SIGCONTs the agent's process group, every PostgreSQL process and
// every process Freeze, FreezeAgent or FreezePostmaster stopped.
func (n *Node) Thaw(t testing.TB) {
	t.Helper()
	n.agent.Thaw()
}
