package config

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestNormalizeYAML: mappings with keys that are not strings (YAML reads
// them as map[any]any), nested in mappings and lists, come out with string
// keys, so that the value encodes as JSON; scalars are kept as they are.
func TestNormalizeYAML(t *testing.T) {
	var v any
	doc := "ttl: 30\npostgresql:\n  parameters: {max_connections: 100}\nslots:\n  - {1: a, true: b}\n"
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(v); err == nil {
		t.Fatal("the test document encodes as JSON without normalizing: it tests nothing")
	}
	got, err := json.Marshal(NormalizeYAML(v))
	if err != nil {
		t.Fatalf("normalized value does not encode: %v", err)
	}
	const want = `{"postgresql":{"parameters":{"max_connections":100}},"slots":[{"1":"a","true":"b"}],"ttl":30}`
	if string(got) != want {
		t.Errorf("NormalizeYAML = %s, want %s", got, want)
	}
}
