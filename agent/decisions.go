package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// Decision is one automatic decision with its reasons and inputs, kept in
// etcd under decisions/ (the last maxDecisions of the cluster) and served
// by GET /decisions (DESIGN §3).
type Decision struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Member string    `json:"member"`
	// Kind: failover (won the race and promoted), stood_down (did not race
	// while the cluster had no leader), fence, demote, restart_primary,
	// release.
	Kind           string            `json:"kind"`
	Reason         string            `json:"reason"`
	PreviousLeader string            `json:"previous_leader,omitempty"`
	Candidates     []CandidateRecord `json:"candidates,omitempty"`
	Timings        *Timings          `json:"timings,omitempty"`
	Fence          *FenceRecord      `json:"fence,omitempty"`
}

// CandidateRecord is one member's standing in an election.
type CandidateRecord struct {
	Name      string   `json:"name"`
	Self      bool     `json:"self,omitempty"`
	Reachable bool     `json:"reachable"`
	LSN       string   `json:"lsn,omitempty"`
	Timeline  int      `json:"timeline,omitempty"`
	Priority  int      `json:"failover_priority,omitempty"`
	Eligible  bool     `json:"eligible"`
	Reasons   []string `json:"reasons,omitempty"`
}

// Timings of a failover as this member saw it: the leader was last seen,
// its key's absence was detected, the key was won, PostgreSQL promoted.
type Timings struct {
	LeaderLastSeen time.Time `json:"leader_last_seen,omitempty"`
	DetectedAt     time.Time `json:"detected_at"`
	ElectedAt      time.Time `json:"elected_at,omitempty"`
	PromotedAt     time.Time `json:"promoted_at,omitempty"`
	ElectionMs     int64     `json:"election_ms,omitempty"`
	PromotionMs    int64     `json:"promotion_ms,omitempty"`
}

const (
	// maxDecisions bounds the log in etcd; the oldest go first.
	maxDecisions = 100
	// maxPendingDecisions bounds what waits in memory while etcd is away.
	maxPendingDecisions = 20
)

// record queues a decision; flushDecisions writes it when etcd answers.
// The log line carries the same reason.
func (a *Agent) record(d Decision) {
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
func electionRecord(e *Election) []CandidateRecord {
	if e == nil {
		return nil
	}
	out := []CandidateRecord{candidateRecord(e.Self, true)}
	for _, c := range e.Candidates {
		out = append(out, candidateRecord(c, false))
	}
	return out
}

func candidateRecord(c Candidate, self bool) CandidateRecord {
	r := CandidateRecord{Name: c.Name, Self: self, Reachable: c.Reachable, Timeline: c.Timeline,
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
	ids := decisionNames(v)
	for len(ids) > maxDecisions {
		if err := a.dcs.Delete(ctx, a.dcs.Keys().Decision(ids[0]), 0); err != nil {
			return
		}
		ids = ids[1:]
	}
}

// decisionNames returns the decision ids in the view, oldest first.
func decisionNames(v *dcs.Cluster) []string {
	var ids []string
	for name := range v.Extra {
		if id, ok := strings.CutPrefix(name, "decisions/"); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

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
