package fencing

import (
	"errors"
	"fmt"
	"time"
)

// minPingSlack is how much longer than loop_wait the device timeout must be:
// a healthy loop pings every loop_wait plus the renewal round trip and some
// tick-time jitter (GC pause, a slow etcd answer), and must never be reset
// for it.
const minPingSlack = time.Second

// minSafetyMargin is the smallest safety_margin: the device fires
// DeviceTimeout (ttl − safety_margin/2) after the last keepalive, so at
// least half of it separates that moment from the earliest moment etcd can
// expire the lease (ttl after the renewal was sent). It absorbs the
// renewal round trip before the keepalive, clock-rate drift and the reset
// itself. Zero would let the device fire at the very instant another node
// may take the lease.
const minSafetyMargin = time.Second

// DeviceTimeout is the watchdog timeout for a lease ttl: ttl − safetyMargin/2,
// truncated to whole seconds because Linux watchdog devices count in seconds
// (truncating can only make the device fire earlier, never later).
//
// Three moments after a renewal sent at t: the agent fences itself at
// t + ttl − safetyMargin; the device, pinged right after the renewal was
// acknowledged, fires at about t + DeviceTimeout; etcd may expire the lease
// at t + ttl. The device must come after the agent's own fence (a healthy
// agent that lost etcd stops PostgreSQL and disarms first, and is not reset)
// and before the lease can expire (a hung agent's host is reset before
// anyone else can take the lease). The halfway point leaves room for both.
func DeviceTimeout(ttl, safetyMargin time.Duration) time.Duration {
	return (ttl - safetyMargin/2).Truncate(time.Second)
}

// FenceGrace is the least time between the agent's own fence point and the
// device firing: enough for an immediate stop and the disarm.
const FenceGrace = 500 * time.Millisecond

// KeepaliveWindow is how young an acknowledged renewal must be for a
// keepalive to follow it: a later ping would push the device past the
// lease's expiry.
func KeepaliveWindow(ttl, safetyMargin time.Duration) time.Duration {
	return ttl - DeviceTimeout(ttl, safetyMargin) - FenceGrace
}

// CheckTiming refuses lease timings under which the watchdog is unsafe or
// harmful. With the device timeout T = DeviceTimeout(ttl, safetyMargin):
//
//   - T ≥ loop_wait + 1s, so a healthy loop (one keepalive per renewal, every
//     loop_wait, with some jitter) always pings before the device fires;
//   - safety_margin ≥ 1s, so a device pinged right after a renewal sent at
//     t_renew fires at t_renew + rtt + T < t_renew + ttl, strictly before
//     etcd can expire the lease and another node can take it.
//
// Errors name the config keys: `ttl`, `loop_wait`, `watchdog.safety_margin`.
// CheckTiming is pure; the agent calls it with the dynamic config.
func CheckTiming(ttl, loopWait, safetyMargin time.Duration) error {
	var errs []error
	if ttl <= 0 {
		errs = append(errs, fmt.Errorf("ttl: %s must be positive", ttl))
	}
	if loopWait <= 0 {
		errs = append(errs, fmt.Errorf("loop_wait: %s must be positive", loopWait))
	}
	if safetyMargin < minSafetyMargin {
		errs = append(errs, fmt.Errorf(
			"watchdog.safety_margin: %s is below %s: the watchdog could fire after the lease expires at etcd (ttl after the last renewal)",
			safetyMargin, minSafetyMargin))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ttl-safetyMargin <= loopWait {
		return fmt.Errorf("watchdog.safety_margin: ttl %s − watchdog.safety_margin %s must exceed loop_wait %s, or a healthy leader fences itself between renewals",
			ttl, safetyMargin, loopWait)
	}
	if t := DeviceTimeout(ttl, safetyMargin); t-(ttl-safetyMargin) < FenceGrace || KeepaliveWindow(ttl, safetyMargin) <= 0 {
		return fmt.Errorf(
			"watchdog.safety_margin: %s leaves no room between the agent's own fence (ttl − safety_margin) and the device timeout %s (whole seconds) before the lease expires (ttl %s); use a margin of at least 2s",
			safetyMargin, t, ttl)
	}
	if t := DeviceTimeout(ttl, safetyMargin); t < loopWait+minPingSlack {
		return fmt.Errorf(
			"watchdog.safety_margin: ttl %s and watchdog.safety_margin %s give a device timeout (ttl − safety_margin/2) of %s, below loop_wait %s + %s: the watchdog could reset a healthy leader; raise ttl or lower loop_wait or watchdog.safety_margin",
			ttl, safetyMargin, t, loopWait, minPingSlack)
	}
	return nil
}
