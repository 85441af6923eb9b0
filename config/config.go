package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/routing"
)

// Config is regent.yml: the local settings of one member. Each section is
// owned by the package that consumes it; Config composes them and checks
// the rules that cross sections.
type Config struct {
	Name      string             `yaml:"name"`
	Scope     string             `yaml:"scope"`
	Namespace string             `yaml:"namespace"`
	Etcd      dcs.Config         `yaml:"etcd"`
	RestAPI   restapi.Config     `yaml:"restapi"`
	Postgres  postgres.Config    `yaml:"postgres"`
	Watchdog  fencing.Config     `yaml:"watchdog"`
	Fence     fencing.HookConfig `yaml:"fence"`
	Callbacks Callbacks          `yaml:"callbacks"`
	Routing   routing.Config     `yaml:"routing"`
	Tags      Tags               `yaml:"tags"`
	Bootstrap Bootstrap          `yaml:"bootstrap"`
	Log       Log                `yaml:"log"`
}

// Bootstrap is used once, by the member that initializes the cluster.
type Bootstrap struct {
	// DCS is written verbatim to the config key (as Patroni does).
	DCS map[string]any `yaml:"dcs"`
	// Method creates the cluster: "initdb" (the default) or the name of a
	// custom method section (Methods), e.g. a restore from a backup.
	Method string `yaml:"method"`
	// InitDB are extra initdb options (Patroni's bootstrap.initdb).
	InitDB postgres.InitDBOptions `yaml:"initdb"`
	// Methods are the custom method sections, beside the other keys as in
	// Patroni (bootstrap.<name>).
	Methods map[string]postgres.BootstrapMethod `yaml:",inline"`
}

// InitDBMethod is the default bootstrap method.
const InitDBMethod = "initdb"

// Custom returns the custom bootstrap method to use, if any.
func (b Bootstrap) Custom() (name string, m postgres.BootstrapMethod, ok bool) {
	if b.Method == "" || b.Method == InitDBMethod {
		return "", m, false
	}
	return b.Method, b.Methods[b.Method], true
}

// validate checks that method names a section and every section is named.
func (b Bootstrap) validate() []error {
	var errs []error
	if name, m, ok := b.Custom(); ok {
		if _, found := b.Methods[name]; !found {
			errs = append(errs, fmt.Errorf("bootstrap.method: %q has no bootstrap.%s section", name, name))
		} else {
			errs = append(errs, m.Validate("bootstrap."+name)...)
		}
	}
	for name := range b.Methods {
		if name != b.Method {
			errs = append(errs, fmt.Errorf("bootstrap.%s: unknown key (a method section must be named by bootstrap.method)", name))
		}
	}
	return errs
}

// Log selects the log level and format.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// memberName: no "/" (it is part of a key), nothing that breaks a conninfo.
var memberName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$`)

// Load reads, decodes strictly, defaults and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse is Load on bytes.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := decodeStrict(data, &c); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetDefaults fills unset fields of every section.
func (c *Config) SetDefaults() {
	if c.Namespace == "" {
		c.Namespace = "/service/"
	}
	c.Etcd.SetDefaults()
	c.RestAPI.SetDefaults()
	c.Postgres.SetDefaults()
	c.Watchdog.SetDefaults()
	c.Fence.SetDefaults()
	c.Callbacks.SetDefaults()
	c.Routing.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate checks every section and the cross-section rules.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Name == "":
		errs = append(errs, errors.New("name: required"))
	case !memberName.MatchString(c.Name):
		errs = append(errs, fmt.Errorf("name: %q must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit", c.Name))
	}
	switch {
	case c.Scope == "":
		errs = append(errs, errors.New("scope: required"))
	case strings.Contains(c.Scope, "/"):
		errs = append(errs, fmt.Errorf("scope: %q must not contain '/'", c.Scope))
	}
	errs = append(errs, c.Etcd.Validate(), c.RestAPI.Validate(), c.Postgres.Validate(), c.Watchdog.Validate(), c.Fence.Validate(), c.Callbacks.Validate(), c.Routing.Validate())
	if _, err := c.Tags.failoverPriority(); err != nil {
		errs = append(errs, fmt.Errorf("tags.failover_priority: %w", err))
	}
	if _, err := c.Tags.syncPriority(); err != nil {
		errs = append(errs, fmt.Errorf("tags.sync_priority: %w", err))
	}
	if _, err := c.Log.level(); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %w", err))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	errs = append(errs, c.Bootstrap.validate()...)
	dyn, err := c.BootstrapDynamic()
	if err != nil {
		errs = append(errs, prefixErrors("bootstrap.dcs.", err))
	} else {
		errs = append(errs, CheckSafetyMargin(dyn, c.Watchdog))
	}
	return errors.Join(errs...)
}

// CheckSafetyMargin: the leader fences at t_renew + ttl − safety_margin and
// the watchdog fires ttl − safety_margin/2 (fencing.DeviceTimeout) after its
// last keepalive; both must
// come before etcd can expire the lease, and a healthy leader must renew
// (every loop_wait) well inside its own window.
func CheckSafetyMargin(dyn Dynamic, wd fencing.Config) error {
	if err := fencing.CheckTiming(dyn.TTL, dyn.LoopWait, wd.SafetyMargin); err != nil {
		return err
	}
	if wd.SafetyMargin < dyn.LoopWait+1e9 {
		return fmt.Errorf("watchdog.safety_margin: %s must be ≥ loop_wait + 1s (%s)", wd.SafetyMargin, dyn.LoopWait+1e9)
	}
	if wd.SafetyMargin >= dyn.TTL-dyn.LoopWait {
		return fmt.Errorf("watchdog.safety_margin: %s must be < ttl − loop_wait (%s)", wd.SafetyMargin, dyn.TTL-dyn.LoopWait)
	}
	return nil
}

// BootstrapDynamic parses bootstrap.dcs strictly, as an edit of the whole
// config (CheckKeys): unknown keys, unsupported Patroni features and
// parameters PostgreSQL or Regent would refuse are errors.
func (c *Config) BootstrapDynamic() (Dynamic, error) {
	if c.Bootstrap.DCS == nil {
		return DefaultDynamic(), nil
	}
	// Round-trip through JSON so values have the types the config key will hold.
	raw, err := json.Marshal(NormalizeYAML(c.Bootstrap.DCS))
	if err != nil {
		return Dynamic{}, fmt.Errorf("not representable as JSON: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return Dynamic{}, err
	}
	if err := CheckKeys(m); err != nil {
		return Dynamic{}, err
	}
	dyn, err := dynamicFromMap(m, DefaultDynamic())
	return dyn, errors.Join(err, dyn.Validate())
}

// BootstrapDCSJSON is the JSON written to the config key at bootstrap.
func (c *Config) BootstrapDCSJSON() ([]byte, error) {
	if c.Bootstrap.DCS == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(NormalizeYAML(c.Bootstrap.DCS))
}

// NormalizeYAML turns a YAML-decoded value into one encoding/json can
// encode: every map[any]any (from nested YAML) becomes a map[string]any
// with its keys formatted by fmt.Sprint, recursively, lists included.
// regentctl edit-config reads an edited document with it too.
func NormalizeYAML(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = NormalizeYAML(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = NormalizeYAML(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = NormalizeYAML(e)
		}
		return out
	}
	return v
}

func prefixErrors(prefix string, err error) error {
	var parts []error
	for _, line := range strings.Split(err.Error(), "\n") {
		parts = append(parts, errors.New(prefix+line))
	}
	return errors.Join(parts...)
}

func (l Log) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", l.Level)
	}
	return lv, nil
}

// NewLogger builds the agent's logger from the log section.
func (l Log) NewLogger(w *os.File) *slog.Logger {
	lv, _ := l.level()
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
