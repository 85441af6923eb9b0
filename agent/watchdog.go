package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
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
// required mode a failure means it must not lead.
func (a *Agent) armWatchdog() error {
	return a.wd.Arm(a.watchdogTimeout())
}

// keepaliveWatchdog pings the device after an acknowledged renewal sent at
// sent — only while that renewal is young enough (fencing.KeepaliveWindow)
// that the device still fires before sent + ttl.
func (a *Agent) keepaliveWatchdog(sent time.Time) {
	if a.now().Sub(sent) >= fencing.KeepaliveWindow(a.leaseTTL, a.cfg.Watchdog.SafetyMargin) {
		a.log.Warn("renewal took too long to count for the watchdog; not pinging it", "renewal_age", a.now().Sub(sent))
		return
	}
	if err := a.wd.Keepalive(); err != nil {
		a.log.Error("watchdog keepalive failed", "err", err)
	}
}

func (a *Agent) disarmWatchdog() {
	if err := a.wd.Disarm(); err != nil {
		a.log.Error("watchdog disarm failed", "err", err)
	}
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
	rec := &FenceRecord{Target: target, Ran: res.Ran, ExitCode: res.ExitCode, DurationMs: res.Duration.Milliseconds(), Output: res.Output, Error: res.Err}
	if err != nil {
		rec.Error = err.Error()
		return rec, false
	}
	return rec, true
}
