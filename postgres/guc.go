package postgres

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/secret"
)

// QuoteGUC renders v as a postgresql.conf value: strings single-quoted
// (' doubled, \ doubled, since the file's scanner treats backslash as an
// escape), integers and finite floats bare, booleans as bare on/off,
// durations as quoted milliseconds. Line breaks, NUL, nil and composite
// values are errors.
func QuoteGUC(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quoteGUCString(x)
	case secret.String:
		return quoteGUCString(x.Reveal())
	case bool:
		if x {
			return "on", nil
		}
		return "off", nil
	case int:
		return strconv.FormatInt(int64(x), 10), nil
	case int8, int16, int32, int64:
		return fmt.Sprintf("%d", x), nil
	case uint, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("%d", x), nil
	case float32:
		return quoteGUCFloat(float64(x))
	case float64:
		return quoteGUCFloat(x)
	case time.Duration:
		return quoteGUCString(strconv.FormatInt(x.Milliseconds(), 10) + "ms")
	case nil:
		return "", fmt.Errorf("value is empty")
	default:
		return "", fmt.Errorf("value of type %T is not a string, number or boolean", v)
	}
}

func quoteGUCFloat(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("value %v is not a finite number", f)
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

func quoteGUCString(s string) (string, error) {
	if strings.ContainsAny(s, "\x00\r\n") {
		return "", fmt.Errorf("value must not contain NUL or line breaks")
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "'" + s + "'", nil
}

// quoteConnValue quotes a libpq keyword/value connection string value:
// single quotes, with ' and \ escaped by a backslash.
func quoteConnValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

// connString builds a libpq keyword/value string from ordered pairs,
// skipping empty values.
func connString(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pairs[i])
		b.WriteByte('=')
		b.WriteString(quoteConnValue(pairs[i+1]))
	}
	return b.String()
}

// quoteLiteral renders s as an SQL string literal that is correct whatever
// standard_conforming_strings says (E” form).
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "E'" + s + "'"
}
