package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/regent-ha/regent/fencing"
)

// The pure half of PATCH and PUT /config: decoding a body, merging a
// patch, and checking a would-be config key. The agent reads and writes
// the key (with its CAS) around these.

// DecodeObject decodes a JSON object, keeping integers as int64 (and other
// numbers as float64) so values keep their integer form when written back.
func DecodeObject(data []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	normalizeNumbers(m)
	return m, nil
}

// normalizeNumbers turns json.Number into int64 or float64.
func normalizeNumbers(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case json.Number:
			if i, err := t.Int64(); err == nil {
				m[k] = i
			} else if f, err := t.Float64(); err == nil {
				m[k] = f
			}
		case map[string]any:
			normalizeNumbers(t)
		}
	}
}

// MergePatch applies a JSON merge patch (RFC 7386, as Patroni does): null
// deletes, objects merge recursively, anything else replaces. base is not
// modified.
func MergePatch(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			bv, _ := out[k].(map[string]any)
			out[k] = MergePatch(bv, pv)
		default:
			out[k] = v
		}
	}
	return out
}

// EncodeDynamic checks a would-be config key — known keys must parse and
// the timing rules must hold, against this member's safety margin (wd)
// too — and returns its JSON. Its errors are one line, naming the key.
func EncodeDynamic(m map[string]any, wd fencing.Config) ([]byte, error) {
	dyn, err := dynamicFromMap(m, false)
	if err != nil {
		return nil, fmt.Errorf("invalid config: %v", flattenErr(err))
	}
	if err := CheckSafetyMargin(dyn, wd); err != nil {
		return nil, fmt.Errorf("invalid config: %v", flattenErr(err))
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %v", err)
	}
	return data, nil
}

// flattenErr joins a multi-line (errors.Join) message into one line.
func flattenErr(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
