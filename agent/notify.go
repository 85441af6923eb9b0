package agent

import (
	"fmt"
	"time"
)

// Service manager notifications (systemd Type=notify, docs/operations.md).
//
// READY=1 goes out once, after the first tick that observed both etcd (a
// fresh view) and PostgreSQL (an answer, or a known stopped or empty data
// directory): before that, `systemctl start` has not yet got an agent that
// knows its cluster. STATUS= says the role and PostgreSQL's state when they
// change. WATCHDOG=1 goes out after every tick and, between ticks, every
// half WatchdogSec — always from the loop goroutine, never from a timer of
// its own, so only a loop that still turns keeps systemd from restarting
// the agent.
//
// Safety rule: nothing here touches etcd or PostgreSQL or decides
// anything; a notification that cannot be sent is logged and retried on
// the next tick. A send waits at most 50 ms (internal/sdnotify), far
// inside the smallest safety_margin (1 s), so it cannot carry a leader's
// fence past its lease deadline.

// notifyState is what the service manager was last told.
type notifyState struct {
	ready  bool
	status string
}

// observedAll: etcd and PostgreSQL were both observed this tick.
func observedAll(s Snapshot) bool {
	return s.View != nil && s.ViewFresh && !s.PG.Unresponsive
}

// serviceStatus is the STATUS= line: the role, PostgreSQL's state, and
// what keeps a member that is not ready waiting.
func serviceStatus(s Snapshot, role Role, pg PGRunState, leading bool) string {
	switch {
	case s.View == nil || !s.ViewFresh:
		return fmt.Sprintf("waiting for etcd; %s, postgres %s", role, pg)
	case s.PG.Unresponsive:
		return fmt.Sprintf("postgres does not answer; %s", role)
	case leading:
		return fmt.Sprintf("%s (leader), postgres %s", role, pg)
	}
	return fmt.Sprintf("%s, postgres %s", role, pg)
}

// notifyTick tells the service manager what this tick changed, and that
// the loop is alive.
func (a *Agent) notifyTick(s Snapshot) {
	if a.notifier == nil {
		return
	}
	next := notifyState{ready: a.notified.ready || observedAll(s), status: serviceStatus(s, a.role, a.pgState, a.lease.leading)}
	var lines []string
	if next.ready && !a.notified.ready {
		lines = append(lines, "READY=1")
	}
	if next.status != a.notified.status {
		lines = append(lines, "STATUS="+next.status)
	}
	if a.notifier.WatchdogInterval() > 0 {
		lines = append(lines, "WATCHDOG=1")
	}
	if len(lines) == 0 {
		return
	}
	if err := a.notifier.Send(lines...); err != nil {
		// Told nothing: the next tick tries again.
		a.log.Warn("cannot notify the service manager", "err", err)
		return
	}
	if next.ready && !a.notified.ready {
		a.log.Info("ready: etcd and PostgreSQL observed", "status", next.status)
	}
	a.notified = next
}

// keepaliveEvery is how often the waiting loop proves itself alive: half
// the service manager's watchdog timeout, as sd_watchdog_enabled(3)
// advises (0: no watchdog).
func (a *Agent) keepaliveEvery() time.Duration {
	if a.notifier == nil {
		return 0
	}
	return a.notifier.WatchdogInterval() / 2
}

// keepalive is the between-ticks WATCHDOG=1.
func (a *Agent) keepalive() {
	if err := a.notifier.Send("WATCHDOG=1"); err != nil {
		a.log.Warn("cannot send the service manager's keep-alive", "err", err)
	}
}

// notifyStopping tells the service manager the agent is shutting down (a
// stop that takes a while is then shown as such).
func (a *Agent) notifyStopping() {
	if a.notifier == nil {
		return
	}
	if err := a.notifier.Send("STOPPING=1", "STATUS=stopping: stopping PostgreSQL, then releasing the leader key"); err != nil {
		a.log.Warn("cannot notify the service manager", "err", err)
	}
}
