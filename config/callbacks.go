package config

import (
	"errors"
	"fmt"
	"time"
)

// Callbacks is the `callbacks:` section of regent.yml: scripts run on
// PostgreSQL events with Patroni's arguments appended (action, role,
// scope), e.g. to repoint PgBouncer or move a VIP. They run in the
// background with a timeout: a failing or hanging callback is logged and
// killed, and never delays a safety action (the agent runs them).
type Callbacks struct {
	OnRoleChange []string      `yaml:"on_role_change"`
	OnStart      []string      `yaml:"on_start"`
	OnStop       []string      `yaml:"on_stop"`
	Timeout      time.Duration `yaml:"timeout"`
}

// DefaultCallbackTimeout bounds one callback run.
const DefaultCallbackTimeout = 30 * time.Second

// SetDefaults fills the timeout.
func (c *Callbacks) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultCallbackTimeout
	}
}

// Validate requires absolute program paths.
func (c Callbacks) Validate() error {
	var errs []error
	for key, argv := range map[string][]string{"on_role_change": c.OnRoleChange, "on_start": c.OnStart, "on_stop": c.OnStop} {
		if len(argv) > 0 && (argv[0] == "" || argv[0][0] != '/') {
			errs = append(errs, fmt.Errorf("callbacks.%s: %q must be an absolute path", key, argv[0]))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("callbacks.timeout: %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}
