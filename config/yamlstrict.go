package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes a YAML document into out (a pointer to a struct),
// refusing unknown keys and reporting every problem with the dotted path of
// the key ("postgres.listen: …"). ${VAR} in scalar values is replaced by
// the environment variable VAR; an unset variable is an error naming the key.
func decodeStrict(data []byte, out any) error {
	// ${VAR} is not valid YAML inside a flow mapping ({password: ${X}}), so
	// references become plain tokens before parsing and are expanded per
	// scalar afterwards, where an unset variable can be named with its key.
	var refs []string
	data = envRef.ReplaceAllFunc(data, func(ref []byte) []byte {
		refs = append(refs, string(envRef.FindSubmatch(ref)[1]))
		return []byte(fmt.Sprintf("%s%d__", envToken, len(refs)-1))
	})
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return errors.New("empty document")
	}
	root := doc.Content[0]
	var errs []error
	expandEnv(root, "", refs, &errs)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return decodeNode(root, reflect.ValueOf(out).Elem(), "")
}

// envRef matches ${NAME}; a bare $ is left alone so passwords may contain it.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// envToken stands in for ${NAME} while parsing: a plain YAML word.
const envToken = "__regent_env_"

var envTokenRef = regexp.MustCompile(envToken + `(\d+)__`)

func expandEnv(n *yaml.Node, path string, refs []string, errs *[]error) {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = envTokenRef.ReplaceAllStringFunc(n.Value, func(tok string) string {
			i, _ := strconv.Atoi(envTokenRef.FindStringSubmatch(tok)[1])
			name := refs[i]
			v, ok := os.LookupEnv(name)
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: environment variable %s is not set", orRoot(path), name))
			}
			return v
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), refs, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), refs, errs)
		}
	}
}

// decodeNode walks structs field by field so each error carries its key path;
// anything that is not a struct is decoded by yaml itself.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	if v.Type() == durationType {
		d, err := decodeDuration(n)
		if err != nil {
			return fmt.Errorf("%s: %w", orRoot(path), err)
		}
		v.SetInt(int64(d))
		return nil
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct && n.Kind == yaml.SequenceNode {
		// A list of sections (routing.pgbouncer): each item strictly, its
		// errors naming the item ("routing.pgbouncer[1].admin").
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		var errs []error
		for i, item := range n.Content {
			errs = append(errs, decodeNode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i)))
		}
		return errors.Join(errs...)
	}
	if v.Kind() != reflect.Struct || n.Kind != yaml.MappingNode {
		if v.Kind() == reflect.Struct && n.Kind != yaml.MappingNode && !isNull(n) {
			return fmt.Errorf("%s: must be a mapping, got %s", orRoot(path), describe(n))
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %s", orRoot(path), cleanYAMLError(err))
		}
		return nil
	}
	fields := yamlFields(v.Type())
	rest := inlineField(v.Type())
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		p := join(path, key)
		idx, ok := fields[key]
		// A section (a mapping) that is not a near-miss of a known key goes
		// to the inline map; anything else is a typo.
		if !ok && rest >= 0 && val.Kind == yaml.MappingNode && suggest(key, slices.Collect(maps.Keys(fields))) == "" {
			if err := decodeInline(v.Field(rest), key, val, p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown key%s", p, suggest(key, slices.Collect(maps.Keys(fields)))))
			continue
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: duplicate key", p))
			continue
		}
		seen[key] = true
		if isNull(val) {
			continue
		}
		if err := decodeNode(val, v.Field(idx), p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

// inlineField is the index of t's `yaml:",inline"` map field, which takes
// the keys no other field names (Patroni's per-method sections beside
// the section's own keys), or -1. Whoever owns the struct validates those
// keys (a typo lands there).
func inlineField(t reflect.Type) int {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && f.Type.Kind() == reflect.Map && strings.HasSuffix(f.Tag.Get("yaml"), ",inline") {
			return i
		}
	}
	return -1
}

// decodeInline decodes one key of an inline map strictly.
func decodeInline(m reflect.Value, key string, val *yaml.Node, path string) error {
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	if m.MapIndex(reflect.ValueOf(key)).IsValid() {
		return fmt.Errorf("%s: duplicate key", path)
	}
	elem := reflect.New(m.Type().Elem()).Elem()
	if !isNull(val) {
		if err := decodeNode(val, elem, path); err != nil {
			return err
		}
	}
	m.SetMapIndex(reflect.ValueOf(key), elem)
	return nil
}

// decodeDuration reads a duration as Patroni does for every duration key:
// a bare number is seconds (15, 0.5, "15"); Go's form with a unit is
// accepted too (15s, 500ms, 1m30s). NaN, negative and absurd values
// (over a day) are refused.
func decodeDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("must be a duration (seconds, or 15s, 500ms), got %s", describe(n))
	}
	text := strings.TrimSpace(n.Value)
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return secondsDuration(f, text)
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (seconds, or 15s, 500ms)", text)
	}
	if d < 0 || d > maxDuration {
		return 0, fmt.Errorf("%s is out of range (0 to %s)", d, maxDuration)
	}
	return d, nil
}

// Keys lists the dotted paths regent.yml accepts (the keys of Config,
// sections and leaves: "postgres", "postgres.listen", …), sorted: the
// names decodeStrict reads, for checks that the example file documents
// every key.
func Keys() []string {
	keys := keysOf(reflect.TypeOf(Config{}), "")
	slices.Sort(keys)
	return keys
}

// keysOf lists the dotted paths under struct type t, recursing where
// decodeNode does: into struct-typed fields.
func keysOf(t reflect.Type, prefix string) []string {
	var keys []string
	for name, i := range yamlFields(t) {
		path := prefix + name
		keys = append(keys, path)
		if ft := t.Field(i).Type; ft.Kind() == reflect.Struct {
			keys = append(keys, keysOf(ft, path+".")...)
		}
	}
	return keys
}

// yamlFields maps the yaml names of t's exported fields to their index.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || opts == "inline" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = i
	}
	return out
}

// suggest names a known key that differs from key by one edit, for typos.
func suggest(key string, known []string) string {
	for _, k := range slices.Sorted(slices.Values(known)) {
		if editDistanceAtMostOne(key, k) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func editDistanceAtMostOne(a, b string) bool {
	if a == b {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		// one substitution or one transposition
		if i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] {
			return true
		}
		return a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: (unmarshal errors:\n\s*)?(line \d+: )?`)

func cleanYAMLError(err error) string {
	return strings.TrimSpace(yamlLinePrefix.ReplaceAllString(err.Error(), ""))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "config"
	}
	return path
}
