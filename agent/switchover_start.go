package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

var _ restapi.Switchovers = (*Agent)(nil)

// maxSwitchoverRecords bounds the kept history of switchover records.
const maxSwitchoverRecords = 50

func refuse(status int, format string, args ...any) error {
	return &restapi.SwitchoverError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// StartSwitchover runs the pre-flight checks against a fresh read of the
// cluster and every member's status, then (unless a dry run) takes the
// switchover lock and writes the record. The leader's HA loop drives the
// rest (DESIGN §5); the caller only observes.
func (a *Agent) StartSwitchover(ctx context.Context, req restapi.SwitchoverRequest) (restapi.SwitchoverStarted, error) {
	began := time.Now().UTC()
	c, err := a.dcs.Load(ctx)
	if err != nil {
		return restapi.SwitchoverStarted{}, refuse(http.StatusServiceUnavailable, "cannot read the cluster from etcd: %v", err)
	}
	if id := runningSwitchoverID(c); id != "" {
		return restapi.SwitchoverStarted{}, &restapi.SwitchoverError{Status: http.StatusConflict, ID: id, Message: "switchover " + id + " is already running"}
	}
	leader := c.LeaderName()
	if leader == "" {
		return restapi.SwitchoverStarted{}, refuse(http.StatusPreconditionFailed, "the cluster has no leader: nothing to switch over from (POST /failover names a candidate)")
	}
	if req.To == leader {
		return restapi.SwitchoverStarted{}, refuse(http.StatusBadRequest, "%s is already the leader", leader)
	}
	dyn, _ := ParseDynamicConfig(configData(c))
	if dyn.Pause && req.To == "" {
		return restapi.SwitchoverStarted{}, refuse(http.StatusPreconditionFailed, "the cluster is paused: only a switchover to a named candidate is allowed")
	}
	verdicts, lags := a.preflight(ctx, c, dyn, leader, req.To)
	to, err := chooseCandidate(verdicts, lags, req.To)
	if err != nil {
		return restapi.SwitchoverStarted{}, err
	}
	if req.DryRun {
		return restapi.SwitchoverStarted{DryRun: true, From: leader, To: to, Candidates: verdicts}, nil
	}
	timeout := time.Duration(req.Timeout)
	if timeout == 0 {
		timeout = dyn.SwitchoverTimeout
	}
	r := &SwitchoverRecord{ID: newSwitchoverID(), From: leader, To: to, Reason: req.Reason, RequestedBy: req.RequestedBy,
		CreatedAt: began, Timeout: timeout.String(), State: StateRunning, PreflightLagBytes: lags[to]}
	r.Events = append(r.Events, SwitchoverEvent{Seq: 1, Stage: StagePreFlight, Kind: "started", At: began,
		Message: fmt.Sprintf("checking %s → %s", leader, candidateList(req.To, verdicts))})
	r.event(StagePreFlight, "completed", "%s", verdictSummary(verdicts, to))
	r.Stage = StagePreFlight
	if err := a.createSwitchover(ctx, r); err != nil {
		return restapi.SwitchoverStarted{}, err
	}
	a.log.Info("switchover requested", "switchover_id", r.ID, "from", leader, "to", to, "reason", req.Reason, "requested_by", req.RequestedBy)
	return restapi.SwitchoverStarted{ID: r.ID, Events: "/switchover/" + r.ID + "/events", From: leader, To: to}, nil
}

// createSwitchover takes the lock (CreateRevision == 0) and writes the record.
func (a *Agent) createSwitchover(ctx context.Context, r *SwitchoverRecord) error {
	keys := a.dcs.Keys()
	a.dropStaleLock(ctx)
	if _, err := a.dcs.CAS(ctx, keys.SwitchoverLock(), []byte(r.ID), 0); err != nil {
		if errors.Is(err, dcs.ErrConflict) {
			id := ""
			if v, ok, gerr := a.dcs.Get(ctx, keys.SwitchoverLock()); gerr == nil && ok {
				id = string(v.Data)
			}
			return &restapi.SwitchoverError{Status: http.StatusConflict, ID: id, Message: "switchover " + id + " is already running"}
		}
		return refuse(http.StatusServiceUnavailable, "cannot take the switchover lock: %v", err)
	}
	data, _ := json.Marshal(r)
	rev, err := a.dcs.CAS(ctx, keys.Switchover(r.ID), data, 0)
	if err != nil {
		_ = a.dcs.Delete(ctx, keys.SwitchoverLock(), 0)
		return refuse(http.StatusServiceUnavailable, "cannot write the switchover record: %v", err)
	}
	a.api.wrote(rev) // GET /switchover/<id> and its events read it from the view
	return nil
}

// dropStaleLock removes a lock whose record is finished or missing (a
// driver that crashed between closing the record and deleting the lock).
func (a *Agent) dropStaleLock(ctx context.Context) {
	keys := a.dcs.Keys()
	lock, ok, err := a.dcs.Get(ctx, keys.SwitchoverLock())
	if err != nil || !ok {
		return
	}
	r, _, err := a.readRecord(ctx, string(lock.Data))
	if err == nil && !r.Terminal() {
		return
	}
	if err != nil && !errors.Is(err, errRecordGone) {
		return
	}
	a.log.Warn("removing a stale switchover lock", "switchover_id", string(lock.Data))
	_ = a.dcs.Delete(ctx, keys.SwitchoverLock(), lock.ModRevision)
}

// runningSwitchoverID returns the lock holder when its record is still running.
func runningSwitchoverID(c *dcs.Cluster) string {
	if r := activeSwitchover(c); r != nil {
		return r.ID
	}
	return ""
}

// preflight checks every candidate (or the named one) against the leader:
// reachable, running in recovery, streaming from the leader, same
// timeline, lag within maximum_lag_on_failover, no nofailover tag, no
// failed watchdog. It returns each verdict and each candidate's lag.
func (a *Agent) preflight(ctx context.Context, c *dcs.Cluster, dyn DynamicConfig, leader, to string) ([]restapi.CandidateVerdict, map[string]int64) {
	members := map[string]dcs.Member{}
	for name, m := range c.Members {
		if name == leader || to == "" || name == to {
			members[name] = m
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*peerTimeout)
	defer cancel()
	status := map[string]PeerStatus{}
	for _, p := range a.peers.Fetch(fctx, members) {
		status[p.Name] = p
	}
	ls := status[leader]
	lags := map[string]int64{}
	var verdicts []restapi.CandidateVerdict
	names := c.MemberNames()
	if to != "" && !slices.Contains(names, to) {
		return []restapi.CandidateVerdict{{Member: to, Reasons: []string{"not a member of the cluster"}}}, lags
	}
	for _, name := range names {
		if name == leader || (to != "" && name != to) {
			continue
		}
		var reasons []string
		if c.Members[name].NoFailover() {
			reasons = append(reasons, "tag nofailover")
		}
		if dyn.SynchronousMode && c.Sync.Leader != "" && !c.Sync.Matches(name) {
			reasons = append(reasons, "not a synchronous standby")
		}
		p := status[name]
		switch {
		case !p.Reachable:
			reasons = append(reasons, "unreachable: "+p.Err)
		default:
			reasons = append(reasons, checkCandidate(p, ls, leader, dyn, lags)...)
		}
		verdicts = append(verdicts, restapi.CandidateVerdict{Member: name, OK: len(reasons) == 0, Reasons: reasons})
	}
	return verdicts, lags
}

func checkCandidate(p, leader PeerStatus, leaderName string, dyn DynamicConfig, lags map[string]int64) []string {
	var reasons []string
	if p.State != "running" {
		reasons = append(reasons, "PostgreSQL is "+p.State)
	}
	if !p.InRecovery {
		reasons = append(reasons, "running as a primary")
	}
	if p.WatchdogFailed {
		reasons = append(reasons, "watchdog failed")
	}
	if !leader.Reachable {
		return append(reasons, fmt.Sprintf("leader %s unreachable: %s", leaderName, leader.Err))
	}
	if !slices.Contains(leader.Streaming, p.Name) {
		reasons = append(reasons, "not streaming from "+leaderName)
	}
	if p.Timeline != leader.Timeline {
		reasons = append(reasons, fmt.Sprintf("timeline %d differs from the leader's %d", p.Timeline, leader.Timeline))
	}
	lag := int64(leader.WAL) - int64(p.WAL)
	lags[p.Name] = max(lag, 0)
	if lag > dyn.MaximumLagOnFailover {
		reasons = append(reasons, fmt.Sprintf("lag %s > %s", formatBytes(lag), formatBytes(dyn.MaximumLagOnFailover)))
	}
	return reasons
}

// chooseCandidate returns the named candidate if it passed, or the best
// passing one: least lag, then name; a 412 lists every rejection.
func chooseCandidate(verdicts []restapi.CandidateVerdict, lags map[string]int64, to string) (string, error) {
	var ok []string
	var rejected []restapi.CandidateVerdict
	for _, v := range verdicts {
		if v.OK {
			ok = append(ok, v.Member)
		} else {
			rejected = append(rejected, v)
		}
	}
	if len(ok) == 0 {
		msg := "no member qualifies as switchover candidate"
		if to != "" {
			msg = "candidate " + to + " does not qualify"
		}
		if len(verdicts) == 0 {
			msg = "the cluster has no member except the leader"
		}
		return "", &restapi.SwitchoverError{Status: http.StatusPreconditionFailed, Message: msg, Rejected: rejected}
	}
	sort.SliceStable(ok, func(i, j int) bool { return lags[ok[i]] < lags[ok[j]] })
	return ok[0], nil
}

func candidateList(to string, verdicts []restapi.CandidateVerdict) string {
	if to != "" {
		return to
	}
	var names []string
	for _, v := range verdicts {
		names = append(names, v.Member)
	}
	return "best of [" + strings.Join(names, ", ") + "]"
}

func verdictSummary(verdicts []restapi.CandidateVerdict, chosen string) string {
	parts := []string{"candidate " + chosen + " qualifies"}
	for _, v := range verdicts {
		if !v.OK {
			parts = append(parts, v.Member+" rejected: "+strings.Join(v.Reasons, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// Switchover returns one record from the cluster view.
func (a *Agent) Switchover(ctx context.Context, id string) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := c.Extra["switchovers/"+id]
	if !ok {
		return nil, restapi.ErrNotFound
	}
	return v.Data, nil
}

// ListSwitchovers returns the kept records from the view, newest first.
func (a *Agent) ListSwitchovers(ctx context.Context) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, err
	}
	ids := switchoverIDs(c)
	out := make([]json.RawMessage, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		out = append(out, c.Extra["switchovers/"+ids[i]].Data)
	}
	return json.Marshal(out)
}

func switchoverIDs(c *dcs.Cluster) []string {
	var ids []string
	for name := range c.Extra {
		if id, ok := strings.CutPrefix(name, "switchovers/"); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// AbortSwitchover asks the running switchover to stop; the old leader
// honours it before PROMOTE_STANDBY and restores itself as primary.
func (a *Agent) AbortSwitchover(ctx context.Context, id string) error {
	_, err := a.updateRecord(ctx, id, func(r *SwitchoverRecord) error {
		switch {
		case r.Terminal():
			return refuse(http.StatusConflict, "switchover %s is already %s", id, r.State)
		case r.pastPointOfNoReturn():
			return refuse(http.StatusConflict, "switchover %s is at %s: past PROMOTE_STANDBY it only goes forward", id, r.Stage)
		}
		r.AbortRequested = true
		r.event(r.Stage, "info", "abort requested")
		return nil
	})
	if errors.Is(err, errRecordGone) {
		return restapi.ErrNotFound
	}
	return err
}

// WatchSwitchover yields the record now and after each change, closing
// after the terminal version. It reads the watch-fed view: no etcd query
// per stream or per change.
func (a *Agent) WatchSwitchover(ctx context.Context, id string) (<-chan json.RawMessage, error) {
	fctx, fcancel := context.WithTimeout(ctx, restapi.DefaultBackendTimeout)
	first, err := a.Switchover(fctx, id)
	fcancel()
	if err != nil {
		return nil, err
	}
	changed, cancel := a.dcs.Subscribe()
	out := make(chan json.RawMessage, 1)
	go func() {
		defer close(out)
		defer cancel()
		last := first
		for {
			select {
			case out <- last:
			case <-ctx.Done():
				return
			}
			var r SwitchoverRecord
			if json.Unmarshal(last, &r) == nil && r.Terminal() {
				return
			}
			last = a.waitRecordChange(ctx, changed, id, last)
			if last == nil {
				return
			}
		}
	}()
	return out, nil
}

// waitRecordChange blocks until the cached record differs from prev.
func (a *Agent) waitRecordChange(ctx context.Context, changed <-chan struct{}, id string, prev json.RawMessage) json.RawMessage {
	for {
		if v := a.dcs.View(); v != nil {
			if cur, ok := v.Extra["switchovers/"+id]; ok && string(cur.Data) != string(prev) {
				return cur.Data
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
