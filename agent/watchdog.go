package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/secret"
)

// watchdogTimeout is the device timeout (fencing.DeviceTimeout): after the
// agent's own fence point, before etcd can expire the lease.
func (a *Agent) watchdogTimeout() time.Duration {
	return fencing.DeviceTimeout(a.dyn.TTL, a.cfg.Watchdog.SafetyMargin)
}

// probeWatchdog checks at start that a required device can be armed, so a
// node without one says so (watchdog_failed) and never races.
func (a *Agent) probeWatchdog() {
	if a.cfg.Watchdog.Mode != fencing.ModeRequired {
		return
	}
	if err := a.wd.Arm(a.watchdogTimeout()); err != nil {
		a.log.Error("watchdog required but unusable: this member will not become leader", "err", err)
		return
	}
	a.disarmWatchdog()
}

// armWatchdog arms the device before this member serves writes. In
// required mode a failure means it must not lead. Arming pings, so it
// obeys the one ping rule (pingWatchdog): right after a renewal young
// enough; otherwise it waits for the next one.
func (a *Agent) armWatchdog() error {
	if !a.lease.pingable(a.now()) {
		return nil
	}
	if err := a.wd.Arm(a.watchdogTimeout()); err != nil {
		return err
	}
	a.notePing()
	return nil
}

// pingWatchdog is the one watchdog rule: ping only right after a renewal
// that extended the deadline (leadership.renewed), and only while that
// renewal is young enough (leadership.pingable, fencing.KeepaliveWindow)
// that the device still fires before the lease can expire. When no ping
// can come in time, the deadline (leadership.deadline) falls before the
// device fires: the agent fences first, and the device resets the host
// only if the fence failed or the loop hung.
func (a *Agent) pingWatchdog() {
	if !a.lease.pingable(a.now()) {
		a.log.Warn("renewal took too long to count for the watchdog; not pinging it (the agent fences before the device fires)",
			"renewal_age", a.now().Sub(a.lease.lastAck), "fence_in", a.lease.deadline().Sub(a.now()).Round(time.Millisecond))
		return
	}
	if err := a.wd.Keepalive(); err != nil {
		a.log.Error("watchdog keepalive failed", "err", err)
		return
	}
	a.notePing()
}

// notePing records when the armed device was last pinged, as the device
// reports it (Arm is a no-op when already armed, so "just called" is not
// "just pinged"), with the timeout it read back.
func (a *Agent) notePing() {
	if st := a.wd.Status(); st.Armed && !st.LastKeepalive.IsZero() {
		a.setLease(a.lease.pinged(st.LastKeepalive, st.Timeout))
	}
}

func (a *Agent) disarmWatchdog() {
	if err := a.wd.Disarm(); err != nil {
		a.log.Error("watchdog disarm failed", "err", err)
		return
	}
	a.setLease(a.lease.disarmed())
}

// releasedCleanly: a leader that stepped down on purpose stops PostgreSQL
// before deleting its key, and its member key stays, saying "stopped". A
// leader whose key vanished with its member key (lease expiry: host dead,
// frozen, partitioned) or that still claims to run did not.
func releasedCleanly(v *dcs.Cluster, leader string) bool {
	m, ok := v.Members[leader]
	return ok && m.State == "stopped"
}

// FenceRecord is the fence hook's outcome, kept in the decision record.
type FenceRecord struct {
	Target     string `json:"target"`
	Ran        bool   `json:"ran"`
	ExitCode   int    `json:"exit_code"`
	DurationMs int64  `json:"duration_ms"`
	Output     string `json:"output,omitempty"`
	Error      string `json:"error,omitempty"`
}

// fenceOldLeader runs fence.command against the former leader before this
// member races to replace it, unless that leader stepped down cleanly.
// It returns false when the promotion must not go ahead.
func (a *Agent) fenceOldLeader(ctx context.Context, s Snapshot) (*FenceRecord, bool) {
	if len(a.cfg.Fence.Command) == 0 || a.previousLeader == "" || a.previousLeader == a.name || releasedCleanly(s.View, a.previousLeader) {
		return nil, true
	}
	target := a.previousLeader
	var connURL string
	if m, ok := s.View.Members[target]; ok {
		connURL = m.ConnURL
	}
	a.log.Warn("former leader did not step down cleanly; running fence.command before racing", "target", target)
	res, err := a.fenceHook.Run(ctx, target, connURL, a.cfg.Scope)
	// The record is kept in etcd and served by GET /decisions: what the
	// hook printed is redacted first (an IPMI password, a token).
	rec := &FenceRecord{Target: target, Ran: res.Ran, ExitCode: res.ExitCode, DurationMs: res.Duration.Milliseconds(),
		Output: secret.RedactText(res.Output), Error: secret.RedactText(res.Err)}
	if err != nil {
		rec.Error = secret.RedactText(err.Error())
		return rec, false
	}
	return rec, true
}
