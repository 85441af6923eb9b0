package proc

import (
	"errors"
	"fmt"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// GoneTimeout bounds how long a SIGKILLed (or SIGSTOPped) process takes
// to be gone (stopped).
const GoneTimeout = 10 * time.Second

// waitDelay: PostgreSQL started by pg_ctl may inherit the agent's output;
// it must not keep Wait from returning once the agent is gone.
const waitDelay = 2 * time.Second

// Proc is one run of a child process, in a process group of its own.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once waited for
	err  error         // exit status; valid after done
	// ended is set before the harness stops or kills it: an exit without
	// it is a crash.
	ended atomic.Bool
}

// Start starts cmd (made by exec.CommandContext: the context ending
// kills its group) through launch as cred (nil: as ourselves), in a
// process group of its own that dies with the test process, and waits for
// it in the background; exited, when not nil, runs once it has been waited
// for (to flush or close its output), before Done is closed. cmd's output
// is the caller's to set.
func Start(launch Launcher, cmd *exec.Cmd, cred *syscall.Credential, exited func(error)) (*Proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true, // Kill/Freeze reach its children (pg_ctl, pg_basebackup…)
		Credential: cred,
		Pdeathsig:  syscall.SIGKILL, // the test binary died: leave nothing behind
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	if err := launch(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if exited != nil {
			exited(p.err)
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit status (nil: 0); valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Exited reports whether the process has exited (a nil Proc has).
func (p *Proc) Exited() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Crashed reports whether the process exited without Stop or Kill.
func (p *Proc) Crashed() bool { return p != nil && p.Exited() && !p.ended.Load() }

// Kill SIGKILLs the process group and waits until the process is reaped.
// Nothing is resumed first: SIGKILL ends stopped processes too, and a
// SIGCONT would let a frozen process run for a moment.
func (p *Proc) Kill() error {
	if p.Exited() {
		return nil
	}
	p.ended.Store(true)
	if err := syscall.Kill(-p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", p.Pid(), err)
	}
	if !p.wait(GoneTimeout) {
		return fmt.Errorf("pid %d still not reaped %s after SIGKILL", p.Pid(), GoneTimeout)
	}
	return nil
}

// Stop sends SIGTERM (after SIGCONT to its group, in case it is frozen)
// and waits up to timeout for it to exit, then kills it. It returns the
// exit status of a process that exited (exit), and err when it had to be
// killed or could not be signalled.
func (p *Proc) Stop(timeout time.Duration) (exit, err error) {
	if p.Exited() {
		return nil, nil
	}
	p.ended.Store(true)
	_ = syscall.Kill(-p.Pid(), syscall.SIGCONT)
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("SIGTERM pid %d: %w", p.Pid(), err)
	}
	if p.wait(timeout) {
		return p.err, nil
	}
	if err := p.Kill(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("pid %d did not exit within %s of SIGTERM (killed)", p.Pid(), timeout)
}

// wait reports whether the process was reaped within timeout.
func (p *Proc) wait(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// SignalGroup signals the process group, ignoring a gone one.
func (p *Proc) SignalGroup(sig syscall.Signal) {
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid(), sig)
	}
}

// WaitStopped waits until every pid is stopped (state T), a zombie or
// gone, up to GoneTimeout.
func WaitStopped(pids []int) error {
	deadline := time.Now().Add(GoneTimeout)
	for {
		pending, state := 0, byte(0)
		for _, pid := range pids {
			if _, s, _, ok := postgres.ProcStat(pid); ok && s != 'T' && s != 't' && s != 'Z' {
				pending, state = pid, s
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d in state %c, not stopped %s after SIGSTOP", pending, state, GoneTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc: no event to wait on
	}
}

// signalProcs signals each pid's group, else the pid alone (a child that
// is no group leader); a gone one is no error.
func signalProcs(procs []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range procs {
		if err := syscall.Kill(-pid, sig); err == nil {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}
