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
// Stop reports it when only SIGKILL of the postmaster's process group
// ended the server.
const (
	StopSmart     StopMode = "smart"     // wait for sessions to end (SIGTERM)
	StopFast      StopMode = "fast"      // abort sessions, shutdown checkpoint (SIGINT)
	StopImmediate StopMode = "immediate" // no checkpoint; crash recovery at next start (SIGQUIT)
	StopKill      StopMode = "kill"      // SIGKILL of the process group
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
// 1/3, 1/3, 1/3). If immediate does not end it either, the postmaster's
// process group gets SIGKILL. It returns the mode that ended the server,
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
		return "", fmt.Errorf("stop postgres: %w", err)
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
	i.log.Warn("postgres ignored immediate shutdown; killing its process group", "pid", pid)
	if err := killGroup(pid); err != nil {
		return "", fmt.Errorf("stop postgres: %w", err)
	}
	stopped, err := i.waitExit(ctx, pid, time.Now().Add(killWait))
	if err != nil {
		return "", fmt.Errorf("stop postgres (kill): %w", err)
	}
	if !stopped {
		return "", fmt.Errorf("stop postgres: pid %d: %w", pid, errStopFailed)
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

// killGroup sends SIGKILL to the postmaster's process group (pg_ctl makes
// the postmaster a session leader, so its group holds all its backends),
// or to the postmaster alone when it does not lead a group.
func killGroup(pid int) error {
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	return signalProcess(target, syscall.SIGKILL)
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
