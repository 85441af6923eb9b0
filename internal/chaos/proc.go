package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regent-ha/regent/postgres"
)

// processGoneTimeout bounds how long a SIGKILLed process takes to be gone.
const processGoneTimeout = 10 * time.Second

// startIn starts cmd inside h's network namespace (see inNetns: the
// child inherits the forking thread's namespace).
//
// Pdeathsig follows the forking thread: it must outlive the child, which
// is why inNetns returns threads to the runtime rather than ending them. If
// the thread cannot be moved back it ends, and the child with it: kill it
// outright.
func (h *Host) startIn(cmd *exec.Cmd) error {
	err := inNetns(h.nsPath, cmd.Start)
	if errors.Is(err, errNetnsNotRestored) && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return err
}

// errNetnsNotRestored: the thread could not be moved back to its own
// namespace (it ends with its goroutine).
var errNetnsNotRestored = errors.New("cannot move the thread back to its own network namespace")

// inNetns runs fn on an OS thread moved into the network namespace at
// nsPath: a goroutine locked to its thread moves the thread in, runs fn
// and moves the thread back before unlocking it. Sockets fn creates, and
// children it forks, belong to that namespace for good. Go spawns new
// threads from a clean template thread while one is locked, so no other
// goroutine ever runs in the namespace. The thread must be moved back, not
// ended: it may be one that earlier forked a child with Pdeathsig (an
// agent, an etcd member), which dies with it. An empty nsPath runs fn
// where it is (the link proxy's own tests).
func inNetns(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err, restored := runInNetns(nsPath, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// runInNetns runs on a locked thread; restored says whether the thread is
// back in its own namespace.
func runInNetns(nsPath string, fn func() error) (err error, restored bool) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fmt.Errorf("open own netns: %w", err), true
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err), true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", nsPath, err), true
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: setns back from %s: %v", errNetnsNotRestored, nsPath, err), false
	}
	return fnErr, true
}

// proc is one run of a child process we started (an agent or an etcd
// member), in a process group of its own.
type proc struct {
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{} // closed once waited for
	err  error         // exit status; valid after done
	// ended is set before we stop or kill it: an exit without it is a crash.
	ended atomic.Bool
}

// startProc starts cmd in h's namespace with its output appended to
// logPath, and waits for it in the background.
func startProc(h *Host, cmd *exec.Cmd, logPath string, cred *syscall.Credential) (*proc, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true, // Kill/Freeze reach its children (pg_ctl, pg_basebackup…)
		Credential: cred,
		Pdeathsig:  syscall.SIGKILL, // the test binary died: leave nothing behind
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := h.startIn(cmd); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s in %s: %w", cmd.Path, h.NS, err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process group and waits until the process is reaped.
func (p *proc) kill() error {
	if p == nil || p.exited() {
		return nil
	}
	p.ended.Store(true)
	if err := syscall.Kill(-p.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", p.pid(), err)
	}
	return p.wait(processGoneTimeout)
}

// stop sends SIGTERM (after SIGCONT) and waits up to timeout, then kills.
func (p *proc) stop(timeout time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	p.ended.Store(true)
	_ = syscall.Kill(-p.pid(), syscall.SIGCONT)
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	if p.wait(timeout) == nil {
		return nil
	}
	if err := p.kill(); err != nil {
		return err
	}
	return fmt.Errorf("pid %d did not exit within %s of SIGTERM (killed)", p.pid(), timeout)
}

func (p *proc) wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("pid %d still running after %s", p.pid(), timeout)
	}
}

// signalGroup signals the process group, ignoring a gone one.
func (p *proc) signalGroup(sig syscall.Signal) {
	if p != nil && !p.exited() {
		_ = syscall.Kill(-p.pid(), sig)
	}
}

// waitStopped waits until every pid is in state T (stopped) or gone.
func waitStopped(pids []int) error {
	deadline := time.Now().Add(processGoneTimeout)
	for {
		pending := 0
		for _, pid := range pids {
			if _, state, _, ok := postgres.ProcStat(pid); ok && state != 'T' && state != 't' && state != 'Z' {
				pending = pid
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d not stopped %s after SIGSTOP", pending, processGoneTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: no event to wait on
	}
}
