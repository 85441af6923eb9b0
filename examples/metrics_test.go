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
// A vector's concrete type says it; a plain metric is asked (Write fills
// the field of its type), because a type switch on the interfaces cannot
// tell them apart: a Gauge has every method of a Counter, and a Histogram
// and a Summary have the same method set.
func kindOf(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	switch c.(type) {
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	}
	m, ok := c.(prometheus.Metric)
	if !ok {
		return "untyped"
	}
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatalf("write %s: %v", m.Desc(), err)
	}
	switch {
	case d.Histogram != nil:
		return "histogram"
	case d.Summary != nil:
		return "summary"
	case d.Counter != nil:
		return "counter"
	case d.Gauge != nil:
		return "gauge"
	}
	return "untyped"
}

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
			add(series{name: name, kind: kindOf(t, c), origin: "regent"})
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
		// Plain (not vector) metrics: kindOf asks these, not the type switch.
		"regent_timeline": "gauge", "regent_ha_tick_duration_seconds": "histogram",
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
