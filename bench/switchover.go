package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/switchover"
)

// Bounds of a switchover repetition.
const (
	// switchoverWait bounds the whole switchover: switchover_timeout
	// (30 s by default) plus promotion and validation.
	switchoverWait = 90 * time.Second
	// ackWait bounds the wait for the writer's acks before and after.
	ackWait = 15 * time.Second
	// acksAround is how many writes the writer must get acknowledged by
	// the old primary before the request and by the new one after the
	// record closed: the gap is then surely inside the window.
	acksAround = 20
	// qualifyWait bounds the wait for the candidate to pass the
	// pre-flight checks.
	qualifyWait = 30 * time.Second
)

// SwitchoverSample is one planned switchover under a writer.
type SwitchoverSample struct {
	Rep  int    `json:"rep"`
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
	// UnavailableMs is the longest gap between consecutive acknowledged
	// writes: last ack before it → first ack after it.
	UnavailableMs float64 `json:"unavailable_ms"`
	// TotalMs is the record's created_at → its last event.
	TotalMs float64 `json:"total_ms"`
	// StageMs holds each stage's duration_ms from its completed event.
	StageMs map[string]float64 `json:"stage_ms"`
	// QuiesceSteps is QUIESCE_WRITES's info event: how long its
	// checkpoint and its stop took.
	QuiesceSteps string `json:"quiesce_steps,omitempty"`
	Acked        int    `json:"acked"`
	// Lost counts acknowledged ids missing from the new primary.
	Lost int `json:"lost"`
	// DualAcks counts ids acknowledged by two nodes (split brain).
	DualAcks int `json:"dual_acks"`
}

// StageSummary is one stage's duration over the repetitions.
type StageSummary struct {
	Stage string  `json:"stage"`
	Ms    Summary `json:"ms"`
}

// SwitchoverResult is every switchover repetition at one profile.
type SwitchoverResult struct {
	Profile     Profile            `json:"profile"`
	Reps        int                `json:"reps"`
	Failed      int                `json:"failed"`
	Samples     []SwitchoverSample `json:"samples"`
	Unavailable Summary            `json:"unavailable_ms"`
	Total       Summary            `json:"total_ms"`
	Stages      []StageSummary     `json:"stages"`
	Acked       int                `json:"acked"`
	Lost        int                `json:"lost"`
	DualAcks    int                `json:"dual_acks"`
}

func (r *SwitchoverResult) summarize() {
	r.Unavailable = summarizeOf(r.Samples, func(s SwitchoverSample) (float64, bool) { return s.UnavailableMs, true })
	r.Total = summarizeOf(r.Samples, func(s SwitchoverSample) (float64, bool) { return s.TotalMs, true })
	r.Stages = nil
	for _, st := range switchover.StageNames() {
		sum := summarizeOf(r.Samples, func(s SwitchoverSample) (float64, bool) { v, ok := s.StageMs[st]; return v, ok })
		if sum.N > 0 {
			r.Stages = append(r.Stages, StageSummary{Stage: st, Ms: sum})
		}
	}
	r.Acked, r.Lost, r.DualAcks = 0, 0, 0
	for _, s := range r.Samples {
		r.Acked += s.Acked
		r.Lost += s.Lost
		r.DualAcks += s.DualAcks
	}
}

func runSwitchovers(t *testing.T, c *testcluster.Cluster, prof Profile, reps int, say sayf) SwitchoverResult {
	res := SwitchoverResult{Profile: prof, Reps: reps}
	res.Failed = repeat(t, c, "switchover", reps, say, func(t *testing.T, rep int) {
		s := switchoverRep(t, c, rep)
		res.Samples = append(res.Samples, s)
		say("switchover %d/%d (loop_wait %d s): %s → %s, writes unavailable %.0f ms, total %.0f ms (quiesce: %s), %d acked, %d lost",
			rep, reps, prof.LoopWait, s.From, s.To, s.UnavailableMs, s.TotalMs, s.QuiesceSteps, s.Acked, s.Lost)
	})
	res.summarize()
	return res
}

// switchoverRep switches over from the leader to a replica while a
// writer inserts, then checks every acknowledged id on the new primary.
func switchoverRep(t *testing.T, c *testcluster.Cluster, rep int) SwitchoverSample {
	ctx := t.Context()
	leader := c.WaitHealthy(t, healthyWait)
	others := c.Others(leader.Name)
	target := others[rep%len(others)]
	table := fmt.Sprintf("bench_switchover_%d", rep)
	if err := leader.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, node text NOT NULL)"); err != nil {
		t.Fatalf("create %s: %v", table, err)
	}
	waitTable(t, c, table)
	w := c.StartWriter(ctx, testcluster.WriterOptions{Table: table, Route: testcluster.RouteTryAll,
		Every: writeEvery, Timeout: writeTimeout, AppName: "regent-bench-writer"})
	defer w.Stop()
	if _, err := w.WaitAcked(ctx, leader.Name, time.Time{}, acksAround, ackWait); err != nil {
		t.Fatalf("writer before the switchover: %v", err)
	}
	id := requestSwitchover(t, leader, target.Name)
	rec := waitSwitchover(t, c, id)
	if rec.State != switchover.StateCompleted {
		t.Fatalf("switchover %s ended %s: %s", id, rec.State, recordJSON(rec))
	}
	end := rec.Events[len(rec.Events)-1].At
	if _, err := w.WaitAcked(ctx, target.Name, end, acksAround, ackWait); err != nil {
		t.Fatalf("writer after the switchover: %v", err)
	}
	w.Stop()
	st := w.Snapshot()
	s := SwitchoverSample{ID: id, From: leader.Name, To: target.Name, Rep: rep,
		UnavailableMs: ms(testcluster.LongestGap(st.Acked).Duration), TotalMs: ms(end.Sub(rec.CreatedAt)),
		StageMs: stageDurations(rec), QuiesceSteps: quiesceSteps(rec), Acked: len(st.Acked), DualAcks: st.Dual}
	s.Lost = lostWrites(t, target, table, st.Acked)
	return s
}

// requestSwitchover sends PATCH /switchover to n and returns the id. A
// refusal (412) is asked again until qualifyWait: right after the previous
// switchover the old primary may not yet publish the new timeline (its
// status is as fresh as its last tick), which the pre-flight checks
// rightly refuse.
func requestSwitchover(t *testing.T, n *testcluster.Node, to string) string {
	var id string
	testcluster.Poll(t, qualifyWait, "PATCH /switchover {to: "+to+"} on "+n.Name+" to be accepted", func(ctx context.Context) error {
		code, body, err := n.Do(ctx, http.MethodPatch, "/switchover", map[string]any{"to": to, "reason": "regent bench"})
		if err != nil {
			return err
		}
		var started struct {
			ID string `json:"id"`
		}
		switch {
		case code == http.StatusPreconditionFailed:
			return fmt.Errorf("412 %s", body)
		case code != http.StatusAccepted || json.Unmarshal(body, &started) != nil || started.ID == "":
			t.Fatalf("PATCH /switchover {to: %s} on %s = %d %s, want 202 with an id", to, n.Name, code, body)
		}
		id = started.ID
		return nil
	})
	return id
}

// waitSwitchover polls GET /switchover/<id> (on any node that answers)
// until the record is terminal.
func waitSwitchover(t *testing.T, c *testcluster.Cluster, id string) switchover.Record {
	var rec switchover.Record
	testcluster.Poll(t, switchoverWait, "switchover "+id+" to finish", func(ctx context.Context) error {
		var errs []error
		for _, n := range c.Nodes() {
			r, err := readSwitchover(ctx, n, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !r.Terminal() {
				return fmt.Errorf("stage %s, state %s", r.Stage, r.State)
			}
			rec = r
			return nil
		}
		return errors.Join(errs...)
	})
	if len(rec.Events) == 0 {
		t.Fatalf("switchover %s: terminal record without events", id)
	}
	return rec
}

func readSwitchover(ctx context.Context, n *testcluster.Node, id string) (switchover.Record, error) {
	var rec switchover.Record
	code, body, err := n.Get(ctx, "/switchover/"+id)
	if err != nil {
		return rec, err
	}
	if code != http.StatusOK {
		return rec, fmt.Errorf("GET /switchover/%s on %s = %d: %s", id, n.Name, code, body)
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, fmt.Errorf("GET /switchover/%s on %s: %w", id, n.Name, err)
	}
	return rec, nil
}

func recordJSON(rec switchover.Record) string {
	data, _ := json.Marshal(rec)
	return string(data)
}

// stageDurations returns each stage's duration from its completed event.
func stageDurations(rec switchover.Record) map[string]float64 {
	out := map[string]float64{}
	for _, e := range rec.Events {
		if e.Kind == switchover.KindCompleted {
			out[string(e.Stage)] = float64(e.DurationMs)
		}
	}
	return out
}

// quiesceSteps is the message of QUIESCE_WRITES's info event ("" without).
func quiesceSteps(rec switchover.Record) string {
	for _, e := range rec.Events {
		if e.Stage == switchover.StageQuiesce && e.Kind == switchover.KindInfo {
			return e.Message
		}
	}
	return ""
}

// lostWrites counts the acknowledged ids missing from n's table.
func lostWrites(t *testing.T, n *testcluster.Node, table string, acks []testcluster.Ack) int {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lost, _, err := testcluster.MissingAcks(ctx, n, table, acks)
	if err != nil {
		t.Fatalf("verify acknowledged writes on %s: %v", n.Name, err)
	}
	return len(lost)
}
