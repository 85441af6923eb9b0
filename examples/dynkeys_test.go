package examples_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/config"
)

// patroniDynamicKeys are the top-level keys of Patroni 3.0.2's dynamic
// configuration (patroni-compat.md §1.3.3, aliases included): a cluster
// moved from Patroni may hold any of them in its config key or in
// bootstrap.dcs.
var patroniDynamicKeys = []string{
	"ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover", "maximum_lag_on_syncnode",
	"max_timelines_history", "check_timeline", "primary_start_timeout", "master_start_timeout",
	"primary_stop_timeout", "master_stop_timeout", "synchronous_mode", "synchronous_mode_strict",
	"synchronous_node_count", "failsafe_mode", "pause", "postgresql", "standby_cluster", "slots",
	"permanent_slots", "permanent_replication_slots", "ignore_slots",
}

// patroniPostgresqlKeys are the keys of Patroni's dynamic `postgresql`
// section besides parameters.
var patroniPostgresqlKeys = []string{"use_pg_rewind", "use_slots", "pg_hba", "pg_ident", "recovery_conf",
	"remove_data_directory_on_rewind_failure", "remove_data_directory_on_diverged_timelines"}

// codeSpan is a Markdown inline code span's text.
var codeSpan = regexp.MustCompile("`([^`]+)`")

// TestDynamicKeysDocumented: docs/operations.md lists exactly the dynamic
// keys Regent acts on where it explains the config key (§2), names only
// keys Regent reads where it lists what carries over from Patroni (§7),
// and names every Patroni key Regent does not implement (§7 "What does
// not"); each listed key really is read (a bad value for it fails
// config.ParseDynamic), and every other Patroni key — top-level or under
// postgresql — is refused by name ("not supported yet") in bootstrap.dcs
// and in edits unless off, never accepted and ignored, as
// examples/regent.yml says.
func TestDynamicKeysDocumented(t *testing.T) {
	doc := string(readExample(t, "../docs/operations.md"))
	sections := markdownSections(doc)
	acted := dynamicKeys(t)
	for _, k := range acted {
		if !dynamicReads(k) {
			t.Errorf("%s: the agent does not read it (a bad value is not refused); fix dynamicKeys", k)
		}
	}

	configured := spanKeys(between(t, sections["## 2. Configure"], "**Cluster-wide** ones in etcd's `config` key (", "; each is described"))
	want := slices.DeleteFunc(slices.Clone(acted), func(k string) bool { return k == "postgresql" })
	if !slices.Equal(configured, want) {
		t.Errorf("docs/operations.md §2 lists the dynamic keys\n  %v\nRegent acts on\n  %v", configured, want)
	}

	carried := spanKeys(between(t, sections["### What carries over"], "**The dynamic configuration**", "in the same `config` key"))
	if len(carried) < 10 {
		t.Fatalf("only %d keys found in §7's dynamic configuration: the markers no longer match", len(carried))
	}
	for _, k := range carried {
		if !dynamicReads(k) {
			t.Errorf("docs/operations.md §7 says %s carries over from Patroni, but the agent does not read it", k)
		}
	}

	notCarried := map[string]bool{}
	for _, k := range spanKeys(sections["### What does not"]) {
		notCarried[k] = true
	}
	notRead := slices.DeleteFunc(slices.Clone(patroniDynamicKeys), dynamicReads)
	for _, k := range patroniPostgresqlKeys {
		notRead = append(notRead, "postgresql."+k)
	}
	for _, k := range notRead {
		// A value that is no feature's "off": a list of a string.
		doc := map[string]any{}
		parent, leaf, nested := strings.Cut(k, ".")
		if nested {
			doc[parent] = map[string]any{leaf: []any{"not a value"}}
		} else {
			doc[k] = []any{"not a value"}
		}
		cfg := config.Config{Bootstrap: config.Bootstrap{DCS: doc}}
		_, strictErr := cfg.BootstrapDynamic()
		if strictErr == nil || !strings.Contains(strictErr.Error(), k+": not supported yet") {
			t.Errorf("bootstrap.dcs with Patroni's %s set: %v; want it refused by name (\"%s: not supported yet\")", k, strictErr, k)
		}
		if !notCarried[k] {
			t.Errorf("Regent refuses Patroni's %s; docs/operations.md §7 \"What does not\" does not name it", k)
		}
	}
}

// between returns the text of s from the first start to the next end.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, start)
	text, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("no %q … %q in the section: the markers no longer match", start, end)
	}
	return text
}

// spanKeys are the sorted distinct code spans of text that look like
// config keys (lower-case words and dots).
func spanKeys(text string) []string {
	var keys []string
	for _, m := range codeSpan.FindAllStringSubmatch(text, -1) {
		if configKey.MatchString(m[1]) && !slices.Contains(keys, m[1]) {
			keys = append(keys, m[1])
		}
	}
	slices.Sort(keys)
	return keys
}

var configKey = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*$`)

// dynamicReads reports whether the agent reads the dynamic config key at
// the dotted path: set to a value no key accepts, it makes
// config.ParseDynamic fail, where a key Regent ignores passes.
func dynamicReads(key string) bool {
	var doc any = []any{"not a value"}
	parts := strings.Split(key, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		doc = map[string]any{parts[i]: doc}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return false
	}
	_, err = config.ParseDynamic(raw)
	return err != nil
}
