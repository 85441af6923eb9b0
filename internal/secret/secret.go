package secret

import "log/slog"

// Redacted is what a non-empty secret prints as.
const Redacted = "******"

// String is a secret string. Use Reveal to get the value.
type String string

// Reveal returns the secret value. Call it only where the value is sent to
// its consumer (a connection string, an auth header).
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer with the redacted form.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v redacted too.
func (s String) GoString() string { return `secret.String("` + s.String() + `")` }

// LogValue keeps slog output redacted.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the redacted form.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML writes the redacted form.
func (s String) MarshalYAML() (any, error) { return s.String(), nil }
