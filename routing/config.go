package routing

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config is the `routing:` section of regent.yml. Every member of a cluster
// should carry the same section: the old primary's agent pauses, the new
// primary's agent repoints and resumes.
type Config struct {
	PgBouncer []PgBouncer `yaml:"pgbouncer"`
	HAProxy   []HAProxy   `yaml:"haproxy"`
	Hooks     Hooks       `yaml:"hooks"`
}

// PgBouncer is one PgBouncer whose [databases] section Regent manages.
type PgBouncer struct {
	// Admin is the admin console's connection string (keyword/value or
	// URL), database pgbouncer, a user in admin_users, e.g.
	// "host=/var/run/postgresql port=6432 user=pgbouncer dbname=pgbouncer".
	Admin string `yaml:"admin"`
	// Databases are the [databases] entries to pause and repoint; each
	// points at the same database name on the primary.
	Databases []string `yaml:"databases"`
	// IncludeFile is written with a [databases] section naming the new
	// primary; pgbouncer.ini must %include it as its last line.
	IncludeFile string `yaml:"include_file"`
	// ConnectOptions are appended to each database line ("pool_size=20").
	ConnectOptions string `yaml:"connect_options"`
	// PauseTimeout bounds PAUSE: it waits for the running transactions.
	PauseTimeout time.Duration `yaml:"pause_timeout"`
	// Timeout bounds each other admin command.
	Timeout time.Duration `yaml:"timeout"`
}

// HAProxy is one HAProxy runtime API (`stats socket … level admin`).
type HAProxy struct {
	// Socket is the admin socket: a unix socket path, or host:port.
	Socket string `yaml:"socket"`
	// Backend is the backend (or listen section) of the write port.
	Backend string `yaml:"backend"`
	// Servers maps member names to server names in Backend; a member not
	// listed is its own server name.
	Servers map[string]string `yaml:"servers"`
	// Timeout bounds each command.
	Timeout time.Duration `yaml:"timeout"`
}

// Hooks are commands run at each point (argv, absolute program path),
// with REGENT_ROUTING_* environment variables (docs/routing.md).
type Hooks struct {
	Pause    []string      `yaml:"pause"`
	Restore  []string      `yaml:"restore"`
	Repoint  []string      `yaml:"repoint"`
	Failover []string      `yaml:"failover"`
	Timeout  time.Duration `yaml:"timeout"`
}

// Defaults. PAUSE waits for running transactions, so its bound is the
// longest transaction the operator accepts to wait for before giving up
// the switchover; the other commands answer at once unless the router is
// stuck.
const (
	DefaultPauseTimeout   = 10 * time.Second
	DefaultCommandTimeout = 5 * time.Second
	DefaultHookTimeout    = 10 * time.Second
)

// Enabled reports whether any integration is configured.
func (c Config) Enabled() bool {
	h := c.Hooks
	return len(c.PgBouncer) > 0 || len(c.HAProxy) > 0 || len(h.Pause)+len(h.Restore)+len(h.Repoint)+len(h.Failover) > 0
}

// SetDefaults fills unset timeouts.
func (c *Config) SetDefaults() {
	for i := range c.PgBouncer {
		p := &c.PgBouncer[i]
		p.PauseTimeout = orDefault(p.PauseTimeout, DefaultPauseTimeout)
		p.Timeout = orDefault(p.Timeout, DefaultCommandTimeout)
	}
	for i := range c.HAProxy {
		c.HAProxy[i].Timeout = orDefault(c.HAProxy[i].Timeout, DefaultCommandTimeout)
	}
	c.Hooks.Timeout = orDefault(c.Hooks.Timeout, DefaultHookTimeout)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Validate checks every entry; errors name the dotted key.
func (c Config) Validate() error {
	var errs []error
	for i, p := range c.PgBouncer {
		errs = append(errs, p.validate(fmt.Sprintf("routing.pgbouncer[%d]", i)))
	}
	for i, h := range c.HAProxy {
		errs = append(errs, h.validate(fmt.Sprintf("routing.haproxy[%d]", i)))
	}
	for key, argv := range map[string][]string{"pause": c.Hooks.Pause, "restore": c.Hooks.Restore, "repoint": c.Hooks.Repoint, "failover": c.Hooks.Failover} {
		if len(argv) > 0 && !filepath.IsAbs(argv[0]) {
			errs = append(errs, fmt.Errorf("routing.hooks.%s: %q must be an absolute path", key, argv[0]))
		}
	}
	if c.Hooks.Timeout < 0 {
		errs = append(errs, fmt.Errorf("routing.hooks.timeout: %s is negative", c.Hooks.Timeout))
	}
	return errors.Join(errs...)
}

func (p PgBouncer) validate(key string) error {
	var errs []error
	if strings.TrimSpace(p.Admin) == "" {
		errs = append(errs, errors.New(key+".admin: required (the admin console's connection string, dbname=pgbouncer)"))
	}
	if len(p.Databases) == 0 {
		errs = append(errs, errors.New(key+".databases: required (the [databases] entries to pause and repoint)"))
	}
	for j, db := range p.Databases {
		if !validName(db) {
			errs = append(errs, fmt.Errorf("%s.databases[%d]: %q must be letters, digits, '_', '-' or '.'", key, j, db))
		}
	}
	switch {
	case p.IncludeFile == "":
		errs = append(errs, errors.New(key+".include_file: required (the file pgbouncer.ini %includes)"))
	case !filepath.IsAbs(p.IncludeFile):
		errs = append(errs, fmt.Errorf("%s.include_file: %q must be an absolute path", key, p.IncludeFile))
	}
	if strings.ContainsAny(p.ConnectOptions, "\n\r") {
		errs = append(errs, errors.New(key+".connect_options: must be one line"))
	}
	if p.PauseTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s.pause_timeout: %s is negative", key, p.PauseTimeout))
	}
	if p.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: %s is negative", key, p.Timeout))
	}
	return errors.Join(errs...)
}

func (h HAProxy) validate(key string) error {
	var errs []error
	if h.Socket == "" {
		errs = append(errs, errors.New(key+".socket: required (a unix socket path or host:port with level admin)"))
	}
	if h.Backend == "" || !validName(h.Backend) {
		errs = append(errs, fmt.Errorf("%s.backend: %q must be the write backend's name", key, h.Backend))
	}
	for member, server := range h.Servers {
		if !validName(server) {
			errs = append(errs, fmt.Errorf("%s.servers.%s: %q is not a server name", key, member, server))
		}
	}
	if h.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout: %s is negative", key, h.Timeout))
	}
	return errors.Join(errs...)
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."

// validName: what may stand in an admin command or an ini key unquoted.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	return strings.Trim(s, nameChars) == ""
}

// server is member's server name in h's backend.
func (h HAProxy) server(member string) string {
	if s, ok := h.Servers[member]; ok {
		return s
	}
	return member
}
