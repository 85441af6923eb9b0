package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/regent-ha/regent/internal/testcluster"
)

// metricFamilies is one parsed /metrics scrape, by family name.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics reads n's GET /metrics and parses it as Prometheus does.
func scrapeMetrics(ctx context.Context, n *testcluster.Node) (metricFamilies, error) {
	code, body, err := n.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics on %s = %d", n.Name, code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GET /metrics on %s does not parse: %w", n.Name, err)
	}
	return mfs, nil
}

// scrapeAll scrapes every node, failing the test on any error.
func scrapeAll(t *testing.T, nodes []*testcluster.Node) map[string]metricFamilies {
	t.Helper()
	out := map[string]metricFamilies{}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		mfs, err := scrapeMetrics(ctx, n)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name] = mfs
	}
	return out
}

// find returns the sample of family name whose labels include want.
func (f metricFamilies) find(name string, want map[string]string) (*dto.Metric, error) {
	mf, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("%s missing", name)
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s%s missing", name, labelSelector(want))
}

// value is a gauge's, counter's or untyped sample's value.
func (f metricFamilies) value(name string, labels map[string]string) (float64, error) {
	m, err := f.find(name, labels)
	if err != nil {
		return 0, err
	}
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), nil
	case m.Counter != nil:
		return m.GetCounter().GetValue(), nil
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), nil
	}
	return 0, fmt.Errorf("%s%s is not a gauge or counter", name, labelSelector(labels))
}

// count is a histogram sample's observation count.
func (f metricFamilies) count(name string, labels map[string]string) (uint64, error) {
	m, err := f.find(name, labels)
	if err != nil {
		return 0, err
	}
	if m.Histogram == nil {
		return 0, fmt.Errorf("%s%s is not a histogram", name, labelSelector(labels))
	}
	return m.GetHistogram().GetSampleCount(), nil
}

// gaugeValue is value, failing the test when the sample is missing.
func gaugeValue(t *testing.T, f metricFamilies, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := f.value(name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// metricExpect collects metric mismatches for one node.
type metricExpect struct {
	node string
	f    metricFamilies
	errs []error
}

// expect records a mismatch unless the sample name{labels} exists and ok
// accepts its value; want says what ok wants, for the message.
func (e *metricExpect) expect(name string, labels map[string]string, want string, ok func(v float64) bool) {
	v, err := e.f.value(name, labels)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", e.node, err))
		return
	}
	if !ok(v) {
		e.errs = append(e.errs, fmt.Errorf("%s: %s%s = %v, want %s", e.node, name, labelSelector(labels), v, want))
	}
}

func (e *metricExpect) equal(name string, labels map[string]string, want float64) {
	e.expect(name, labels, fmt.Sprint(want), func(v float64) bool { return v == want })
}

func (e *metricExpect) atLeast(name string, labels map[string]string, want float64) {
	e.expect(name, labels, fmt.Sprintf("≥ %v", want), func(v float64) bool { return v >= want })
}

func (e *metricExpect) observed(name string, labels map[string]string) {
	n, err := e.f.count(name, labels)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", e.node, err))
		return
	}
	if n < 1 {
		e.errs = append(e.errs, fmt.Errorf("%s: %s_count%s = %d, want ≥ 1", e.node, name, labelSelector(labels), n))
	}
}

// labelSelector renders labels as PromQL does: {k="v",…}, nothing when empty.
func labelSelector(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// switchoverMetrics names the two sides of a completed switchover and the
// old leader's timeline before it.
type switchoverMetrics struct {
	newLeader, oldLeader *testcluster.Node
	timelineBefore       float64
}

// checkSwitchoverMetrics waits (the agents update their series once per
// tick) until both sides' /metrics show the switchover: roles swapped,
// both on the next timeline, and on the new leader — the member that
// closed the record — one completed switchover with every stage's
// duration and its write-unavailability observed.
func checkSwitchoverMetrics(t *testing.T, s switchoverMetrics) {
	t.Helper()
	tl := s.timelineBefore + 1
	testcluster.Poll(t, replicateTimeout, "/metrics reflecting the switchover", func(ctx context.Context) error {
		var errs []error
		for _, n := range []*testcluster.Node{s.newLeader, s.oldLeader} {
			f, err := scrapeMetrics(ctx, n)
			if err != nil {
				return err
			}
			e := &metricExpect{node: n.Name, f: f}
			leads := 0.0
			if n == s.newLeader {
				leads = 1
			}
			e.equal("regent_role", map[string]string{"role": "primary"}, leads)
			e.equal("regent_role", map[string]string{"role": "replica"}, 1-leads)
			e.equal("patroni_primary", nil, leads)
			e.equal("patroni_replica", nil, 1-leads)
			e.equal("regent_timeline", nil, tl)
			e.equal("patroni_postgres_timeline", nil, tl)
			if n == s.newLeader {
				e.atLeast("regent_lease_remaining_seconds", nil, 0.001)
				e.atLeast("regent_switchovers_total", map[string]string{"result": "completed"}, 1)
				for _, stage := range switchoverStages {
					e.observed("regent_switchover_stage_duration_seconds", map[string]string{"stage": stage})
				}
				e.observed("regent_write_unavailability_seconds", map[string]string{"event": "switchover"})
				bound := unavailabilityBound.Seconds()
				e.expect("regent_last_write_unavailability_seconds", map[string]string{"event": "switchover"}, fmt.Sprintf("in (0, %v]", bound), func(v float64) bool { return v > 0 && v <= bound })
			} else {
				e.equal("regent_lease_remaining_seconds", nil, 0)
			}
			errs = append(errs, e.errs...)
		}
		return errors.Join(errs...)
	})
}

// checkFailoverMetrics: the member that won the failover counted it, and
// measured its write unavailability.
func checkFailoverMetrics(t *testing.T, winner *testcluster.Node) {
	t.Helper()
	f := scrapeAll(t, []*testcluster.Node{winner})[winner.Name]
	e := &metricExpect{node: winner.Name, f: f}
	e.atLeast("regent_failovers_total", map[string]string{"result": "promoted"}, 1)
	e.observed("regent_write_unavailability_seconds", map[string]string{"event": "failover"})
	for _, err := range e.errs {
		t.Error(err)
	}
}
