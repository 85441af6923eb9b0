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
		return nil, fmt.Errorf("not a JSON object: %w", err)
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

// EncodePatch is the check of PATCH /config: the keys patch sets are
// checked strictly (CheckKeys), so an edit cannot write what members would
// refuse or ignore, while keys already in base (a Patroni migration's)
// never block an unrelated edit. When the patch sets a timing key, the
// merged config must meet the timing rules and this member's safety margin
// (wd). It returns the merged config's JSON; its errors are one line
// naming each refused key.
func EncodePatch(base, patch map[string]any, wd fencing.Config) ([]byte, error) {
	if err := CheckKeys(patch); err != nil {
		return nil, invalid(err)
	}
	merged := MergePatch(base, patch)
	if setsTiming(patch) {
		if err := checkTimings(merged, wd); err != nil {
			return nil, invalid(err)
		}
	}
	return marshalConfig(merged)
}

// EncodeDynamic is the check of PUT /config: the whole document is
// checked strictly, timings included.
func EncodeDynamic(m map[string]any, wd fencing.Config) ([]byte, error) {
	if err := CheckKeys(m); err != nil {
		return nil, invalid(err)
	}
	if err := checkTimings(m, wd); err != nil {
		return nil, invalid(err)
	}
	return marshalConfig(m)
}

// timingKeys are the keys the timing rules (Validate, CheckSafetyMargin)
// relate.
var timingKeys = []string{"ttl", "loop_wait", "retry_timeout"}

func setsTiming(patch map[string]any) bool {
	for _, k := range timingKeys {
		if _, ok := patch[k]; ok {
			return true
		}
	}
	return false
}

// checkTimings: the timing rules of the config m, against wd too. Bad
// values of other keys are not its business (CheckKeys reports those).
func checkTimings(m map[string]any, wd fencing.Config) error {
	dyn, _ := dynamicFromMap(m, DefaultDynamic())
	if err := dyn.Validate(); err != nil {
		return err
	}
	return CheckSafetyMargin(dyn, wd)
}

func invalid(err error) error {
	return errors.New("invalid config: " + flattenErr(err))
}

func marshalConfig(m map[string]any) ([]byte, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	return data, nil
}

// flattenErr joins a multi-line (errors.Join) message into one line.
func flattenErr(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
