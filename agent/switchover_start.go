package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

var _ restapi.Switchovers = (*Agent)(nil)

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
	if id := switchover.ActiveID(c); id != "" {
		return restapi.SwitchoverStarted{}, &restapi.SwitchoverError{Status: http.StatusConflict, ID: id, Message: "switchover " + id + " is already running"}
	}
	leader := c.LeaderName()
	if leader == "" {
		return restapi.SwitchoverStarted{}, refuse(http.StatusPreconditionFailed, "the cluster has no leader: nothing to switch over from (POST /failover names a candidate)")
	}
	if req.To == leader {
		return restapi.SwitchoverStarted{}, refuse(http.StatusBadRequest, "%s is already the leader", leader)
	}
	dyn, _ := config.ParseDynamic(configData(c))
	if dyn.Pause && req.To == "" {
		return restapi.SwitchoverStarted{}, refuse(http.StatusPreconditionFailed, "the cluster is paused: only a switchover to a named candidate is allowed")
	}
	verdicts, lags := a.preflight(ctx, c, dyn, leader, req.To)
	to, err := switchover.ChooseCandidate(verdicts, lags, req.To)
	if nc, ok := errors.AsType[*switchover.NoCandidateError](err); ok {
		return restapi.SwitchoverStarted{}, &restapi.SwitchoverError{Status: http.StatusPreconditionFailed, Message: nc.Message, Rejected: restVerdicts(nc.Rejected)}
	} else if err != nil {
		return restapi.SwitchoverStarted{}, err
	}
	if req.DryRun {
		return restapi.SwitchoverStarted{DryRun: true, From: leader, To: to, Candidates: restVerdicts(verdicts)}, nil
	}
	timeout := time.Duration(req.Timeout)
	if timeout == 0 {
		timeout = dyn.SwitchoverTimeout
	}
	r := &switchover.Record{ID: switchover.NewID(time.Now()), From: leader, To: to, Reason: req.Reason, RequestedBy: req.RequestedBy,
		CreatedAt: began, Timeout: timeout.String(), State: switchover.StateRunning, PreflightLagBytes: lags[to],
		// In a standby cluster the same stages hand the standby leader's
		// key over; nobody leaves recovery (switchover/standby.go).
		Standby: dyn.StandbyCluster.Active()}
	r.AppendAt(began, switchover.StagePreFlight, switchover.KindStarted, "checking %s → %s", leader, switchover.CandidateList(req.To, verdicts))
	r.Append(switchover.StagePreFlight, switchover.KindCompleted, "%s", switchover.VerdictSummary(verdicts, to))
	if err := a.createSwitchover(ctx, r); err != nil {
		return restapi.SwitchoverStarted{}, err
	}
	a.log.Info("switchover requested", "switchover_id", r.ID, "from", leader, "to", to, "reason", req.Reason, "requested_by", req.RequestedBy)
	return restapi.SwitchoverStarted{ID: r.ID, Events: "/switchover/" + r.ID + "/events", From: leader, To: to}, nil
}

// createSwitchover takes the lock (CreateRevision == 0) and writes the record.
func (a *Agent) createSwitchover(ctx context.Context, r *switchover.Record) error {
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
	rev, err := switchover.Create(ctx, a.records(), r)
	if err != nil {
		_ = a.dcs.Delete(ctx, keys.SwitchoverLock(), 0)
		return refuse(http.StatusServiceUnavailable, "cannot write the switchover record: %v", err)
	}
	a.api.wrote(rev) // GET /switchover/<id> and its events read it from the view
	return nil
}

// dropStaleLock removes a lock whose record is finished (a driver that
// crashed between closing the record and deleting the lock), by the
// leader's verdict (switchover.LockVerdict) on fresh reads. A lock
// without a record stays: it may be a start between its two writes; the
// leader removes it after switchover.StaleLockGrace.
func (a *Agent) dropStaleLock(ctx context.Context) {
	keys := a.dcs.Keys()
	lock, ok, err := a.dcs.Get(ctx, keys.SwitchoverLock())
	if err != nil || !ok {
		return
	}
	l := switchover.Lock{ID: string(lock.Data), Rev: lock.ModRevision}
	var rerr error
	l.Record, _, l.HasRecord, rerr = a.records().Get(ctx, l.ID)
	if rerr != nil {
		return
	}
	if remove, _ := switchover.LockVerdict(l, switchover.StaleLock{}, a.now()); !remove {
		return
	}
	a.log.Warn("removing a stale switchover lock", "switchover_id", l.ID)
	_ = a.dcs.Delete(ctx, keys.SwitchoverLock(), lock.ModRevision)
}

// preflight fetches the status of the leader and the candidates (or the
// named one) and runs the pre-flight checks (switchover.Preflight) on
// them: reachable, running in recovery, streaming from the leader, same
// timeline, lag within maximum_lag_on_failover, no nofailover tag, no
// failed watchdog. It returns each verdict and each candidate's lag.
func (a *Agent) preflight(ctx context.Context, c *dcs.Cluster, dyn config.Dynamic, leader, to string) ([]switchover.Verdict, map[string]int64) {
	members := map[string]dcs.Member{}
	for name, m := range c.Members {
		if name == leader || to == "" || name == to {
			members[name] = m
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*peerTimeout)
	defer cancel()
	peers := map[string]switchover.Peer{}
	for _, p := range a.peers.Fetch(fctx, members) {
		peers[p.Name] = switchoverPeer(p)
	}
	return switchover.Preflight(c, peers, switchover.Policy{MaximumLag: dyn.MaximumLagOnFailover, SynchronousMode: dyn.SynchronousMode.Enabled()}, leader, to)
}

// switchoverPeer is a peer's status as the switchover checks read it.
func switchoverPeer(p PeerStatus) switchover.Peer {
	return switchover.Peer{Name: p.Name, Reachable: p.Reachable, Err: p.Err, State: p.State, InRecovery: p.InRecovery,
		WatchdogFailed: p.WatchdogFailed, Timeline: p.Timeline, WAL: p.WAL, Replayed: p.Replayed, Streaming: p.Streaming}
}

// restVerdicts converts the verdicts for the REST answer (same JSON).
func restVerdicts(vs []switchover.Verdict) []restapi.CandidateVerdict {
	if vs == nil {
		return nil
	}
	out := make([]restapi.CandidateVerdict, 0, len(vs))
	for _, v := range vs {
		out = append(out, restapi.CandidateVerdict(v))
	}
	return out
}

// recordMissWait bounds how long a read of one switchover record waits
// for a record missing from this member's view: another member may have
// created it a moment ago (a client's event stream reconnecting here), and
// the watch delivers it within milliseconds. Waiting on the watch costs
// etcd nothing; an id that never appears is a 404 after it.
const recordMissWait = time.Second

// Switchover returns one record from the cluster view.
func (a *Agent) Switchover(ctx context.Context, id string) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, err
	}
	key := "switchovers/" + id
	if v, ok := c.Extra[key]; ok {
		return v.Data, nil
	}
	// Subscribe before the next look, or a change between the two is lost.
	changed, cancel := a.dcs.Subscribe()
	defer cancel()
	miss := time.NewTimer(recordMissWait)
	defer miss.Stop()
	for {
		if v := a.dcs.View(); v != nil {
			if r, ok := v.Extra[key]; ok {
				return r.Data, nil
			}
		}
		select {
		case <-changed:
		case <-miss.C:
			return nil, restapi.ErrNotFound
		case <-ctx.Done():
			return nil, restapi.ErrNotFound
		}
	}
}

// ListSwitchovers returns the kept records from the view, newest first.
func (a *Agent) ListSwitchovers(ctx context.Context) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, err
	}
	ids := switchover.IDs(c)
	out := make([]json.RawMessage, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		data, _ := switchover.RecordData(c, ids[i])
		out = append(out, data)
	}
	return json.Marshal(out)
}

// AbortSwitchover asks the running switchover to stop; the old leader
// honours it before PROMOTE_STANDBY and restores itself as primary.
func (a *Agent) AbortSwitchover(ctx context.Context, id string) error {
	_, err := a.updateRecord(ctx, id, func(r *switchover.Record) error {
		switch {
		case r.Terminal():
			return refuse(http.StatusConflict, "switchover %s is already %s", id, r.State)
		case r.PastPointOfNoReturn():
			return refuse(http.StatusConflict, "switchover %s is at %s: past PROMOTE_STANDBY it only goes forward", id, r.Stage)
		}
		r.AbortRequested = true
		r.Append(r.Stage, switchover.KindInfo, "abort requested")
		return nil
	})
	if errors.Is(err, switchover.ErrNotFound) {
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
			if r, err := switchover.Decode(last); err == nil && r.Terminal() {
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
			if cur, ok := switchover.RecordData(v, id); ok && string(cur) != string(prev) {
				return cur
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
