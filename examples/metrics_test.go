package examples_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/regent-ha/regent/agent"
	"github.com/regent-ha/regent/restapi"
)

// series is one metric family a Regent agent serves at /metrics.
type series struct {
	name   string
	kind   string // counter, gauge, histogram, summary, untyped
	origin string // regent, patroni, go, process
}

// sampleNames are the names a query may use for the family: the name
// itself, and for histograms and summaries their _bucket/_sum/_count.
func (s series) sampleNames() []string {
	switch s.kind {
	case "histogram":
		return []string{s.name, s.name + "_bucket", s.name + "_sum", s.name + "_count"}
	case "summary":
		return []string{s.name, s.name + "_sum", s.name + "_count"}
	}
	return []string{s.name}
}

// recordingRegisterer remembers what agent.NewMetrics registers, so that
// families without samples yet (a CounterVec before its first Inc) are
// known too: a registry's Gather omits them.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// fqName reads a Desc's name: the only accessor client_golang offers is
// its String form, Desc{fqName: "…", …}.
var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// descNames returns the names c describes.
func descNames(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	var names []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names = append(names, m[1])
	}
	return names
}

// kindOf names the metric type of a collector agent.NewMetrics registers.
func kindOf(c prometheus.Collector) string {
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		return "histogram"
	case prometheus.Summary, *prometheus.SummaryVec:
		return "summary"
	case prometheus.Counter, *prometheus.CounterVec:
		return "counter"
	case prometheus.Gauge, *prometheus.GaugeVec:
		return "gauge"
	}
	return "untyped"
}

// exportedSeries returns every family a Regent agent serves at /metrics,
// registered as cmd/regent does: agent.NewMetrics (regent_*), the restapi
// Patroni collector (patroni_*), and the Go and process collectors.
func exportedSeries(t *testing.T) map[string]series {
	t.Helper()
	out := map[string]series{}
	add := func(s series) {
		if prev, dup := out[s.name]; dup {
			t.Fatalf("series %s exported twice (%s and %s)", s.name, prev.origin, s.origin)
		}
		out[s.name] = s
	}
	rec := &recordingRegisterer{Registerer: prometheus.NewRegistry()}
	agent.NewMetrics(rec)
	for _, c := range rec.collectors {
		for _, name := range descNames(t, c) {
			add(series{name: name, kind: kindOf(c), origin: "regent"})
		}
	}
	// The Patroni collector describes its series without a server; it
	// only reads one when collecting.
	for _, name := range descNames(t, restapi.NewPatroniCollector(nil, "demo")) {
		add(series{name: name, kind: "gauge", origin: "patroni"})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather go/process collectors: %v", err)
	}
	for _, mf := range mfs {
		origin := "go"
		if strings.HasPrefix(mf.GetName(), "process_") {
			origin = "process"
		}
		add(series{name: mf.GetName(), kind: strings.ToLower(dto.MetricType_name[int32(mf.GetType())]), origin: origin})
	}
	return out
}

// TestExportedSeriesFound guards exportedSeries itself: it must see the
// series the other tests depend on, with their types.
func TestExportedSeriesFound(t *testing.T) {
	all := exportedSeries(t)
	for name, kind := range map[string]string{
		"regent_role": "gauge", "regent_failovers_total": "counter",
		"regent_switchover_stage_duration_seconds": "histogram", "patroni_primary": "gauge",
		"process_resident_memory_bytes": "gauge",
	} {
		if got := all[name].kind; got != kind {
			t.Errorf("%s: kind %q, want %q", name, got, kind)
		}
	}
}

// sortedNames returns the names of the families of origin, sorted.
func sortedNames(all map[string]series, origins ...string) []string {
	var names []string
	for _, s := range all {
		for _, o := range origins {
			if s.origin == o {
				names = append(names, s.name)
			}
		}
	}
	sort.Strings(names)
	return names
}
