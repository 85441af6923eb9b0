package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/config"
)

// A config document is the config key decoded into plain Go values the
// way both sides compare equal: JSON objects as map[string]any, integers
// as int64, other numbers as float64.

// decodeConfig decodes the config key's JSON.
func decodeConfig(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("the config key is not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return normalize(m).(map[string]any), nil
}

// normalize turns json.Number into int64 or float64, recursively.
func normalize(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
	}
	return v
}

// configYAML is the document as YAML with sorted keys, as show-config and
// the editor present it.
func configYAML(cfg map[string]any) (string, error) {
	if len(cfg) == 0 {
		return "{}\n", nil
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return "", fmt.Errorf("encode the config as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode the config as YAML: %w", err)
	}
	return b.String(), nil
}

// parseConfigYAML reads an edited document back into its canonical form.
func parseConfigYAML(text string) (map[string]any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("the edited config is not valid YAML: %w", err)
	}
	if v == nil {
		return nil, errors.New("the edited config is empty")
	}
	m, ok := config.NormalizeYAML(v).(map[string]any)
	if !ok {
		return nil, errors.New("the edited config is not a mapping")
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("the edited config cannot be JSON: %w", err)
	}
	return decodeConfig(data)
}

// mergePatch is the RFC 7386 patch that turns before into after: changed
// keys with their new value, removed keys as null, objects recursively.
func mergePatch(before, after map[string]any) map[string]any {
	patch := map[string]any{}
	for k, b := range before {
		a, ok := after[k]
		if !ok {
			patch[k] = nil
			continue
		}
		bm, bok := b.(map[string]any)
		am, aok := a.(map[string]any)
		switch {
		case bok && aok:
			if sub := mergePatch(bm, am); len(sub) > 0 {
				patch[k] = sub
			}
		case !reflect.DeepEqual(a, b):
			patch[k] = a
		}
	}
	for k, a := range after {
		if _, ok := before[k]; !ok {
			patch[k] = a
		}
	}
	return patch
}

// setting is one -s key=value (or -p guc=value): a key path and a value;
// nil deletes the key.
type setting struct {
	path  []string
	value any
}

// parseSetting reads "a.b.c=value"; the value is YAML ("10" is a number,
// "on" a string, "'10'" a string, "null" or nothing deletes).
func parseSetting(pair string) (setting, error) {
	key, value, ok := strings.Cut(pair, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return setting{}, usagef("invalid setting %q: want key=value", pair)
	}
	path := strings.Split(key, ".")
	for _, p := range path {
		if p == "" {
			return setting{}, usagef("invalid setting %q: empty part in key %q", pair, key)
		}
	}
	var v any
	if err := yaml.Unmarshal([]byte(value), &v); err != nil {
		return setting{}, usagef("invalid setting %q: the value is not YAML: %v", pair, err)
	}
	return setting{path: path, value: config.NormalizeYAML(v)}, nil
}

// apply sets the value in cfg (a copy is made of every map it changes).
// Under postgresql.parameters the rest of the path is one GUC name, since
// GUCs such as auto_explain.log_min_duration contain dots. Maps emptied
// by a deletion are removed, as patronictl does.
func (st setting) apply(cfg map[string]any) map[string]any {
	return setPath(cfg, st.path, st.value, nil)
}

func setPath(m map[string]any, path []string, value any, prefix []string) map[string]any {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]any{}
	}
	if len(prefix) == 2 && prefix[0] == "postgresql" && prefix[1] == "parameters" {
		path = []string{strings.Join(path, ".")}
	}
	key := path[0]
	if len(path) == 1 {
		if value == nil {
			delete(out, key)
		} else {
			out[key] = value
		}
		return out
	}
	sub, _ := out[key].(map[string]any)
	sub = setPath(sub, path[1:], value, append(prefix, key))
	if len(sub) == 0 {
		delete(out, key)
	} else {
		out[key] = sub
	}
	return out
}
