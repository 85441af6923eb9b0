package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// DefaultMemberSlotsTTL is Patroni 4's member_slots_ttl default: a
// member's slot outlives the member key by this long, so a replica
// restarted (or re-provisioned under the same name) within it finds the
// WAL it needs on the primary.
const DefaultMemberSlotsTTL = 30 * time.Minute

// permanentSlots parses `slots` (Patroni's format): an object of slot
// name → {type, database, plugin}. A null value, or one without a type
// and without database and plugin, is a physical slot; a logical slot
// needs database and plugin.
func permanentSlots(v any) ([]postgres.Slot, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be an object of slot name → {type, database, plugin}")
	}
	out := []postgres.Slot{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		s, err := permanentSlot(name, m[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

func permanentSlot(name string, v any) (postgres.Slot, error) {
	s := postgres.Slot{Name: name, Type: postgres.SlotPhysical}
	if postgres.SlotName(name) != name {
		return s, errors.New("a slot name has only a-z, 0-9 and _ and at most 63 bytes")
	}
	if v == nil {
		return s, nil
	}
	attrs, err := slotAttrs(v)
	if err != nil {
		return s, err
	}
	s.Database, s.Plugin = attrs["database"], attrs["plugin"]
	if _, ok := attrs["name"]; ok {
		return s, errors.New("name: unknown key (the slot's name is its key)")
	}
	switch t := attrs["type"]; {
	case t == "" && s.Database != "" && s.Plugin != "", t == postgres.SlotLogical:
		s.Type = postgres.SlotLogical
		if s.Database == "" || s.Plugin == "" {
			return s, errors.New("a logical slot needs database and plugin")
		}
	case t == "", t == postgres.SlotPhysical:
		if s.Database != "" || s.Plugin != "" {
			return s, errors.New("a physical slot has no database or plugin")
		}
	default:
		return s, fmt.Errorf("type: %q is neither physical nor logical", t)
	}
	return s, nil
}

// ignoreSlots parses `ignore_slots`: a list of {name, type, database,
// plugin}, each entry setting at least one of them.
func ignoreSlots(v any) ([]postgres.SlotMatch, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("must be a list of {name, type, database, plugin}")
	}
	out := []postgres.SlotMatch{}
	var errs []error
	for i, e := range list {
		attrs, err := slotAttrs(e)
		if err == nil && len(attrs) == 0 {
			err = errors.New("an entry sets at least one of name, type, database, plugin")
		}
		if t := attrs["type"]; err == nil && t != "" && t != postgres.SlotPhysical && t != postgres.SlotLogical {
			err = fmt.Errorf("type: %q is neither physical nor logical", t)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
			continue
		}
		out = append(out, postgres.SlotMatch{Name: attrs["name"], Type: attrs["type"],
			Database: attrs["database"], Plugin: attrs["plugin"]})
	}
	return out, errors.Join(errs...)
}

// slotAttrs reads an object of string attributes among name, type,
// database and plugin.
func slotAttrs(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be an object")
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] == nil {
			continue
		}
		s, ok := m[k].(string)
		switch {
		case !slices.Contains([]string{"name", "type", "database", "plugin"}, k):
			return nil, fmt.Errorf("%s: unknown key%s", k, suggest(k, []string{"name", "type", "database", "plugin"}))
		case !ok || s == "":
			return nil, fmt.Errorf("%s: must be a non-empty string", k)
		}
		out[k] = s
	}
	return out, nil
}
