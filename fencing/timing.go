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

// minSafetyMargin is the smallest gap between the moment the device fires
// (ttl − safety_margin after the last keepalive) and the earliest moment
// etcd can expire the lease (ttl after the renewal was sent). It absorbs the
// renewal round trip before the keepalive, clock-rate drift and the reset
// itself. Zero would let the device fire at the very instant another node
// may take the lease.
const minSafetyMargin = time.Second

// DeviceTimeout is the watchdog timeout for a lease ttl: ttl − safetyMargin,
// truncated to whole seconds because Linux watchdog devices count in seconds
// (truncating can only make the device fire earlier, never later).
func DeviceTimeout(ttl, safetyMargin time.Duration) time.Duration {
	return (ttl - safetyMargin).Truncate(time.Second)
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
	if t := DeviceTimeout(ttl, safetyMargin); t < loopWait+minPingSlack {
		return fmt.Errorf(
			"watchdog.safety_margin: ttl %s − watchdog.safety_margin %s gives a device timeout of %s, below loop_wait %s + %s: the watchdog could reset a healthy leader; raise ttl or lower loop_wait or watchdog.safety_margin",
			ttl, safetyMargin, t, loopWait, minPingSlack)
	}
	return nil
}
