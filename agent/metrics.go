package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

// Metrics are the HA loop's Prometheus series, registered on an injected
// Registerer (no global state). Names start with regent_.
type Metrics struct {
	role              *prometheus.GaugeVec
	leaseRemaining    prometheus.Gauge
	lagBytes          prometheus.Gauge
	timeline          prometheus.Gauge
	watchdogArmed     prometheus.Gauge
	watchdogFailed    prometheus.Gauge
	tickDuration      prometheus.Histogram
	lastTick          prometheus.Gauge
	failovers         *prometheus.CounterVec
	switchovers       *prometheus.CounterVec
	stageDuration     *prometheus.HistogramVec
	writeUnavailable  *prometheus.HistogramVec
	lastUnavailable   *prometheus.GaugeVec
	syncDegraded      prometheus.Gauge
	decisionsRecorded *prometheus.CounterVec
	configError       prometheus.Gauge
	failoverPhase     *prometheus.HistogramVec
	etcdError         *prometheus.GaugeVec
	creationBytes     *prometheus.GaugeVec
}

// NewMetrics creates and registers the agent's series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_role",
			Help: "1 for this member's current role (primary, replica, standby_leader, demoted, uninitialized), 0 for the others."}, []string{"role"}),
		leaseRemaining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_lease_remaining_seconds",
			Help: "How long this leader may still serve writes before fencing itself (0 when not leading)."}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_replication_lag_bytes",
			Help: "Bytes behind the leader's last published WAL position (replicas)."}),
		timeline: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_timeline", Help: "PostgreSQL timeline."}),
		watchdogArmed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_watchdog_armed",
			Help: "1 while the hardware watchdog is armed."}),
		watchdogFailed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_watchdog_failed",
			Help: "1 when the watchdog is required but unusable."}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "regent_ha_tick_duration_seconds",
			Help: "Duration of one HA loop pass.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		lastTick: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_ha_last_tick_timestamp_seconds",
			Help: "Unix time of the last completed HA loop pass."}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_failovers_total",
			Help: "Automatic failover outcomes seen by this member (result: promoted, stood_down, fence_failed)."}, []string{"result"}),
		switchovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_switchovers_total",
			Help: "Switchovers this member finished, by result (completed, failed, aborted)."}, []string{"result"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "regent_switchover_stage_duration_seconds",
			Help: "Duration of each switchover stage.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60}}, []string{"stage"}),
		writeUnavailable: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "regent_write_unavailability_seconds",
			Help:    "Write unavailability measured by the agents: failover = leader last seen → promoted; switchover = /primary 503 → new primary promoted.",
			Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 20, 30, 60}}, []string{"event"}),
		lastUnavailable: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_last_write_unavailability_seconds",
			Help: "Write unavailability of the last failover or switchover this member promoted in."}, []string{"event"}),
		syncDegraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_synchronous_degraded",
			Help: "1 when synchronous mode (non-strict) runs asynchronously for want of a synchronous standby."}),
		decisionsRecorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_decisions_total",
			Help: "Automatic decisions recorded, by kind."}, []string{"kind"}),
		configError: prometheus.NewGauge(prometheus.GaugeOpts{Name: "regent_config_error",
			Help: "1 while this member cannot apply part of the cluster's dynamic config (GET /patroni regent.config_error says what)."}),
		failoverPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "regent_failover_phase_seconds",
			Help:    "Duration of each phase of the failovers this member won (detect, suspect_agree, fence, elect, promote, first_write).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60}}, []string{"phase"}),
		etcdError: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_etcd_error",
			Help: "1 for the class of the last failed etcd renewal (unreachable, timeout, no_leader, auth, compare_failed, lease_lost, other), 0 for the others; all 0 while etcd answers."}, []string{"class"}),
		creationBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_replica_creation_bytes",
			Help: "Progress of the replica being created (done, total bytes; 0 when none is or the method does not report it)."}, []string{"kind"}),
	}
	reg.MustRegister(m.etcdError, m.role, m.leaseRemaining, m.lagBytes, m.timeline, m.watchdogArmed, m.watchdogFailed,
		m.tickDuration, m.lastTick, m.failovers, m.switchovers, m.stageDuration, m.writeUnavailable,
		m.lastUnavailable, m.syncDegraded, m.decisionsRecorded, m.configError, m.failoverPhase, m.creationBytes)
	for _, r := range Roles {
		m.role.WithLabelValues(string(r))
	}
	for _, c := range dcs.ErrorClasses() {
		m.etcdError.WithLabelValues(c.String())
	}
	return m
}

// observeTick records one loop pass and the state it published.
func (m *Metrics) observeTick(a *Agent, took time.Duration, lag int64, timeline int) {
	if m == nil {
		return
	}
	m.tickDuration.Observe(took.Seconds())
	m.lastTick.Set(float64(time.Now().UnixNano()) / 1e9)
	for _, r := range Roles {
		v := 0.0
		if r == a.role {
			v = 1
		}
		m.role.WithLabelValues(string(r)).Set(v)
	}
	remaining := 0.0
	if a.lease.leading {
		remaining = max(0, a.lease.deadline().Sub(a.now()).Seconds())
	}
	m.leaseRemaining.Set(remaining)
	m.lagBytes.Set(float64(lag))
	m.timeline.Set(float64(timeline))
	st := a.wd.Status()
	m.watchdogArmed.Set(b2f(st.Armed))
	m.watchdogFailed.Set(b2f(st.Failed))
	m.syncDegraded.Set(b2f(a.syncDegraded))
	m.configError.Set(b2f(a.configErr != ""))
	for _, c := range dcs.ErrorClasses() {
		m.etcdError.WithLabelValues(c.String()).Set(b2f(c == a.fs.etcdErr))
	}
	var done, total int64
	if p := a.pg.Progress(); p != nil {
		done, total = p.DoneBytes, p.TotalBytes
	}
	m.creationBytes.WithLabelValues("done").Set(float64(done))
	m.creationBytes.WithLabelValues("total").Set(float64(total))
}

func (m *Metrics) decision(kind string) {
	if m == nil {
		return
	}
	m.decisionsRecorded.WithLabelValues(kind).Inc()
	switch kind {
	case "failover":
		m.failovers.WithLabelValues("promoted").Inc()
	case "stood_down", "fence_failed":
		m.failovers.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) unavailable(event string, d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.writeUnavailable.WithLabelValues(event).Observe(d.Seconds())
	m.lastUnavailable.WithLabelValues(event).Set(d.Seconds())
}

// failoverPhases records the RTO budget of a failover this member won.
func (m *Metrics) failoverPhases(phases []restapi.PhaseRecord) {
	if m == nil {
		return
	}
	for _, p := range phases {
		m.failoverPhase.WithLabelValues(p.Phase).Observe(float64(p.Ms) / 1000)
	}
}

// switchoverFinished records a closed switchover and its stage durations.
func (m *Metrics) switchoverFinished(r *switchover.Record) {
	if m == nil {
		return
	}
	m.switchovers.WithLabelValues(string(r.State)).Inc()
	for _, e := range r.Events {
		if e.Kind == switchover.KindCompleted {
			m.stageDuration.WithLabelValues(string(e.Stage)).Observe(float64(e.DurationMs) / 1000)
		}
	}
	quiesced, ok1 := r.StartedAt(switchover.StageQuiesce)
	promoted, ok2 := r.CompletedAt(switchover.StagePromote)
	if ok1 && ok2 && !r.Standby {
		// A standby cluster takes no writes: nothing was unavailable.
		m.unavailable("switchover", promoted.Sub(quiesced))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
