package lenient

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bool reads a boolean: a bool; a number (non-zero is true); or a string,
// trimmed and in any case, among true/on/yes/y/1 and false/off/no/n/0 (the
// empty string is false). Anything else is an error.
func Bool(v any) (bool, error) {
	if s, ok := v.(string); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "on", "yes", "y", "1":
			return true, nil
		case "false", "off", "no", "n", "0", "":
			return false, nil
		}
	} else if b, ok := v.(bool); ok {
		return b, nil
	} else if f, ok := numeric(v); ok {
		return f != 0, nil
	}
	return false, fmt.Errorf("%v is not a boolean", v)
}

// Truthy is Bool with anything that is not a boolean (nil included) read
// as false: the reading of flags such as the nofailover tag.
func Truthy(v any) bool {
	b, err := Bool(v)
	return err == nil && b
}

// Number reads a number: a Go or JSON number, or a string holding one
// (surrounding spaces allowed).
func Number(v any) (float64, error) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}
	if f, ok := numeric(v); ok {
		return f, nil
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}

// Integer is Number refusing a fractional part.
func Integer(v any) (int64, error) {
	n, err := Number(v)
	if err != nil {
		return 0, err
	}
	if n != math.Trunc(n) {
		return 0, fmt.Errorf("%v is not a whole number", v)
	}
	return int64(n), nil
}

// numeric converts the number types JSON and YAML decoders produce.
func numeric(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint64:
		return float64(t), true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}
