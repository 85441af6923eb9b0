package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/regent-ha/regent/internal/lenient"
	"github.com/regent-ha/regent/postgres"
)

// The strict half of the dynamic config: what an edit (PATCH, PUT) or
// bootstrap.dcs may set. Every key is one Regent implements, with a value
// it can apply, or is refused by name — never accepted and ignored. What
// is already in etcd is read leniently instead (ParseDynamic): a cluster
// moved from Patroni may hold keys Regent refuses in an edit.

// unsupported are Patroni's keys Regent does not implement. Each is
// accepted only with the value that describes what Regent does anyway
// (Patroni's "off"), so a config copied from Patroni with them off still
// loads; any other value is refused with the reason.
var unsupported = map[string]unsupportedKey{
	"maximum_lag_on_syncnode": {isOff: isNonPositive,
		why: "a lagging synchronous standby is not replaced; only -1 (off) is accepted"},
	"max_timelines_history": {isOff: isZero,
		why: "Regent keeps the whole timeline history; only 0 is accepted"},
	"primary_stop_timeout": {isOff: never,
		why: "a stop's budget is postgres.stop_timeout in regent.yml"},
	"master_stop_timeout": {isOff: never,
		why: "a stop's budget is postgres.stop_timeout in regent.yml"},
}

// postgresqlKeys are the keys under `postgresql` (Patroni's names).
// parameters is implemented; use_pg_rewind and use_slots describe what
// Regent always does, so only true is accepted.
var postgresqlKeys = map[string]unsupportedKey{
	"use_pg_rewind": {isOff: isTrue,
		why: "Regent always rewinds a diverged member with pg_rewind (and re-clones it if that fails); only true is accepted"},
	"use_slots": {isOff: isTrue,
		why: "Regent always replicates through the members' physical slots; only true is accepted"},
	"pg_hba":        {isOff: never, why: "set postgres.pg_hba in each member's regent.yml"},
	"pg_ident":      {isOff: never, why: "Regent does not write pg_ident.conf"},
	"recovery_conf": {isOff: never, why: "set postgres.recovery_conf (restore_command, archive_cleanup_command) in each member's regent.yml"},
	"remove_data_directory_on_rewind_failure": {isOff: isTrue,
		why: "Regent always re-clones a member that cannot rewind; only true is accepted"},
	"remove_data_directory_on_diverged_timelines": {isOff: isTrue,
		why: "Regent always re-clones a member that cannot rewind; only true is accepted"},
}

type unsupportedKey struct {
	isOff func(any) bool
	why   string
}

func (u unsupportedKey) check(v any) error {
	if u.isOff(v) {
		return nil
	}
	return fmt.Errorf("not supported yet: %s", u.why)
}

func isTrue(v any) bool { b, err := lenient.Bool(v); return err == nil && b }
func never(any) bool    { return false }

func isZero(v any) bool {
	n, err := lenient.Number(v)
	return err == nil && n == 0
}

func isNonPositive(v any) bool {
	n, err := lenient.Number(v)
	return err == nil && n <= 0
}

// CheckKeys checks strictly every key doc sets: a key Regent reads must
// have a value it accepts (parameters are checked against PostgreSQL 15's
// catalogue and the settings Regent manages), a Patroni key Regent does
// not implement is refused by name unless off, and any other key is
// unknown. A null value sets nothing (in a patch it deletes the key).
// Each error names its dotted key; the timing rules across keys are
// Dynamic.Validate's.
func CheckKeys(doc map[string]any) error {
	return eachSet(doc, func(k string, v any) error {
		var err error
		switch u, isUnsupported := unsupported[k]; {
		case k == "postgresql":
			return checkPostgresql(v)
		case isUnsupported:
			err = u.check(v)
		case new(Dynamic).field(k) != nil:
			var d Dynamic
			err = setField(k, d.field(k), v)
		default:
			err = unknownKey(k, dynamicKeyNames())
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	})
}

func checkPostgresql(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("postgresql: must be an object")
	}
	return eachSet(m, func(k string, sub any) error {
		if k == "parameters" {
			return checkParameters(sub)
		}
		var err error
		if u, ok := postgresqlKeys[k]; ok {
			err = u.check(sub)
		} else {
			err = unknownKey(k, append(slices.Collect(maps.Keys(postgresqlKeys)), "parameters"))
		}
		if err != nil {
			return fmt.Errorf("postgresql.%s: %w", k, err)
		}
		return nil
	})
}

func checkParameters(v any) error {
	params, ok := v.(map[string]any)
	if !ok {
		return errors.New("postgresql.parameters: must be an object")
	}
	return eachSet(params, func(name string, value any) error {
		if err := postgres.CheckSetting(name, value); err != nil {
			return fmt.Errorf("postgresql.parameters.%s: %w", name, err)
		}
		return nil
	})
}

// eachSet runs check on every key of m that is not null (a null sets
// nothing; in a patch it removes the key), in key order so that the
// joined errors read the same every time.
func eachSet(m map[string]any, check func(k string, v any) error) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != nil {
			errs = append(errs, check(k, m[k]))
		}
	}
	return errors.Join(errs...)
}

// dynamicKeyNames are the top-level keys an edit may set.
func dynamicKeyNames() []string {
	return append(slices.Collect(maps.Keys(unsupported)), readKeys...)
}

func unknownKey(k string, known []string) error {
	return fmt.Errorf("unknown key%s", suggest(k, known))
}
