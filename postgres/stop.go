package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
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

// killWait bounds the wait after SIGKILL, which the kernel acts on at once;
// it only covers reaping and a loaded host.
const killWait = 5 * time.Second

// Stop shuts the server down, starting with mode from and escalating up to
// immediate within budget (a non-positive budget means stop_timeout): each
// mode gets an equal share of what is left, immediate the rest (from smart:
// 1/3, 1/3, 1/3). If immediate does not end it either, the postmaster and
// every child of it get SIGKILL. It returns the mode that ended the server,
// and (from, nil) when it was not running. The persistent connection is
// closed first: it would hold a smart shutdown forever.
func (i *Instance) Stop(ctx context.Context, from StopMode, budget time.Duration) (reached StopMode, err error) {
	start := slices.Index(stopOrder, from)
	if start < 0 {
		return "", fmt.Errorf("stop postgres: unknown mode %q", from)
	}
	pid, err := i.PostmasterPID()
	if errors.Is(err, ErrNotRunning) {
		return from, nil
	}
	if err != nil {
		// postmaster.pid cannot be read (an unreadable data directory):
		// find the server by its working directory instead.
		found, ok := postmasterIn(i.cfg.DataDir)
		if !ok {
			i.log.Warn("cannot read postmaster.pid, and no PostgreSQL server runs in the data directory", "err", err)
			return from, nil
		}
		pid = found
	}
	if budget <= 0 {
		budget = i.cfg.StopTimeout
	}
	i.Close()
	deadline := time.Now().Add(budget)
	modes := stopOrder[start:]
	for n, mode := range modes {
		stageEnd := deadline
		if n < len(modes)-1 {
			stageEnd = time.Now().Add(time.Until(deadline) / time.Duration(len(modes)-n))
		}
		i.log.Info("stopping postgres", "mode", string(mode), "pid", pid, "wait", time.Until(stageEnd).Round(time.Millisecond))
		if err := signalProcess(pid, stopSignal[mode]); err != nil {
			return "", fmt.Errorf("stop postgres (%s): %w", mode, err)
		}
		stopped, err := i.waitExit(ctx, pid, stageEnd)
		if err != nil {
			return "", fmt.Errorf("stop postgres (%s): %w", mode, err)
		}
		if stopped {
			i.log.Info("postgres stopped", "mode", string(mode))
			return mode, nil
		}
	}
	procs := ServerProcesses(pid, true)
	i.log.Warn("postgres ignored immediate shutdown; killing the postmaster and its children",
		"pid", pid, "processes", len(procs))
	if err := killProcesses(procs); err != nil {
		return "", fmt.Errorf("stop postgres: %w", err)
	}
	// Every process, not only the postmaster: a surviving backend holds the
	// shared memory the next start needs.
	if err := i.waitGone(ctx, procs, time.Now().Add(killWait)); err != nil {
		return "", fmt.Errorf("stop postgres (kill): %w", err)
	}
	return StopKill, nil
}

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

// waitGone polls until none of procs exists, until deadline or until ctx
// ends. A zombie counts as present while the deadline allows: PostgreSQL's
// lock-file check takes a pid that answers signal 0 for a live postmaster,
// so a start before init reaped it would fail. Zombies left at the deadline
// are not an error (the kernel has freed what they held); a live process is
// (errStopFailed).
func (i *Instance) waitGone(ctx context.Context, procs []int, deadline time.Time) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		left := slices.IndexFunc(procs, processExists)
		if left < 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			if alive := slices.IndexFunc(procs, processAlive); alive >= 0 {
				return fmt.Errorf("pid %d: %w", procs[alive], errStopFailed)
			}
			i.log.Warn("postgres processes killed but not reaped yet", "pid", procs[left])
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitExit polls until pid is gone (true), until deadline (false), or until
// ctx ends (error).
func (i *Instance) waitExit(ctx context.Context, pid int, deadline time.Time) (bool, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if !i.postmasterAlive(pid) {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
	}
}
