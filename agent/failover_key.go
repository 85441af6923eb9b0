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

// failoverKeyStep is what the leader does with the failover key.
type failoverKeyStep int

const (
	// failoverKeyIdle: nothing to do (not the leader, no request, a
	// switchover already running, or a scheduled one not due yet).
	failoverKeyIdle failoverKeyStep = iota
	// failoverKeyClear: the request cannot be carried out; clear it.
	failoverKeyClear
	// failoverKeyStart: start the staged switchover it asks for.
	failoverKeyStart
)

// failoverKeyDecision is decideFailoverKey's answer; Why says why a
// request is cleared.
type failoverKeyDecision struct {
	Step failoverKeyStep
	Why  string
}

// decideFailoverKey is the leader's side of Patroni's failover key
// (patroni-compat.md §3.6): POST /switchover, POST /failover and
// patronictl's fallback write it; the leader turns it into the same
// staged switchover PATCH /switchover starts, when it is due. leading and
// quiescing are the loop's state after this tick's act and switchover
// step, which may have changed them since the snapshot.
func decideFailoverKey(s Snapshot, leading, quiescing bool) failoverKeyDecision {
	if s.View == nil || !leading || s.View.Failover.Empty() || s.Switchover != nil || quiescing {
		return failoverKeyDecision{Step: failoverKeyIdle}
	}
	f := s.View.Failover
	if f.Member == s.Name || (f.Leader != "" && f.Leader != s.Name) {
		return failoverKeyDecision{failoverKeyClear, "the request does not apply (it names me as candidate, or another leader)"}
	}
	if f.ScheduledAt != "" {
		at, err := parseISO8601(f.ScheduledAt)
		switch {
		case err != nil:
			return failoverKeyDecision{failoverKeyClear, "scheduled_at is unparsable"}
		case at.Sub(s.Now) > s.Config.LoopWait:
			return failoverKeyDecision{Step: failoverKeyIdle} // not due yet
		case s.Now.Sub(at) > s.Config.LoopWait*3/2:
			return failoverKeyDecision{failoverKeyClear, "the scheduled switchover is overdue"}
		}
	}
	return failoverKeyDecision{Step: failoverKeyStart}
}

// processFailoverKey carries out decideFailoverKey.
func (a *Agent) processFailoverKey(ctx context.Context, s Snapshot) {
	d := decideFailoverKey(s, a.lease.leading, a.quiesce != nil)
	switch d.Step {
	case failoverKeyIdle:
		return
	case failoverKeyClear:
		f := s.View.Failover
		a.log.Warn("clearing a failover request", "reason", d.Why, "leader", f.Leader, "candidate", f.Member, "scheduled_at", f.ScheduledAt)
		a.clearFailoverKey(ctx)
		return
	}
	f := s.View.Failover
	// The pre-flight asks the peers over REST, which the bounded DCS does
	// not cover: the lease deadline caps it as well.
	sctx, cancel := context.WithDeadline(ctx, minTime(a.now().Add(2*peerTimeout+a.dyn.RetryTimeout), a.lease.deadline()))
	defer cancel()
	started, err := a.StartSwitchover(sctx, restapi.SwitchoverRequest{To: f.Member, Reason: "failover key (POST /switchover, /failover or patronictl)", RequestedBy: "failover key"})
	if err != nil {
		a.log.Warn("failover request refused; clearing it", "candidate", f.Member, "err", err)
		a.clearFailoverKey(ctx)
		return
	}
	a.log.Info("failover request started a switchover", "switchover_id", started.ID, "to", started.To)
}

// PatroniSwitchover runs steps 5–8 of patroni-compat.md §2.6 for POST
// /switchover and POST /failover: feasibility (412), write the failover
// key, 202 when scheduled, else wait for the new leader.
func (a *Agent) PatroniSwitchover(ctx context.Context, req restapi.PatroniSwitchoverRequest) (int, string) {
	title := "Switchover"
	if req.Action == "failover" {
		title = "Failover"
	}
	c, err := a.dcs.Load(ctx)
	if err != nil {
		return http.StatusServiceUnavailable, "failed to read the cluster from DCS"
	}
	leaderAtRequest := c.LeaderName()
	if code, text := a.feasible(ctx, c, req); code != 0 {
		return code, text
	}
	f := dcs.Failover{Leader: req.Leader, Member: req.Candidate, AssumeOldPrimaryDown: req.AssumeOldPrimaryDown}
	if req.ScheduledAt != nil {
		f.ScheduledAt = req.ScheduledAt.Format("2006-01-02T15:04:05.999999-07:00")
	}
	data, _ := json.Marshal(f)
	if err := a.dcs.Put(ctx, a.dcs.Keys().Failover(), data); err != nil {
		return http.StatusServiceUnavailable, fmt.Sprintf("failed to write %s key into DCS", req.Action)
	}
	if req.ScheduledAt != nil {
		return http.StatusAccepted, title + " scheduled"
	}
	return a.awaitNewLeader(ctx, title, leaderAtRequest, req.Candidate)
}

// feasible is the §2.6 step-5 check against a fresh cluster read.
func (a *Agent) feasible(ctx context.Context, c *dcs.Cluster, req restapi.PatroniSwitchoverRequest) (int, string) {
	leader := c.LeaderName()
	if req.Leader != "" && req.Leader != leader {
		return http.StatusPreconditionFailed, "leader name does not match"
	}
	dyn, _ := config.ParseDynamic(configData(c))
	members := map[string]dcs.Member{}
	if req.Candidate != "" {
		m, ok := c.Members[req.Candidate]
		if !ok || m.APIURL == "" {
			return http.StatusPreconditionFailed, "candidate does not exists"
		}
		if dyn.SynchronousMode.Enabled() && req.Action == "switchover" && !c.Sync.Matches(req.Candidate) {
			return http.StatusPreconditionFailed, "candidate name does not match with sync_standby"
		}
		members[req.Candidate] = m
	} else {
		for name, m := range c.Members {
			if name != leader && m.APIURL != "" {
				members[name] = m
			}
		}
		if len(members) == 0 {
			return http.StatusPreconditionFailed, req.Action + " is not possible: cluster does not have members except leader"
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 2*peerTimeout)
	defer cancel()
	for _, p := range a.peers.Fetch(fctx, members) {
		if p.Reachable && !p.NoFailover && !p.WatchdogFailed && !c.Members[p.Name].NoFailover() {
			return 0, ""
		}
	}
	return http.StatusPreconditionFailed, req.Action + " is not possible: no good candidates have been found"
}

// awaitNewLeader polls (on every view change, at most 2·max(10 s,
// loop_wait)) for a leader other than the one at request time.
func (a *Agent) awaitNewLeader(ctx context.Context, title, oldLeader, candidate string) (int, string) {
	// A REST goroutine: loop_wait comes from the published limits, never
	// from the loop-owned dynamic config.
	wait := 2 * max(10*time.Second, a.limits.Load().loopWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	changed, unsubscribe := a.dcs.Subscribe()
	defer unsubscribe()
	past := map[string]string{"Switchover": "switched over", "Failover": "failed over"}[title]
	seen := false // the request must be seen in the view before its absence means failure
	for {
		if v := a.dcs.View(); v != nil {
			seen = seen || !v.Failover.Empty() || switchover.Active(v) != nil
			if l := v.LeaderName(); l != "" && l != oldLeader {
				if candidate != "" && l != candidate {
					return http.StatusOK, fmt.Sprintf("%s to %q instead of %q", upperFirst(past), l, candidate)
				}
				return http.StatusOK, fmt.Sprintf("Successfully %s to %q", past, l)
			}
			if seen && v.Failover.Empty() && switchover.Active(v) == nil {
				return http.StatusServiceUnavailable, title + " failed"
			}
		}
		select {
		case <-ctx.Done():
			return http.StatusServiceUnavailable, title + " status unknown"
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// minTime is the earlier of two times, ignoring a zero one.
func minTime(a, b time.Time) time.Time {
	if b.IsZero() || (!a.IsZero() && a.Before(b)) {
		return a
	}
	return b
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// CancelScheduled serves DELETE /switchover: it clears a scheduled request.
func (a *Agent) CancelScheduled(ctx context.Context) (int, string) {
	c, err := a.dcs.Load(ctx)
	if err != nil {
		return http.StatusServiceUnavailable, "failed to read the cluster from DCS"
	}
	if c.Failover.ScheduledAt == "" {
		return http.StatusNotFound, "no switchover is scheduled"
	}
	if _, err := a.dcs.CAS(ctx, a.dcs.Keys().Failover(), []byte("{}"), c.FailoverRev); err != nil {
		if errors.Is(err, dcs.ErrConflict) {
			return http.StatusConflict, "scheduled switchover was changed concurrently"
		}
		return http.StatusServiceUnavailable, "failed to clear the failover key"
	}
	return http.StatusOK, "scheduled switchover deleted"
}

// parseISO8601 accepts what Patroni's dateutil parser accepts in practice.
func parseISO8601(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00",
		"2006-01-02T15:04-07:00", "2006-01-02T15:04:05-07", "2006-01-02T15:04-07"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q as ISO 8601 with a time zone", s)
}
