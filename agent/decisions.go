package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/boundedlog"
	"github.com/regent-ha/regent/restapi"
)

const (
	// maxDecisions bounds the log in etcd; the oldest go first.
	maxDecisions = 100
	// maxPendingDecisions bounds what waits in memory while etcd is away.
	maxPendingDecisions = 20
)

// record queues a decision; flushDecisions writes it when etcd answers.
// The log line carries the same reason.
func (a *Agent) record(d restapi.Decision) {
	d.At = time.Now().UTC()
	d.Member = a.name
	d.ID = fmt.Sprintf("%020d-%s", d.At.UnixNano(), a.name)
	a.log.Info("decision recorded", "kind", d.Kind, "reason", d.Reason)
	a.metrics.decision(d.Kind)
	a.pendingDecisions = append(a.pendingDecisions, d)
	if n := len(a.pendingDecisions); n > maxPendingDecisions {
		a.pendingDecisions = a.pendingDecisions[n-maxPendingDecisions:]
	}
}

// electionRecord turns an Election into the record's candidate list.
func electionRecord(e *Election) []restapi.CandidateRecord {
	if e == nil {
		return nil
	}
	out := []restapi.CandidateRecord{candidateRecord(e.Self, true)}
	for _, c := range e.Candidates {
		out = append(out, candidateRecord(c, false))
	}
	return out
}

func candidateRecord(c Candidate, self bool) restapi.CandidateRecord {
	r := restapi.CandidateRecord{Name: c.Name, Self: self, Reachable: c.Reachable, Timeline: c.Timeline,
		Priority: c.Priority, Eligible: c.Eligible, Reasons: c.Reasons}
	if c.Reachable {
		r.LSN = c.WAL.String()
	}
	return r
}

// flushDecisions writes queued decisions and trims the log to maxDecisions.
func (a *Agent) flushDecisions(ctx context.Context) {
	if len(a.pendingDecisions) == 0 {
		return
	}
	fctx, cancel := a.ioContext(ctx)
	defer cancel()
	keys := a.dcs.Keys()
	for len(a.pendingDecisions) > 0 {
		d := a.pendingDecisions[0]
		data, err := json.Marshal(d)
		if err != nil {
			a.pendingDecisions = a.pendingDecisions[1:]
			continue
		}
		if _, err := a.dcs.CAS(fctx, keys.Decision(d.ID), data, 0); err != nil {
			a.log.Debug("decision not written yet", "err", err)
			return
		}
		a.pendingDecisions = a.pendingDecisions[1:]
	}
	a.trimDecisions(fctx)
}

func (a *Agent) trimDecisions(ctx context.Context) {
	v := a.dcs.View()
	if v == nil {
		return
	}
	_ = boundedlog.Trim(ctx, decisionNames(v), maxDecisions, func(ctx context.Context, id string) error {
		return a.dcs.Delete(ctx, a.dcs.Keys().Decision(id), 0)
	})
}

// decisionNames returns the decision ids in the view, oldest first.
func decisionNames(v *dcs.Cluster) []string { return boundedlog.Names(v.Extra, "decisions/") }

// Decisions serves GET /decisions from the cluster view, newest first.
func (a *Agent) Decisions(ctx context.Context) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	ids := decisionNames(c)
	out := make([]json.RawMessage, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		if raw := c.Extra["decisions/"+ids[i]].Data; json.Valid(raw) {
			out = append(out, raw)
		}
	}
	return json.Marshal(out)
}
