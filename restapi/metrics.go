package restapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PatroniCollector exports Patroni 3.0.2's /metrics series
// (patroni-compat.md §2.4), each with the label scope, computed at scrape
// time from the snapshot the HA loop published, so existing dashboards and
// alerts keep working. It never queries PostgreSQL or etcd.
type PatroniCollector struct {
	server *Server
	scope  string
	descs  map[string]*prometheus.Desc
}

// patroniSeries are the 3.0.2 names with their help texts.
var patroniSeries = [][2]string{
	{"patroni_version", "Patroni-compatible agent version, zero-padded (e.g. 010000 for 1.0.0)."},
	{"patroni_postgres_running", "1 if PostgreSQL is running."},
	{"patroni_postmaster_start_time", "Epoch seconds of the postmaster start."},
	{"patroni_master", "1 if this node is the leader (primary)."},
	{"patroni_primary", "1 if this node is the leader (primary)."},
	{"patroni_xlog_location", "Current WAL location on the primary (bytes)."},
	{"patroni_xlog_received_location", "Received WAL location on a replica (bytes)."},
	{"patroni_xlog_replayed_location", "Replayed WAL location on a replica (bytes)."},
	{"patroni_xlog_replayed_timestamp", "Epoch seconds of the last replayed transaction."},
	{"patroni_xlog_paused", "1 if WAL replay is paused."},
	{"patroni_standby_leader", "1 if this node is a standby leader."},
	{"patroni_replica", "1 if this node is a running replica."},
	{"patroni_sync_standby", "1 if this node is a synchronous standby."},
	{"patroni_postgres_server_version", "PostgreSQL server_version_num."},
	{"patroni_cluster_unlocked", "1 if the cluster has no leader."},
	{"patroni_failsafe_mode_is_active", "1 if failsafe mode is active."},
	{"patroni_postgres_timeline", "PostgreSQL timeline."},
	{"patroni_dcs_last_seen", "Epoch seconds of the last successful etcd contact."},
	{"patroni_pending_restart", "1 if PostgreSQL needs a restart for a setting."},
	{"patroni_is_paused", "1 if the cluster is in maintenance mode."},
}

// NewPatroniCollector returns the collector for s; register it on the
// registry served at /metrics.
func NewPatroniCollector(s *Server, scope string) *PatroniCollector {
	c := &PatroniCollector{server: s, scope: scope, descs: map[string]*prometheus.Desc{}}
	for _, ser := range patroniSeries {
		c.descs[ser[0]] = prometheus.NewDesc(ser[0], ser[1], nil, prometheus.Labels{"scope": scope})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *PatroniCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PatroniCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.server.state.Load()
	if p == nil || p.snap == nil {
		return
	}
	for name, v := range c.values(p.snap, c.server.now()) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
}

func (c *PatroniCollector) values(snap *Snapshot, now time.Time) map[string]float64 {
	st := snap.Status
	running := st.State == "running"
	leader := now.Before(snap.LeaderUntil)
	// A standby leader holds the lock but is no primary (Patroni's gauges).
	standbyLeader := leader && snap.StandbyCluster
	primary := leader && !snap.StandbyCluster
	replica := running && st.Role == "replica"
	v := map[string]float64{
		"patroni_version":                 versionNumber(st.Patroni.Version),
		"patroni_postgres_running":        b2f(running),
		"patroni_master":                  b2f(primary),
		"patroni_primary":                 b2f(primary),
		"patroni_standby_leader":          b2f(standbyLeader),
		"patroni_replica":                 b2f(replica),
		"patroni_sync_standby":            b2f(st.SyncStandby),
		"patroni_postgres_server_version": float64(st.ServerVersion),
		"patroni_cluster_unlocked":        b2f(snap.Unlocked || !now.Before(snap.ViewFreshUntil)),
		"patroni_failsafe_mode_is_active": b2f(st.FailsafeModeIsActive),
		"patroni_postgres_timeline":       float64(st.Timeline),
		"patroni_dcs_last_seen":           float64(st.DCSLastSeen),
		"patroni_pending_restart":         b2f(st.PendingRestart),
		"patroni_is_paused":               b2f(snap.Paused),
		"patroni_postmaster_start_time":   epoch(st.PostmasterStartTime),
	}
	var loc, recv, replay, paused, replayedTS float64
	if x := st.XLog; x != nil {
		loc, recv, replay = ptrFloat(x.Location), ptrFloat(x.ReceivedLocation), ptrFloat(x.ReplayedLocation)
		if x.Paused != nil {
			paused = b2f(*x.Paused)
		}
		if x.ReplayedTimestamp != nil {
			replayedTS = epoch(*x.ReplayedTimestamp)
		}
	}
	v["patroni_xlog_location"], v["patroni_xlog_received_location"], v["patroni_xlog_replayed_location"] = loc, recv, replay
	v["patroni_xlog_paused"], v["patroni_xlog_replayed_timestamp"] = paused, replayedTS
	return v
}

// versionNumber turns "3.0.2" into 30002 (Patroni's zero-padded form).
func versionNumber(v string) float64 {
	parts := strings.SplitN(v, ".", 3)
	n := 0
	for i := 0; i < 3; i++ {
		d := 0
		if i < len(parts) {
			d, _ = strconv.Atoi(strings.TrimFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' }))
		}
		n = n*100 + d
	}
	return float64(n)
}

// epoch parses the status document's "2006-01-02 15:04:05.999999-07:00".
func epoch(s string) float64 {
	if s == "" {
		return 0
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999-07:00", s)
	if err != nil {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func ptrFloat(p *uint64) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
