package agent

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/buildinfo"
	"github.com/regent-ha/regent/internal/progress"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// publish hands the REST API its snapshot and writes the member key when
// it changed (the WAL position alone at most every memberRefresh).
func (a *Agent) publish(ctx context.Context) {
	pctx, cancel := a.ioContext(ctx)
	st, running := a.currentStatus(pctx)
	cancel()
	a.publishStatus(ctx, st, running)
}

// publishStatus publishes a PostgreSQL status the caller already holds.
func (a *Agent) publishStatus(ctx context.Context, st postgres.Status, running bool) {
	pctx, cancel := a.ioContext(ctx)
	defer cancel()
	snap := a.apiSnapshot(st, running)
	a.lastPublished = snap
	a.pub.Publish(snap)
	m := a.memberValue(st, running)
	if !a.memberWritten.due(m, a.dcs.Lease(), a.now()) {
		return
	}
	if a.dcs.Lease() == 0 {
		return
	}
	if err := a.dcs.PutMember(pctx, a.name, m); err != nil {
		a.log.Debug("cannot write the member key", "err", err)
		return
	}
	a.memberWritten = memberRecord{value: m, lease: a.dcs.Lease(), at: a.now()}
}

// currentStatus re-reads PostgreSQL after the act step changed it.
func (a *Agent) currentStatus(ctx context.Context) (postgres.Status, bool) {
	if a.pgState != PGRunning {
		return postgres.Status{}, false
	}
	st, err := a.pg.Status(ctx)
	if err != nil {
		return postgres.Status{}, false
	}
	return st, true
}

func (a *Agent) memberValue(st postgres.Status, running bool) dcs.Member {
	m := dcs.Member{
		ConnURL: fmt.Sprintf("postgres://%s/postgres", a.cfg.Postgres.ConnectAddress),
		APIURL:  a.cfg.RestAPI.APIURL(),
		State:   string(a.pgState),
		Role:    string(a.role),
		Version: buildinfo.Version,
		Tags:    a.cfg.Tags.Published(),
		Pause:   a.dyn.Pause,
		// Peers and regentctl list see a member that cannot apply the config.
		ConfigError: a.configErr,
		Failsafe:    a.memberFailsafe(a.now()),
	}
	if r := a.restartAt; r != nil {
		m.ScheduledRestart = r.published()
	}
	if a.nosync {
		m.Tags = maps.Clone(m.Tags)
		if m.Tags == nil {
			m.Tags = map[string]any{}
		}
		m.Tags["nosync"] = true
	}
	if a.pgState == PGCreatingReplica {
		m.Progress = wholePercent(a.pg.Progress())
	}
	if p := a.lastPlan; p.Election != nil && p.Action.Kind == ActWait {
		m.Decision = p.Reason
	}
	if running {
		wal := uint64(st.WALPosition())
		m.XLogLocation = &wal
		m.Timeline = int(st.Timeline)
		m.PendingRestart = st.PendingRestart
		m.Role = string(a.runningRole(st))
	}
	return m
}

// runningRole is the role a running server publishes: its status's, but
// standby_leader for the standby leader (Patroni's member keys and GET
// /patroni say so too).
func (a *Agent) runningRole(st postgres.Status) Role {
	if st.InRecovery && a.role == RoleStandbyLeader {
		return RoleStandbyLeader
	}
	return statusRole(st.InRecovery)
}

type memberRecord struct {
	value dcs.Member
	lease int64
	at    time.Time
}

// due: a new lease or any change but the WAL position writes at once; the
// WAL position alone waits for memberRefresh.
func (r memberRecord) due(m dcs.Member, lease int64, now time.Time) bool {
	if r.at.IsZero() || r.lease != lease {
		return true
	}
	a, b := r.value, m
	a.XLogLocation, b.XLogLocation = nil, nil
	if !reflect.DeepEqual(a, b) {
		return true
	}
	if !equalPtr(r.value.XLogLocation, m.XLogLocation) {
		return now.Sub(r.at) >= memberRefresh
	}
	return false
}

func equalPtr(a, b *uint64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// apiSnapshot converts the loop's state into what the REST API serves.
func (a *Agent) apiSnapshot(st postgres.Status, running bool) *restapi.Snapshot {
	now := a.now()
	view := a.dcs.View()
	lastContact := a.dcs.LastContact()
	s := &restapi.Snapshot{
		ViewFreshUntil: lastContact.Add(a.dyn.TTL),
		Paused:         a.dyn.Pause,
		LivenessUntil:  a.nextTick.Add(a.dyn.LoopWait).Add(a.livenessThreshold(running, st)),
	}
	if view != nil {
		s.Unlocked = view.Leader == nil
		s.Optime = view.Status.Optime
	}
	s.StandbyCluster = a.dyn.StandbyCluster.Active()
	if a.lease.leading && a.quiesce == nil && running && (!st.InRecovery || a.role == RoleStandbyLeader) {
		// A standby leader holds the lock as well: /standby-leader and
		// /leader 200, /primary 503 (StandbyCluster; it is in recovery).
		// Quiescing for a switchover turns /primary 503 at once, before
		// PostgreSQL stops, so routers drain first.
		s.LeaderUntil = a.lease.deadline()
	}
	doc := restapi.Status{
		State:   string(a.pgState),
		Role:    string(a.role),
		Tags:    maps.Clone(a.cfg.Tags.Published()),
		Patroni: restapi.Agent{Version: buildinfo.Version, Scope: a.cfg.Scope},
		Pause:   a.dyn.Pause,
		Regent:  &restapi.RegentStatus{Name: a.name, LastDecision: a.lastPlan.Reason, ConfigError: a.configErr},
	}
	if a.pgState == PGCreatingReplica {
		doc.Regent.Progress = a.pg.Progress()
	}
	if !lastContact.IsZero() {
		doc.DCSLastSeen = time.Now().Add(-now.Sub(lastContact)).Unix()
	}
	if a.lease.leading {
		// The REST server recomputes it per request from the deadline.
		doc.Regent.LeaseRemainingMs = max(0, a.lease.deadline().Sub(now).Milliseconds())
		s.LeaseDeadline = a.lease.deadline()
	}
	if running && st.InRecovery && a.dyn.SynchronousMode.Enabled() && view != nil && view.Sync.Matches(a.name) && view.Sync.Leader != a.name {
		doc.SyncStandby = true
	}
	if a.dyn.SynchronousMode.Enabled() {
		sync := &restapi.SyncStatus{Strict: a.dyn.SynchronousModeStrict, Degraded: a.lease.leading && a.syncDegraded}
		if view != nil {
			sync.Standbys = view.Sync.Standbys()
			if a.dyn.SynchronousMode.Quorum() {
				q := view.Sync.QuorumValue()
				sync.Quorum = &q
			}
		}
		doc.Regent.Synchronous = sync
	}
	fs := a.failsafeStatus(now)
	doc.FailsafeModeIsActive, doc.Regent.Failsafe = fs != nil, fs
	doc.Regent.EtcdError = a.fs.etcdErr.String()
	a.fs.active.Store(fs)
	a.fs.primary.Store(running && !st.InRecovery || a.lease.leading)
	wd := a.wd.Status()
	doc.WatchdogFailed = wd.Failed
	doc.Regent.Watchdog = watchdogDoc(wd, now)
	if running {
		fillPostgresStatus(&doc, st)
		doc.Role = string(a.runningRole(st))
	}
	s.Status = doc
	return s
}

// livenessThreshold is Patroni's: ttl on a running primary, 2·ttl otherwise.
func (a *Agent) livenessThreshold(running bool, st postgres.Status) time.Duration {
	if running && !st.InRecovery {
		return a.dyn.TTL
	}
	return 2 * a.dyn.TTL
}

func fillPostgresStatus(doc *restapi.Status, st postgres.Status) {
	doc.ServerVersion = st.ServerVersion
	doc.Timeline = int(st.Timeline)
	doc.PendingRestart = st.PendingRestart
	if !st.PostmasterStart.IsZero() {
		doc.PostmasterStartTime = st.PostmasterStart.Format("2006-01-02 15:04:05.999999-07:00")
	}
	if st.SystemID != 0 {
		doc.DatabaseSystemIdentifier = strconv.FormatUint(st.SystemID, 10)
	}
	if st.InRecovery {
		doc.Role = string(RoleReplica)
		recv, replay := uint64(st.ReceiveLSN), uint64(st.ReplayLSN)
		if recv == 0 {
			recv = replay
		}
		paused := st.ReplayPaused
		x := &restapi.XLog{ReceivedLocation: &recv, ReplayedLocation: &replay, Paused: &paused}
		if !st.ReplayedAt.IsZero() {
			ts := st.ReplayedAt.Format("2006-01-02 15:04:05.999999-07:00")
			x.ReplayedTimestamp = &ts
		}
		doc.XLog = x
	} else {
		doc.Role = string(RolePrimary)
		loc := uint64(st.CurrentLSN)
		doc.XLog = &restapi.XLog{Location: &loc}
	}
	for _, r := range st.Replication {
		doc.Replication = append(doc.Replication, restapi.Replication{
			Usename: r.Usename, ApplicationName: r.ApplicationName, ClientAddr: r.ClientAddr,
			State: r.State, SyncState: r.SyncState, SyncPriority: r.SyncPriority,
		})
	}
}

func watchdogDoc(st fencing.Status, now time.Time) *restapi.WatchdogStatus {
	d := &restapi.WatchdogStatus{Mode: string(st.Mode), Armed: st.Armed, TimeoutSeconds: int(st.Timeout.Seconds()), Failed: st.Failed, Reason: st.Reason}
	if !st.LastKeepalive.IsZero() {
		age := now.Sub(st.LastKeepalive).Milliseconds()
		d.LastKeepaliveAgeMs = &age
	}
	return d
}

// observeMetrics updates the gauges from the state this tick published.
func (a *Agent) observeMetrics(took time.Duration) {
	if a.metrics == nil {
		return
	}
	var lag int64
	timeline := 0
	if s := a.lastPublished; s != nil {
		timeline = s.Status.Timeline
		if x := s.Status.XLog; x != nil && x.ReplayedLocation != nil && s.Optime > *x.ReplayedLocation {
			lag = int64(s.Optime - *x.ReplayedLocation)
		}
	}
	a.metrics.observeTick(a, took, lag, timeline)
}

// wholePercent rounds the done bytes down to the whole percent and the
// time left up to the minute, so the member key changes (and is written)
// about once per percent, not every tick.
func wholePercent(p *progress.Progress) *progress.Progress {
	if p == nil || p.TotalBytes <= 0 {
		return p
	}
	r := *p
	r.DoneBytes = int64(p.Percent()) * p.TotalBytes / 100
	r.SecondsLeft = (p.SecondsLeft + 59) / 60 * 60
	return &r
}
