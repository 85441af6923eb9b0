package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/restapi"
)

// Fault kinds of the RTO measurements.
const (
	// KindHostDeath: SIGKILL of the primary's agent and PostgreSQL.
	KindHostDeath = "host_death"
	// KindFrozen: SIGSTOP of the primary's agent and PostgreSQL; thawed
	// after the measurement to rejoin.
	KindFrozen = "frozen_host"
	// KindCrash: SIGKILL of the primary's PostgreSQL, its agent alive; the
	// agent is expected to restart it in place.
	KindCrash = "postgres_crash"
)

// Bounds of the waits (never sleeps) of a repetition.
const (
	// healthyWait bounds the wait for a healthy cluster before a
	// repetition and after its recovery (a rewind or re-clone included).
	healthyWait = 120 * time.Second
	// warmWait bounds the wait for the prober's first ack on the primary.
	warmWait = 10 * time.Second
	// rtoSlack is added to the ttl to bound the wait for a write after a
	// fault: far beyond any target, so a slow failover is measured, not
	// cut short.
	rtoSlack = 30 * time.Second
	// decisionWait bounds the wait for the winner's decision record (it
	// is written on the tick after the promotion).
	decisionWait = 15 * time.Second
)

// FailoverSample is one repetition. Times are milliseconds from the
// fault (t0, taken just before the first signal). The split comes from
// the winner's decision record and is absent when it was not found.
type FailoverSample struct {
	Rep    int    `json:"rep"`
	Victim string `json:"victim"`
	// Winner is the node that acknowledged the first write after the fault.
	Winner string  `json:"winner"`
	RTOMs  float64 `json:"rto_ms"`
	// InjectMs is how long injecting the fault took (signals sent and
	// processes seen dead or stopped).
	InjectMs         float64  `json:"inject_ms"`
	LeaderLastSeenMs *float64 `json:"leader_last_seen_ms,omitempty"`
	DetectionMs      *float64 `json:"detection_ms,omitempty"`
	// AgreeMs (the fence fast path only) is detected_at → agreed_at: a
	// majority's suspicion; FenceMs is fence.command's run (when it ran).
	// ElectionMs then starts at agreed_at and includes the fence.
	AgreeMs     *float64 `json:"agree_ms,omitempty"`
	FenceMs     *float64 `json:"fence_ms,omitempty"`
	ElectionMs  *float64 `json:"election_ms,omitempty"`
	PromotionMs *float64 `json:"promotion_ms,omitempty"`
	// ClientMs is promoted_at → the first acknowledged write.
	ClientMs *float64 `json:"client_ms,omitempty"`
	Note     string   `json:"note,omitempty"`
	// RecoverMs is restart (host death) / thaw (frozen) / the first write
	// (crash) → a healthy cluster with the victim streaming again.
	RecoverMs float64 `json:"recover_ms"`
}

// FailoverResult is one fault kind at one profile.
type FailoverResult struct {
	Kind    string           `json:"kind"`
	Profile Profile          `json:"profile"`
	Reps    int              `json:"reps"`
	Failed  int              `json:"failed"`
	Samples []FailoverSample `json:"samples"`
	// Summaries in milliseconds.
	RTO       Summary `json:"rto_ms"`
	Detection Summary `json:"detection_ms"`
	Agree     Summary `json:"agree_ms"`
	Fence     Summary `json:"fence_ms"`
	Election  Summary `json:"election_ms"`
	Promotion Summary `json:"promotion_ms"`
	Client    Summary `json:"client_ms"`
	Recover   Summary `json:"recover_ms"`
}

func (r *FailoverResult) summarize() {
	pick := func(f func(FailoverSample) *float64) Summary {
		return summarizeOf(r.Samples, func(s FailoverSample) (float64, bool) {
			if v := f(s); v != nil {
				return *v, true
			}
			return 0, false
		})
	}
	r.RTO = summarizeOf(r.Samples, func(s FailoverSample) (float64, bool) { return s.RTOMs, true })
	r.Recover = summarizeOf(r.Samples, func(s FailoverSample) (float64, bool) { return s.RecoverMs, true })
	r.Detection = pick(func(s FailoverSample) *float64 { return s.DetectionMs })
	r.Agree = pick(func(s FailoverSample) *float64 { return s.AgreeMs })
	r.Fence = pick(func(s FailoverSample) *float64 { return s.FenceMs })
	r.Election = pick(func(s FailoverSample) *float64 { return s.ElectionMs })
	r.Promotion = pick(func(s FailoverSample) *float64 { return s.PromotionMs })
	r.Client = pick(func(s FailoverSample) *float64 { return s.ClientMs })
}

// runFailover repeats a fault kind on c.
func runFailover(t *testing.T, c *testcluster.Cluster, prof Profile, kind string, reps int, say sayf) FailoverResult {
	res := FailoverResult{Kind: kind, Profile: prof, Reps: reps}
	res.Failed = repeat(t, c, kind, reps, say, func(t *testing.T, rep int) {
		s := failoverRep(t, c, kind)
		s.Rep = rep
		res.Samples = append(res.Samples, s)
		say("%s (%s) %d/%d: %s → first write on %s after %.2f s; %s back in %.1f s", kind, prof.Name, rep, reps, s.Victim, s.Winner, s.RTOMs/1000, s.Victim, s.RecoverMs/1000)
	})
	res.summarize()
	return res
}

// failoverRep injects the fault into the primary, waits for the first
// acknowledged write, reads the split and lets the victim rejoin.
func failoverRep(t *testing.T, c *testcluster.Cluster, kind string) FailoverSample {
	ctx := t.Context()
	leader := c.WaitHealthy(t, healthyWait)
	pr := startProber(ctx, c.Nodes())
	defer pr.stop()
	if _, err := pr.first(ctx, time.Time{}, "", warmWait); err != nil {
		t.Fatalf("probe writes before the fault: %v", err)
	}
	t0 := time.Now()
	switch kind {
	case KindHostDeath, KindHostDeathFenced:
		leader.Kill(t)
	case KindFrozen:
		leader.Freeze(t)
	case KindCrash:
		leader.KillPostgres(t)
	default:
		t.Fatalf("unknown fault kind %q", kind)
	}
	injected := time.Now()
	exclude := leader.Name
	if kind == KindCrash {
		exclude = "" // the same node, restarted in place
	}
	first, err := pr.first(ctx, injected, exclude, c.TTL()+rtoSlack)
	if err != nil {
		t.Fatalf("%s of %s: %v", kind, leader.Name, err)
	}
	pr.stop()
	s := FailoverSample{Victim: leader.Name, Winner: first.node, RTOMs: ms(first.at.Sub(t0)), InjectMs: ms(injected.Sub(t0))}
	if kind == KindCrash {
		if first.node != leader.Name {
			s.Note = fmt.Sprintf("failed over to %s instead of restarting in place", first.node)
		}
	} else {
		splitFromDecision(ctx, c.Node(first.node), t0, first.at, &s)
	}
	s.RecoverMs = rejoin(t, c, kind, leader)
	return s
}

// rejoin brings the victim back and waits for a healthy cluster with it
// streaming; it returns how long that took.
func rejoin(t *testing.T, c *testcluster.Cluster, kind string, victim *testcluster.Node) float64 {
	start := time.Now()
	switch kind {
	case KindHostDeath, KindHostDeathFenced:
		victim.Start(t)
	case KindFrozen:
		victim.Thaw(t)
	}
	c.WaitHealthy(t, healthyWait)
	return ms(time.Since(start))
}

// splitFromDecision fills the sample's split from the winner's failover
// decision record (or says why it could not).
func splitFromDecision(ctx context.Context, winner *testcluster.Node, t0, firstAck time.Time, s *FailoverSample) {
	var d restapi.Decision
	err := PollUntil(ctx, decisionWait, 200*time.Millisecond, func() error {
		ds, err := readDecisions(ctx, winner)
		if err != nil {
			return err
		}
		for _, x := range ds {
			if x.Kind == "failover" && x.Member == winner.Name && !x.At.Before(t0) && x.Timings != nil {
				d = x
				return nil
			}
		}
		return fmt.Errorf("no failover decision by %s since the fault among %d records", winner.Name, len(ds))
	})
	if err != nil {
		s.Note = err.Error()
		return
	}
	tm := d.Timings
	since := func(a, b time.Time) *float64 {
		if a.IsZero() || b.IsZero() {
			return nil
		}
		v := ms(b.Sub(a))
		return &v
	}
	s.LeaderLastSeenMs = since(t0, tm.LeaderLastSeen)
	s.DetectionMs = since(t0, tm.DetectedAt)
	electFrom := tm.DetectedAt
	if !tm.AgreedAt.IsZero() {
		s.AgreeMs = since(tm.DetectedAt, tm.AgreedAt)
		electFrom = tm.AgreedAt
	}
	if d.Stonith != nil && d.Stonith.Ran {
		v := float64(d.Stonith.DurationMs)
		s.FenceMs = &v
	}
	s.ElectionMs = since(electFrom, tm.ElectedAt)
	s.PromotionMs = since(tm.ElectedAt, tm.PromotedAt)
	s.ClientMs = since(tm.PromotedAt, firstAck)
}

// readDecisions reads GET /decisions (newest first) from n.
func readDecisions(ctx context.Context, n *testcluster.Node) ([]restapi.Decision, error) {
	code, body, err := n.Get(ctx, "/decisions")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /decisions on %s = %d: %s", n.Name, code, body)
	}
	var ds []restapi.Decision
	if err := json.Unmarshal(body, &ds); err != nil {
		return nil, fmt.Errorf("GET /decisions on %s: %w", n.Name, err)
	}
	return ds, nil
}

// ensureProbeTable creates the probe table on the leader and waits until
// every node has it (a promoted replica must be able to take probes).
func ensureProbeTable(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node) {
	ctx := t.Context()
	if err := leader.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+probeTable+
		" (node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		t.Fatalf("create %s: %v", probeTable, err)
	}
	waitTable(t, c, probeTable)
}

// waitTable waits until every node's catalog has table.
func waitTable(t *testing.T, c *testcluster.Cluster, table string) {
	testcluster.Poll(t, 30*time.Second, "table "+table+" on every node", func(ctx context.Context) error {
		for _, n := range c.Nodes() {
			v, err := n.QueryInt(ctx, "SELECT count(*) FROM pg_class WHERE relname = $1", table)
			if err != nil {
				return err
			}
			if v == 0 {
				return fmt.Errorf("%s: not there yet", n.Name)
			}
		}
		return nil
	})
}
