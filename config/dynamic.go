package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/lenient"
	"github.com/regent-ha/regent/postgres"
)

// Dynamic is the cluster-wide configuration kept in the `config` key
// (patroni-compat.md §1.3.3), with Patroni's names. Durations are whole
// seconds on the wire.
type Dynamic struct {
	TTL                  time.Duration
	LoopWait             time.Duration
	RetryTimeout         time.Duration
	MaximumLagOnFailover int64
	PrimaryStartTimeout  time.Duration
	PrimaryRaceBackoff   time.Duration
	SwitchoverTimeout    time.Duration
	CheckTimeline        bool
	// SynchronousMode: off, on or quorum (config/syncmode.go), as in
	// effect: always off in a standby cluster;
	// SynchronousNodeCount is k in "k (…)" (on) or "ANY k (…)" (quorum).
	SynchronousMode       SyncMode
	SynchronousModeStrict bool
	SynchronousNodeCount  int
	Pause                 bool
	// FailsafeMode keeps the primary writable through an etcd outage
	// while every member acknowledges it (agent/failsafe.go).
	FailsafeMode bool
	// PostgresParameters are the GUCs in postgresql.parameters.
	PostgresParameters map[string]any
	// Slots are the permanent replication slots (`slots`); IgnoreSlots
	// the slots no member ever drops (`ignore_slots`); MemberSlotsTTL how
	// long a departed member's slot is kept (`member_slots_ttl`).
	Slots          []postgres.Slot
	IgnoreSlots    []postgres.SlotMatch
	MemberSlotsTTL time.Duration
	// StandbyCluster makes this a standby cluster (nil: a primary cluster).
	StandbyCluster *StandbyCluster
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
	// DefaultPrimaryRaceBackoff: WAL still arriving after the leader key
	// is gone is a backlog (a slow link) or a primary whose agent died;
	// 5 s lets a short backlog settle, so the race compares final
	// positions, and costs nothing when the WAL already stands still
	// (Patroni's default is 0, off).
	DefaultPrimaryRaceBackoff = 5 * time.Second
)

// DefaultDynamic returns the defaults applied to absent keys.
func DefaultDynamic() Dynamic {
	return Dynamic{
		TTL:                  DefaultTTL,
		LoopWait:             DefaultLoopWait,
		RetryTimeout:         DefaultRetryTimeout,
		MaximumLagOnFailover: DefaultMaximumLagOnFailover,
		PrimaryStartTimeout:  DefaultPrimaryStartTimeout,
		PrimaryRaceBackoff:   DefaultPrimaryRaceBackoff,
		SwitchoverTimeout:    DefaultSwitchoverTimeout,
		SynchronousNodeCount: 1,
		MemberSlotsTTL:       DefaultMemberSlotsTTL,
	}
}

// ParseDynamic reads the config key's JSON leniently, as Patroni does:
// integer-like strings work, booleans accept true/on/yes/1, and keys Regent
// does not act on are ignored (a cluster moved from Patroni may hold
// them). Bad values of the keys it reads are errors naming the key; the
// Dynamic returned keeps the default for each of them.
func ParseDynamic(raw []byte) (Dynamic, error) {
	m := decodeKey(raw)
	dyn, err := dynamicFromMap(m, DefaultDynamic())
	return dyn, errors.Join(err, dyn.Validate())
}

// ApplyDynamic is how a member applies the config key over the config it
// runs (cur): a key with a bad value keeps its current value, and timings
// that break the rules — Validate's, or this member's safety margin (wd)
// — keep the current timings, so one bad value never drops the others
// (pause, synchronous_mode, parameters). The error names every key not
// applied; nil means the config applies fully.
func ApplyDynamic(raw []byte, cur Dynamic, wd fencing.Config) (Dynamic, error) {
	dyn, err := dynamicFromMap(decodeKey(raw), cur)
	timing := errors.Join(dyn.Validate(), CheckSafetyMargin(dyn, wd))
	if timing != nil {
		dyn.TTL, dyn.LoopWait, dyn.RetryTimeout = cur.TTL, cur.LoopWait, cur.RetryTimeout
	}
	return dyn, errors.Join(err, timing)
}

// decodeKey reads the config key's JSON; Patroni treats an absent or
// unparsable value as {}.
func decodeKey(raw []byte) map[string]any {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// dynamicFromMap applies m over the defaults; a known key whose value does
// not parse (or is out of its own range) keeps prev's value and adds an
// error naming it. Keys Regent does not read are ignored here: the strict
// checks of edits and bootstrap.dcs are CheckKeys'.
func dynamicFromMap(m map[string]any, prev Dynamic) (Dynamic, error) {
	c := DefaultDynamic()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		field := c.field(k)
		if v == nil || field == nil {
			continue
		}
		if err := setField(k, field, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			reflect.ValueOf(field).Elem().Set(reflect.ValueOf(prev.field(k)).Elem())
		}
	}
	if c.StandbyCluster != nil {
		// Synchronous replication is a primary cluster's (Patroni's
		// is_synchronous_mode): a standby leader acknowledges no client's
		// commit, and a sync key left from before demote-cluster must not
		// decide who may lead.
		c.SynchronousMode = SyncOff
	}
	return c, errors.Join(errs...)
}

// readKeys are the keys Regent reads and acts on (Dynamic.field).
var readKeys = []string{"ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover",
	"primary_start_timeout", "master_start_timeout", "primary_race_backoff", "switchover_timeout", "check_timeline",
	"synchronous_mode", "synchronous_mode_strict", "synchronous_node_count", "pause", "failsafe_mode", "postgresql",
	"slots", "ignore_slots", "member_slots_ttl", "standby_cluster"}

// field is the address of the field key k sets, nil for a key Regent
// does not read.
func (c *Dynamic) field(k string) any {
	switch k {
	case "ttl":
		return &c.TTL
	case "loop_wait":
		return &c.LoopWait
	case "retry_timeout":
		return &c.RetryTimeout
	case "maximum_lag_on_failover":
		return &c.MaximumLagOnFailover
	case "primary_start_timeout", "master_start_timeout":
		return &c.PrimaryStartTimeout
	case "primary_race_backoff":
		return &c.PrimaryRaceBackoff
	case "switchover_timeout":
		return &c.SwitchoverTimeout
	case "check_timeline":
		return &c.CheckTimeline
	case "synchronous_mode":
		return &c.SynchronousMode
	case "synchronous_mode_strict":
		return &c.SynchronousModeStrict
	case "synchronous_node_count":
		return &c.SynchronousNodeCount
	case "pause":
		return &c.Pause
	case "failsafe_mode":
		return &c.FailsafeMode
	case "postgresql":
		return &c.PostgresParameters
	case "slots", "permanent_slots", "permanent_replication_slots": // Patroni's older names
		return &c.Slots
	case "ignore_slots":
		return &c.IgnoreSlots
	case "member_slots_ttl":
		return &c.MemberSlotsTTL
	case "standby_cluster":
		return &c.StandbyCluster
	}
	return nil
}

// setField parses v into field (key k's), leaving it untouched on error.
func setField(k string, field, v any) error {
	switch f := field.(type) {
	case *time.Duration:
		return assign(f)(seconds(v))
	case *bool:
		return assign(f)(lenient.Bool(v))
	case *SyncMode:
		return assign(f)(parseSyncMode(v))
	case *int64: // maximum_lag_on_failover
		return assign(f)(nonNegative(v))
	case *int: // synchronous_node_count
		return assign(f)(syncNodeCount(v))
	case *map[string]any: // postgresql
		return assign(f)(postgresParameters(v))
	case *[]postgres.Slot:
		return assign(f)(permanentSlots(v))
	case *[]postgres.SlotMatch:
		return assign(f)(ignoreSlots(v))
	case **StandbyCluster:
		return assign(f)(standbyCluster(v))
	}
	return fmt.Errorf("%s: no parser (a bug)", k)
}

// assign stores a parsed value unless parsing failed.
func assign[T any](f *T) func(T, error) error {
	return func(v T, err error) error {
		if err == nil {
			*f = v
		}
		return err
	}
}

func nonNegative(v any) (int64, error) {
	n, err := lenient.Integer(v)
	if err == nil && n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return n, err
}

func syncNodeCount(v any) (int, error) {
	n, err := lenient.Integer(v)
	if err == nil && (n < 1 || n > maxSyncNodes) {
		return 0, fmt.Errorf("%d is outside 1 .. %d", n, maxSyncNodes)
	}
	return int(n), err
}

// maxSyncNodes bounds synchronous_node_count: more standbys than any
// cluster has is a typo (PostgreSQL's own limit is max_wal_senders).
const maxSyncNodes = 64

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
	return secondsDuration(n, fmt.Sprint(v))
}

// maxDuration bounds every duration key: a day is already absurd for a
// timeout, and larger numbers overflow time.Duration.
const maxDuration = 24 * time.Hour

// secondsDuration converts n seconds, refusing NaN, ±Inf (which would
// convert to an arbitrary duration), negative and absurd values. text is
// the value as written, for the message.
func secondsDuration(n float64, text string) (time.Duration, error) {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%s is not a number of seconds", text)
	}
	if n < 0 || n > maxDuration.Seconds() {
		return 0, fmt.Errorf("%s seconds is out of range (0 to %d)", text, int(maxDuration.Seconds()))
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
