package examples_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestGrafanaDashboardQueriesOnlyExportedSeries: the dashboard is valid
// JSON, and every metric name in every query (each "expr", and the
// metric of each label_values() variable) is a series Regent exports. It
// also covers the series an operator needs (the list) and every
// regent_* series, so a new one gets a panel.
func TestGrafanaDashboardQueriesOnlyExportedSeries(t *testing.T) {
	var dash map[string]any
	if err := json.Unmarshal(readExample(t, "grafana/regent.json"), &dash); err != nil {
		t.Fatalf("grafana/regent.json: %v", err)
	}
	if dash["title"] == "" || dash["uid"] == "" {
		t.Errorf("dashboard without title or uid")
	}
	exprs := collectQueries(dash)
	if len(exprs) < 20 {
		t.Fatalf("found only %d queries in the dashboard: %q", len(exprs), exprs)
	}
	known := map[string]bool{}
	for _, s := range exportedSeries(t) {
		for _, n := range s.sampleNames() {
			known[n] = true
		}
	}
	queried := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("query %q names no metric", e)
		}
		for _, n := range names {
			queried[n] = true
			if !known[n] {
				t.Errorf("query %q uses %s, which Regent does not export", e, n)
			}
		}
	}
	want := []string{
		"regent_role", "regent_lease_remaining_seconds", "regent_replication_lag_bytes", "regent_timeline",
		"regent_watchdog_armed", "regent_ha_tick_duration_seconds", "regent_ha_last_tick_timestamp_seconds",
		"regent_failovers_total", "regent_switchovers_total", "regent_switchover_stage_duration_seconds",
		"regent_write_unavailability_seconds", "patroni_postgres_timeline", "patroni_primary",
	}
	want = append(want, sortedNames(exportedSeries(t), "regent")...)
	slices.Sort(want)
	for _, name := range slices.Compact(want) {
		if !queriedFamily(queried, name) {
			t.Errorf("the dashboard has no panel querying %s", name)
		}
	}
}

// queriedFamily reports whether a query used the family name, directly or
// through its _bucket, _sum or _count samples.
func queriedFamily(queried map[string]bool, name string) bool {
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if queried[name+suffix] {
			return true
		}
	}
	return false
}

// collectQueries returns every "expr" string in the dashboard (panels,
// rows' nested panels, any depth) and the metric selector of every
// label_values(<selector>, <label>) variable query.
func collectQueries(v any) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok {
				switch {
				case k == "expr":
					out = append(out, s)
				case (k == "query" || k == "definition") && strings.HasPrefix(s, "label_values("):
					if sel := labelValuesSelector(s); sel != "" {
						out = append(out, sel)
					}
				}
				continue
			}
			out = append(out, collectQueries(e)...)
		}
	case []any:
		for _, e := range t {
			out = append(out, collectQueries(e)...)
		}
	}
	return out
}

// labelValuesSelector returns <selector> of "label_values(<selector>, label)".
func labelValuesSelector(q string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "" // label_values(label): no metric
	}
	return strings.TrimSpace(inner[:i])
}

var (
	promString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	grafanaVar   = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// promKeywords are identifiers of PromQL that are not metric names.
var promKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring", "group_left", "group_right", "le"}

// metricNames extracts the metric names a PromQL query selects: it drops
// strings, label matchers, ranges, groupings and Grafana variables, then
// keeps the identifiers that are neither function calls nor keywords.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promKeywords, strings.ToLower(id)) {
			continue
		}
		names = append(names, id)
	}
	return names
}

// TestMetricNames guards the extractor on the query shapes the dashboard uses.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`regent_role{job="$job",role="primary"} == 1`: {"regent_role"},
		`histogram_quantile(0.99, sum by (le, instance) (rate(regent_ha_tick_duration_seconds_bucket{job="$job"}[$__rate_interval])))`: {"regent_ha_tick_duration_seconds_bucket"},
		`time() - patroni_dcs_last_seen{scope=~"$scope"}`:                                     {"patroni_dcs_last_seen"},
		`sum by (stage) (increase(a_sum[$__range])) / sum by (stage) (increase(a_count[5m]))`: {"a_sum", "a_count"},
		`(time() - x{a="b"}) and x > 0 or on(instance) y * 1e3`:                               {"x", "x", "y"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
