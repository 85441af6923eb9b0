package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkOutput validates an -o value against the formats a command offers.
func checkOutput(value string, allowed ...string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return usagef("--output %q: want %s", value, strings.Join(allowed, ", "))
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printYAML writes v as block YAML with the keys and order of its JSON
// form (the json tags), so -o yaml and -o json show the same document.
func printYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	out, err := jsonToYAML(data)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// jsonToYAML re-encodes a JSON document as block-style YAML, keeping its
// key order. (JSON is YAML: the node tree only loses its flow style.)
func jsonToYAML(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("re-encode as YAML: %w", err)
	}
	blockStyle(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("re-encode as YAML: %w", err)
	}
	return b.Bytes(), enc.Close()
}

func blockStyle(n *yaml.Node) {
	n.Style = 0 // the encoder quotes scalars that need it
	for _, c := range n.Content {
		blockStyle(c)
	}
}
