package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StopMode is a PostgreSQL shutdown mode.
type StopMode string

// Shutdown modes, in escalation order. StopKill is not a PostgreSQL mode:
// Stop reports it when only SIGKILL of the postmaster and its children
// ended the server.
const (
	StopSmart     StopMode = "smart"     // wait for sessions to end (SIGTERM)
	StopFast      StopMode = "fast"      // abort sessions, shutdown checkpoint (SIGINT)
	StopImmediate StopMode = "immediate" // no checkpoint; crash recovery at next start (SIGQUIT)
	StopKill      StopMode = "kill"      // SIGKILL of the postmaster and its children
)

var stopOrder = []StopMode{StopSmart, StopFast, StopImmediate}

var stopSignal = map[StopMode]syscall.Signal{
	StopSmart: syscall.SIGTERM, StopFast: syscall.SIGINT, StopImmediate: syscall.SIGQUIT,
}

// The wait after SIGKILL is planned inside the budget, so that a fencing
// leader's Stop ends within its safety margin. The kernel acts on SIGKILL
// at once (on a stopped process too); the wait covers the exit of every
// server process (unmapping shared memory) on a loaded host. A quarter of
// the budget, at least minKillWait (a shorter wait would report a process
// still exiting as a failure) and at most maxKillWait (ample on any host: a
// longer budget is better spent on the shutdown modes).
const (
	killWaitShare = 4
	minKillWait   = 100 * time.Millisecond
	maxKillWait   = 5 * time.Second
)

// reapWait is how long Stop waits, once every killed process is dead, for
// their parents (init, for the postmaster) to reap them. A zombie holds no
// memory and cannot write; some inits reap only every few seconds, and the
// budget is not to be spent on them.
const reapWait = 100 * time.Millisecond

// stopStage is one shutdown mode of a stop and when to signal it, as an
// offset from the start of the stop.
type stopStage struct {
	Mode StopMode
	At   time.Duration
}

// stopPlan is the escalation schedule of one stop, as offsets from its
// start: the shutdown modes in order, SIGKILL of every server process at
// KillAt at the latest, and End by when every process must be dead.
type stopPlan struct {
	Stages []stopStage
	KillAt time.Duration
	End    time.Duration
}

// planStop plans a stop from mode from (a mode of stopOrder) within budget:
// killWait (a quarter of the budget, within [minKillWait, maxKillWait]) is
// kept for the end, and the modes from from to immediate share the rest
// equally. End is the budget, or minKillWait when the budget is shorter.
func planStop(from StopMode, budget time.Duration) stopPlan {
	killWait := min(max(budget/killWaitShare, minKillWait), maxKillWait)
	killAt := max(budget-killWait, 0)
	modes := stopOrder[max(slices.Index(stopOrder, from), 0):]
	plan := stopPlan{KillAt: killAt, End: killAt + killWait}
	for n, mode := range modes {
		plan.Stages = append(plan.Stages, stopStage{Mode: mode, At: killAt * time.Duration(n) / time.Duration(len(modes))})
	}
	return plan
}

// Stop shuts the server down, starting with mode from and escalating up to
// immediate, then SIGKILL of the postmaster and every child of it, on a
// schedule planned inside budget (a non-positive budget means
// stop_timeout; see planStop). From immediate with 5 s: SIGQUIT at once,
// SIGKILL at 3.75 s at the latest. From smart with 4 s: SIGTERM, SIGINT at
// 1 s, SIGQUIT at 2 s, SIGKILL at 3 s.
//
// Stop returns within the budget (minKillWait when it is shorter) plus one
// poll, the wait after SIGKILL included, or earlier with ctx's error when
// ctx ends. A stopped postmaster (state T or t: SIGSTOP, a debugger) acts
// on no signal but SIGKILL: once Stop sees one it kills at once. After a
// kill, processes dead but not yet reaped by their parent are not waited
// for beyond reapWait, and a postmaster.pid naming the dead postmaster is
// removed; PostgreSQL's socket lock file may still name it until init
// reaps it, and a start fails until then.
//
// It returns the mode that ended the server, and (from, nil) when it was
// not running. The persistent connection is closed first: it would hold a
// smart shutdown forever.
func (i *Instance) Stop(ctx context.Context, from StopMode, budget time.Duration) (reached StopMode, err error) {
	if !slices.Contains(stopOrder, from) {
		return "", fmt.Errorf("stop postgres: unknown mode %q", from)
	}
	pid, running := i.findPostmaster()
	if !running {
		return from, nil
	}
	if budget <= 0 {
		budget = i.cfg.StopTimeout
	}
	i.Close()
	start := time.Now()
	plan := planStop(from, budget)
	for n, stage := range plan.Stages {
		stageEnd := start.Add(plan.KillAt)
		if n+1 < len(plan.Stages) {
			stageEnd = start.Add(plan.Stages[n+1].At)
		}
		if processStopped(pid) {
			break
		}
		i.log.Info("stopping postgres", "mode", string(stage.Mode), "pid", pid, "wait", time.Until(stageEnd).Round(time.Millisecond))
		if err := signalProcess(pid, stopSignal[stage.Mode]); err != nil {
			return "", fmt.Errorf("stop postgres (%s): %w", stage.Mode, err)
		}
		exited, err := i.waitExit(ctx, pid, stageEnd)
		if err != nil {
			return "", fmt.Errorf("stop postgres (%s): %w", stage.Mode, err)
		}
		if exited {
			i.log.Info("postgres stopped", "mode", string(stage.Mode))
			return stage.Mode, nil
		}
	}
	if err := i.kill(ctx, pid, start.Add(plan.End)); err != nil {
		return "", fmt.Errorf("stop postgres (kill): %w", err)
	}
	return StopKill, nil
}

// findPostmaster returns the postmaster's pid, from postmaster.pid or, when
// that cannot be read (an unreadable data directory), by the working
// directory of the server's processes; false when none runs.
func (i *Instance) findPostmaster() (int, bool) {
	pid, err := i.PostmasterPID()
	if errors.Is(err, ErrNotRunning) {
		return 0, false
	}
	if err == nil {
		return pid, true
	}
	found, ok := postmasterIn(i.cfg.DataDir)
	if !ok {
		i.log.Warn("cannot read postmaster.pid, and no PostgreSQL server runs in the data directory", "err", err)
	}
	return found, ok
}

// kill sends SIGKILL to the postmaster pm and every child of it and waits
// until deadline for them to be dead. Every process, not only the
// postmaster: a surviving backend holds the shared memory the next start
// needs and, if it was frozen, could write once continued. A postmaster.pid
// left naming the dead postmaster is removed (as Start would), so that
// neither a start nor pg_rewind's single-user recovery takes a zombie not
// reaped yet for a running server.
func (i *Instance) kill(ctx context.Context, pm int, deadline time.Time) error {
	_, state, _, ok := ProcStat(pm)
	procs := ServerProcesses(pm, true)
	reason, stateName := "shutdown_ignored", "unknown"
	if ok {
		stateName = string(state)
	}
	if stoppedState(state) {
		// SIGSTOP, a debugger: pending shutdown signals wait for a
		// SIGCONT, SIGKILL does not.
		reason = "postmaster_stopped"
	}
	i.log.Warn("killing postgres: the postmaster and its children", "reason", reason, "pid", pm,
		"state", stateName, "processes", len(procs), "wait", time.Until(deadline).Round(time.Millisecond))
	if err := killProcesses(procs); err != nil {
		return err
	}
	if err := i.waitGone(ctx, procs, deadline); err != nil {
		return err
	}
	if _, err := i.PostmasterPID(); errors.Is(err, ErrNotRunning) {
		if _, err := removeFile(i.lockFile()); err != nil {
			i.log.Warn("cannot remove the stale postmaster.pid", "err", err)
		}
	}
	return nil
}

// lockFile is the postmaster's lock file in the data directory.
func (i *Instance) lockFile() string { return filepath.Join(i.cfg.DataDir, "postmaster.pid") }

// signalProcess sends sig to pid; a process already gone is not an error.
func signalProcess(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}

// killProcesses sends SIGKILL to each process's group (a backend may run
// an archive or restore command in it) or, when it leads none, to the
// process alone.
func killProcesses(procs []int) error {
	var errs []error
	for _, pid := range procs {
		target := pid
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			target = -pid
		}
		errs = append(errs, signalProcess(target, syscall.SIGKILL))
	}
	return errors.Join(errs...)
}

// waitGone polls until none of procs exists (nil), until ctx ends, or until
// deadline, when one still alive is errStopFailed. Once every process is
// dead, zombies are given reapWait to be reaped and are then not an error.
func (i *Instance) waitGone(ctx context.Context, procs []int, deadline time.Time) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var deadSince time.Time
	for {
		left := slices.IndexFunc(procs, processExists)
		if left < 0 {
			return nil
		}
		now := time.Now()
		if alive := slices.IndexFunc(procs, processAlive); alive >= 0 {
			if !now.Before(deadline) {
				return fmt.Errorf("pid %d: %w", procs[alive], errStopFailed)
			}
		} else {
			if deadSince.IsZero() {
				deadSince = now
			}
			if now.Sub(deadSince) >= reapWait || !now.Before(deadline) {
				i.log.Warn("postgres processes killed but not reaped yet", "pid", procs[left])
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitExit waits until pid is gone (true), until deadline or until the
// postmaster is stopped (false: only SIGKILL can end it), or until ctx ends
// (error). The postmaster's exit is an event (a pidfd turns readable the
// moment it exits), so a switchover's write gap does not wait out a poll
// interval; the checks still run every pollInterval, and without a pidfd
// (an old kernel) they are the only wait.
func (i *Instance) waitExit(ctx context.Context, pid int, deadline time.Time) (bool, error) {
	exited := pidExitWaiter(pid)
	defer exited.close()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if !i.postmasterAlive(pid) {
			return true, nil
		}
		if !time.Now().Before(deadline) || processStopped(pid) {
			return false, nil
		}
		if exited.wait(pollInterval) {
			continue // gone, or a signal interrupted the wait: check again
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
	}
}

// exitWaiter waits for a process's exit on its pidfd.
type exitWaiter struct{ fd int }

// pidExitWaiter opens pid's pidfd; without one (an old kernel, the process
// already gone), wait returns false at once and the caller polls.
func pidExitWaiter(pid int) exitWaiter {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return exitWaiter{fd: -1}
	}
	return exitWaiter{fd: fd}
}

// wait blocks until the process exits (true) or for at most d (false).
func (w exitWaiter) wait(d time.Duration) bool {
	if w.fd < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d.Milliseconds()))
	return n > 0 || errors.Is(err, unix.EINTR)
}

func (w exitWaiter) close() {
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
	}
}
