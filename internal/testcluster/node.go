package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	sigcont = syscall.SIGCONT
	sigstop = syscall.SIGSTOP
	sigkill = syscall.SIGKILL
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

	c    *Cluster
	link *etcdLink // the agent's only way to etcd (see CutEtcd)
	mu   sync.Mutex
	proc *agentProc // the last started agent; nil before the first Start
}

// agentProc is one run of the agent binary.
type agentProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
	err  error         // exit status; valid after done
	// ended is set before the harness stops or kills the process: an exit
	// without it is a crash (see Crashed).
	ended atomic.Bool
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

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
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("start %s: agent already running (pid %d)", n.Name, n.proc.cmd.Process.Pid)
	}
	prefix := "[" + n.Name + "]"
	stdout := &lineWriter{log: n.c.log, prefix: prefix}
	stderr := &lineWriter{log: n.c.log, prefix: prefix}
	cmd := exec.CommandContext(n.c.ctx, n.c.bin, "-c", n.ConfigPath)
	cmd.Dir = n.Dir
	cmd.Env = n.env()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true, // its own group: Kill/Freeze reach its children (pg_ctl, pg_basebackup…)
		Credential: n.c.user.cred,
		Pdeathsig:  syscall.SIGKILL, // the test binary died: do not leave agents behind
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// PostgreSQL started by pg_ctl may inherit the agent's stdout/stderr;
	// do not let it keep Wait from returning once the agent is gone.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent %s: %w", n.Name, err)
	}
	p := &agentProc{cmd: cmd, done: make(chan struct{})}
	n.proc = p
	n.c.log.logf("%s agent started (pid %d)", prefix, cmd.Process.Pid)
	go func() {
		p.err = cmd.Wait()
		stdout.Flush()
		stderr.Flush()
		n.c.log.logf("%s agent exited: %s", prefix, exitString(p.err))
		close(p.done)
	}()
	return nil
}

// env is the agent's environment: ours, minus libpq variables that could
// point it at another server, with HOME in the node directory.
func (n *Node) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || k == "HOME" || k == "USER" || k == "LOGNAME" {
			continue
		}
		env = append(env, kv)
	}
	user := SuperuserName
	if n.c.user.cred == nil {
		user = os.Getenv("USER")
	}
	return append(env, "HOME="+n.Dir, "USER="+user, "LOGNAME="+user)
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (n *Node) current() *agentProc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Running reports whether the node's agent process is alive (it may be
// frozen).
func (n *Node) Running() bool {
	p := n.current()
	return p != nil && !p.exited()
}

// Crashed returns an error naming the exit status when the node's last
// agent exited on its own (not stopped or killed through the harness),
// nil otherwise.
func (n *Node) Crashed() error {
	p := n.current()
	if p == nil || !p.exited() || p.ended.Load() {
		return nil
	}
	return fmt.Errorf("the agent of %s exited on its own: %s", n.Name, exitString(p.err))
}

// AgentPID returns the agent's pid, 0 if it is not running.
func (n *Node) AgentPID() int {
	p := n.current()
	if p == nil || p.exited() {
		return 0
	}
	return p.cmd.Process.Pid
}

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

func (n *Node) stop(timeout time.Duration) error {
	p := n.current()
	if p == nil || p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	p.ended.Store(true)
	_ = syscall.Kill(-pid, sigcont)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop agent %s: SIGTERM: %w", n.Name, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("stop agent %s: after SIGTERM it exited with %w", n.Name, p.err)
		}
		return nil
	case <-timer.C:
	}
	n.c.log.logf("[%s] agent still running %s after SIGTERM; SIGKILL", n.Name, timeout)
	if err := n.killAgent(); err != nil {
		return err
	}
	return fmt.Errorf("stop agent %s: it did not exit within %s of SIGTERM (killed)", n.Name, timeout)
}

// KillAgent SIGKILLs the agent's process group (not PostgreSQL, which runs
// in its own session) and waits for the agent to be gone.
func (n *Node) KillAgent(t testing.TB) {
	t.Helper()
	if err := n.killAgent(); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
}

func (n *Node) killAgent() error {
	p := n.current()
	if p == nil || p.exited() {
		return nil
	}
	p.ended.Store(true)
	if err := syscall.Kill(-p.cmd.Process.Pid, sigkill); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill agent %s: %w", n.Name, err)
	}
	timer := time.NewTimer(processGoneTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("kill agent %s: still not reaped %s after SIGKILL", n.Name, processGoneTimeout)
	}
}

// Kill SIGKILLs the agent and PostgreSQL (the postmaster and every child
// of it) and waits until both are gone: a host crash, minus the reboot.
// Nothing is resumed first: SIGKILL ends stopped processes too, and a
// SIGCONT would let a frozen agent or a held walsender run for a moment
// (ping a watchdog, send WAL) that a crashed host never gets.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	err := errors.Join(n.killAgent(), n.killPostgres())
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
	agent := n.AgentPID()
	if agent == 0 {
		t.Fatalf("testcluster: freeze %s: agent not running", n.Name)
	}
	n.signalAll(sigstop)
	pids := append([]int{agent}, n.postgresProcs(false)...)
	Poll(t, processGoneTimeout, n.Name+" frozen (agent and PostgreSQL processes in state T)", func(context.Context) error {
		for _, pid := range pids {
			if _, state, _, ok := procStat(pid); ok && state != 'T' && state != 't' {
				return fmt.Errorf("pid %d in state %c", pid, state)
			}
		}
		return nil
	})
}

// Thaw SIGCONTs the agent's process group and every PostgreSQL process.
func (n *Node) Thaw(t testing.TB) {
	t.Helper()
	n.signalAll(sigcont)
}

// signalAll signals the agent's and PostgreSQL's groups, ignoring absent ones.
func (n *Node) signalAll(sig syscall.Signal) {
	if pid := n.AgentPID(); pid != 0 {
		_ = syscall.Kill(-pid, sig)
	}
	_ = n.signalPostgres(sig)
}
