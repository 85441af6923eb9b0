package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// Handle is one restartable child of a harness node — an agent, with the
// PostgreSQL server it runs on DataDir, or an etcd member (no DataDir) —
// across its runs. Methods are safe for concurrent use.
type Handle struct {
	Name    string // in errors: "agent of pg1", "etcd member etcd2"
	DataDir string // the PostgreSQL data directory; "" for none
	Launch  Launcher
	Log     string // where its output goes, named when it crashed ("": not named)

	mu     sync.Mutex
	p      *Proc // the last run; nil before the first Start
	frozen []int // pids SIGSTOPped by Freeze, for Thaw (the postmaster may be gone by then)
}

// Start starts cmd as cred (see proc.Start) unless the last run is still
// alive.
func (h *Handle) Start(cmd *exec.Cmd, cred *syscall.Credential, exited func(error)) (*Proc, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.p.Exited() {
		return nil, fmt.Errorf("start %s: already running (pid %d)", h.Name, h.p.Pid())
	}
	p, err := Start(h.Launch, cmd, cred, exited)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", h.Name, err)
	}
	h.p = p
	return p, nil
}

// Current is the last run, nil before the first Start.
func (h *Handle) Current() *Proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.p
}

// Running reports whether the process is alive (it may be frozen).
func (h *Handle) Running() bool { return !h.Current().Exited() }

// PID is the running process's pid, 0 when it is not running.
func (h *Handle) PID() int {
	p := h.Current()
	if p.Exited() {
		return 0
	}
	return p.Pid()
}

// Crashed names the exit status when the last run exited on its own (not
// stopped or killed through the handle), nil otherwise.
func (h *Handle) Crashed() error {
	p := h.Current()
	if !p.Crashed() {
		return nil
	}
	if h.Log != "" {
		return fmt.Errorf("the %s exited on its own: %s (log %s)", h.Name, ExitString(p.err), h.Log)
	}
	return fmt.Errorf("the %s exited on its own: %s", h.Name, ExitString(p.err))
}

// ExitString names an exit status.
func ExitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Stop stops the process (see Proc.Stop): exit is its exit status, err
// says it had to be killed.
func (h *Handle) Stop(timeout time.Duration) (exit, err error) {
	exit, err = h.Current().Stop(timeout)
	if err != nil {
		return exit, fmt.Errorf("stop %s: %w", h.Name, err)
	}
	return exit, nil
}

// Kill SIGKILLs the process group (not PostgreSQL, which runs in sessions
// of its own) and waits until the process is reaped.
func (h *Handle) Kill() error {
	if err := h.Current().Kill(); err != nil {
		return fmt.Errorf("kill %s: %w", h.Name, err)
	}
	return nil
}

// KillPostgres SIGKILLs PostgreSQL (see KillServer) and returns the pids.
func (h *Handle) KillPostgres() ([]int, error) {
	if h.DataDir == "" {
		return nil, nil
	}
	procs, err := KillServer(h.DataDir)
	if err != nil {
		return procs, fmt.Errorf("kill postgres of %s: %w", h.Name, err)
	}
	return procs, nil
}

// KillAll SIGKILLs the process and PostgreSQL: a host crash, minus the
// reboot. Nothing is resumed first (see Proc.Kill).
func (h *Handle) KillAll() error {
	_, err := h.KillPostgres()
	return errors.Join(h.Kill(), err)
}

// Freeze SIGSTOPs the process's group (with group) and/or every
// PostgreSQL process (with pg), and returns once all are stopped: the node
// hangs as if its host stalled. Thaw resumes them.
func (h *Handle) Freeze(group, pg bool) error {
	var pids []int
	if p := h.Current(); group && !p.Exited() {
		p.SignalGroup(syscall.SIGSTOP)
		pids = append(pids, p.Pid())
	}
	if pg && h.DataDir != "" {
		procs, _ := SignalServer(h.DataDir, syscall.SIGSTOP) // a process gone by then is no error
		pids = append(pids, procs...)
	}
	return h.stopped(pids)
}

// FreezeProcess SIGSTOPs the process alone — not its group's children,
// not PostgreSQL — and returns its pid once it is stopped: an agent's HA
// loop hangs while PostgreSQL keeps serving, the case a watchdog is for.
func (h *Handle) FreezeProcess() (int, error) {
	pid := h.PID()
	if pid == 0 {
		return 0, fmt.Errorf("freeze %s: not running", h.Name)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return pid, fmt.Errorf("freeze %s (pid %d): %w", h.Name, pid, err)
	}
	return pid, h.stopped([]int{pid})
}

// FreezePostmaster SIGSTOPs the postmaster alone (not its process group,
// not its children) and returns once it is stopped.
func (h *Handle) FreezePostmaster() error {
	pm, alive := ServerPID(h.DataDir)
	if h.DataDir == "" || !alive || !postgres.IsPostgresBinary(pm) {
		return fmt.Errorf("freeze postmaster of %s: no running postmaster", h.Name)
	}
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze postmaster of %s (pid %d): %w", h.Name, pm, err)
	}
	return h.stopped([]int{pm})
}

// stopped records pids for Thaw and waits until they are stopped.
func (h *Handle) stopped(pids []int) error {
	h.mu.Lock()
	h.frozen = append(h.frozen, pids...)
	h.mu.Unlock()
	if err := WaitStopped(pids); err != nil {
		return fmt.Errorf("freeze %s: %w", h.Name, err)
	}
	return nil
}

// Thaw SIGCONTs the process's group, PostgreSQL, and every process a
// freeze stopped: if the agent killed a frozen postmaster meanwhile, its
// children are orphans that postmaster.pid no longer leads to, and would
// stay stopped forever (holding PostgreSQL's shared memory).
func (h *Handle) Thaw() {
	h.Current().SignalGroup(syscall.SIGCONT)
	if h.DataDir != "" {
		_, _ = SignalServer(h.DataDir, syscall.SIGCONT)
	}
	h.mu.Lock()
	frozen := h.frozen
	h.frozen = nil
	h.mu.Unlock()
	_ = signalProcs(frozen, syscall.SIGCONT)
}

// StartLogged is Start with the output appended to h.Log: the child
// writes it through its own copy of the descriptor, which this process
// closes once the child has been waited for.
func (h *Handle) StartLogged(cmd *exec.Cmd, cred *syscall.Credential) error {
	out, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", h.Log, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	closeOut := func(error) { _ = out.Close() }
	if _, err := h.Start(cmd, cred, closeOut); err != nil {
		closeOut(err)
		return err
	}
	return nil
}
