package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/regent-ha/regent/internal/lenient"
)

// Dynamic is the cluster-wide configuration kept in the `config` key
// (patroni-compat.md §1.3.3), with Patroni's names. Durations are whole
// seconds on the wire.
type Dynamic struct {
	TTL                   time.Duration
	LoopWait              time.Duration
	RetryTimeout          time.Duration
	MaximumLagOnFailover  int64
	PrimaryStartTimeout   time.Duration
	SwitchoverTimeout     time.Duration
	CheckTimeline         bool
	SynchronousMode       bool
	SynchronousModeStrict bool
	SynchronousNodeCount  int
	Pause                 bool
	// PostgresParameters are the GUCs in postgresql.parameters.
	PostgresParameters map[string]any
}

// Regent's defaults: faster than Patroni's (ttl 30, loop_wait 10), still
// meeting loop_wait + 2·retry_timeout ≤ ttl.
const (
	DefaultTTL                  = 10 * time.Second
	DefaultLoopWait             = 1 * time.Second
	DefaultRetryTimeout         = 3 * time.Second
	DefaultMaximumLagOnFailover = 1 << 20
	// DefaultPrimaryStartTimeout: a crashed primary restarted in place within
	// 10 s keeps its lease; longer, and a replica takes over.
	DefaultPrimaryStartTimeout = 10 * time.Second
	DefaultSwitchoverTimeout   = 30 * time.Second
)

// DefaultDynamic returns the defaults applied to absent keys.
func DefaultDynamic() Dynamic {
	return Dynamic{
		TTL:                  DefaultTTL,
		LoopWait:             DefaultLoopWait,
		RetryTimeout:         DefaultRetryTimeout,
		MaximumLagOnFailover: DefaultMaximumLagOnFailover,
		PrimaryStartTimeout:  DefaultPrimaryStartTimeout,
		SwitchoverTimeout:    DefaultSwitchoverTimeout,
		SynchronousNodeCount: 1,
	}
}

// knownDynamicKeys are the keys Regent reads; others are kept untouched in
// etcd (Patroni does the same) but refused in bootstrap.dcs, where a typo is
// more likely than a deliberate foreign key.
var knownDynamicKeys = map[string]bool{
	"ttl": true, "loop_wait": true, "retry_timeout": true, "maximum_lag_on_failover": true,
	"primary_start_timeout": true, "master_start_timeout": true, "switchover_timeout": true,
	"check_timeline": true, "synchronous_mode": true, "synchronous_mode_strict": true,
	"synchronous_node_count": true, "pause": true, "postgresql": true,
	// Patroni keys accepted for compatibility; Regent does not act on them yet.
	"maximum_lag_on_syncnode": true, "max_timelines_history": true, "primary_stop_timeout": true,
	"master_stop_timeout": true, "failsafe_mode": true, "standby_cluster": true, "slots": true,
	"permanent_slots": true, "permanent_replication_slots": true, "ignore_slots": true,
}

// ParseDynamic reads the config key's JSON leniently, as Patroni does:
// integer-like strings work, booleans accept true/on/yes/1, unknown keys are
// ignored. Bad values of known keys are errors naming the key.
func ParseDynamic(raw []byte) (Dynamic, error) {
	if len(raw) == 0 {
		return DefaultDynamic(), nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		// Patroni treats an unparsable value as {}.
		return DefaultDynamic(), nil
	}
	return dynamicFromMap(m, false)
}

// dynamicFromMap applies m over the defaults. strict refuses unknown keys.
func dynamicFromMap(m map[string]any, strict bool) (Dynamic, error) {
	c := DefaultDynamic()
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		if v == nil {
			continue
		}
		var err error
		switch k {
		case "ttl":
			c.TTL, err = seconds(v)
		case "loop_wait":
			c.LoopWait, err = seconds(v)
		case "retry_timeout":
			c.RetryTimeout, err = seconds(v)
		case "maximum_lag_on_failover":
			c.MaximumLagOnFailover, err = lenient.Integer(v)
		case "primary_start_timeout", "master_start_timeout":
			c.PrimaryStartTimeout, err = seconds(v)
		case "switchover_timeout":
			c.SwitchoverTimeout, err = seconds(v)
		case "check_timeline":
			c.CheckTimeline, err = lenient.Bool(v)
		case "synchronous_mode":
			c.SynchronousMode, err = lenient.Bool(v)
		case "synchronous_mode_strict":
			c.SynchronousModeStrict, err = lenient.Bool(v)
		case "synchronous_node_count":
			var n int64
			n, err = lenient.Integer(v)
			c.SynchronousNodeCount = int(n)
		case "pause":
			c.Pause, err = lenient.Bool(v)
		case "postgresql":
			c.PostgresParameters, err = postgresParameters(v)
		default:
			if strict && !knownDynamicKeys[k] {
				err = errors.New("unknown key")
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks the timing rules (DESIGN §2): a leader that cannot reach
// etcd must give up before its lease can expire.
func (c Dynamic) Validate() error {
	var errs []error
	if c.TTL < 2*time.Second {
		errs = append(errs, fmt.Errorf("ttl: %s is below the minimum of 2s", c.TTL))
	}
	if c.LoopWait < time.Second {
		errs = append(errs, fmt.Errorf("loop_wait: %s is below the minimum of 1s", c.LoopWait))
	}
	if c.RetryTimeout < time.Second {
		errs = append(errs, fmt.Errorf("retry_timeout: %s is below the minimum of 1s", c.RetryTimeout))
	}
	if c.LoopWait+2*c.RetryTimeout > c.TTL {
		errs = append(errs, fmt.Errorf("loop_wait: loop_wait + 2·retry_timeout (%s + 2·%s) must be ≤ ttl (%s)",
			c.LoopWait, c.RetryTimeout, c.TTL))
	}
	if c.MaximumLagOnFailover < 0 {
		errs = append(errs, fmt.Errorf("maximum_lag_on_failover: %d is negative", c.MaximumLagOnFailover))
	}
	if c.PrimaryStartTimeout < 0 {
		errs = append(errs, fmt.Errorf("primary_start_timeout: %s is negative", c.PrimaryStartTimeout))
	}
	if c.SynchronousNodeCount < 1 {
		errs = append(errs, fmt.Errorf("synchronous_node_count: %d is below 1", c.SynchronousNodeCount))
	}
	return errors.Join(errs...)
}

func seconds(v any) (time.Duration, error) {
	n, err := lenient.Number(v)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 86400 {
		return 0, fmt.Errorf("%v seconds is out of range (0 to 86400)", v)
	}
	return time.Duration(n * float64(time.Second)), nil
}

func postgresParameters(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be an object")
	}
	p, ok := m["parameters"]
	if !ok || p == nil {
		return nil, nil
	}
	params, ok := p.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parameters: must be an object")
	}
	return params, nil
}
