package fencing

import (
	"errors"
	"fmt"
	"time"
)

// Mode says how the agent uses the hardware watchdog.
type Mode string

const (
	// ModeOff never opens the device.
	ModeOff Mode = "off"
	// ModeAutomatic arms the device when it can and leads without it otherwise.
	ModeAutomatic Mode = "automatic"
	// ModeRequired never takes the lease without an armed device.
	ModeRequired Mode = "required"
)

// Config is the `watchdog:` section of regent.yml.
type Config struct {
	Mode   Mode   `yaml:"mode"`
	Device string `yaml:"device"`
	// SafetyMargin is how long before the lease could expire at etcd the
	// leader stops serving writes: it demotes at t_renew + ttl − SafetyMargin,
	// and the watchdog device fires DeviceTimeout (ttl − SafetyMargin/2)
	// after the last keepalive, between that fence and the lease's expiry.
	// It covers clock-rate drift, scheduling delay and the time an immediate
	// shutdown takes. CheckTiming checks it against ttl and loop_wait.
	SafetyMargin time.Duration `yaml:"safety_margin"`
}

// DefaultSafetyMargin leaves 3 s between our own deadline and the earliest
// moment etcd can expire the lease (ttl after the renewal was sent).
const DefaultSafetyMargin = 3 * time.Second

// SetDefaults fills unset fields. The device is opt-in: mode defaults to off.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	if c.Device == "" {
		c.Device = "/dev/watchdog"
	}
	if c.SafetyMargin == 0 {
		c.SafetyMargin = DefaultSafetyMargin
	}
}

// Validate checks the section on its own; the agent checks it against the
// lease timings.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeOff, ModeAutomatic, ModeRequired:
	default:
		errs = append(errs, fmt.Errorf("watchdog.mode: %q is not one of off, automatic, required", c.Mode))
	}
	if c.SafetyMargin < time.Second {
		errs = append(errs, fmt.Errorf("watchdog.safety_margin: %s is below the minimum of 1s", c.SafetyMargin))
	}
	return errors.Join(errs...)
}
