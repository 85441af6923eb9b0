package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// failoverPhases are the RTO budget's phases of a failover without a
// fence, in order (agent/rto.go).
var failoverPhases = []string{"detect", "elect", "promote", "first_write"}

type phaseEntry struct {
	Phase string `json:"phase"`
	Ms    int64  `json:"ms"`
}

// checkRTOBudget: the winner's failover record carries its phases, in
// order, adding up to no more than leader last seen → first write; the
// winner's GET /metrics has a regent_failover_phase_seconds sample for
// each; and regentctl history shows them on the switch to the winner.
// minDetect is a generous lower bound of the detect phase (for a dead
// leader it spans the lease running out).
func checkRTOBudget(t *testing.T, c *testcluster.Cluster, winner *testcluster.Node, d decisionEntry, minDetect time.Duration) {
	t.Helper()
	tm := d.Timings
	if tm == nil {
		t.Fatalf("failover record without timings: %s", d)
	}
	var names []string
	var sum int64
	for _, p := range tm.Phases {
		names = append(names, p.Phase)
		sum += p.Ms
	}
	if !slices.Equal(names, failoverPhases) {
		t.Fatalf("failover record phases %v, want %v: %s", names, failoverPhases, d)
	}
	if detect := time.Duration(tm.Phases[0].Ms) * time.Millisecond; detect < minDetect {
		t.Errorf("detect phase %s < %s: it must span the old leader's lease running out: %s", detect, minDetect, d)
	}
	start := tm.LeaderLastSeen
	if !tm.UpstreamLastSeen.IsZero() && tm.UpstreamLastSeen.Before(start) {
		start = tm.UpstreamLastSeen
	}
	if span := tm.FirstWriteAt.Sub(start).Milliseconds(); tm.FirstWriteAt.IsZero() || sum > span+int64(len(tm.Phases)) {
		t.Errorf("phases add up to %d ms, more than last seen alive → first write (%d ms): %s", sum, span, d)
	}
	if tm.Timeline < 2 {
		t.Errorf("failover record: timeline %d, want the new timeline (≥ 2)", tm.Timeline)
	}

	mfs := scrapeAll(t, []*testcluster.Node{winner})[winner.Name]
	for _, p := range failoverPhases {
		if n, err := mfs.count("regent_failover_phase_seconds", map[string]string{"phase": p}); err != nil || n < 1 {
			t.Errorf("GET /metrics on %s: regent_failover_phase_seconds{phase=%q} count %d, %v; want ≥ 1", winner.Name, p, n, err)
		}
	}

	// regentctl history: the entry of the switch to the winner's timeline.
	testcluster.Poll(t, replicateTimeout, "regentctl history showing the failover's phases", func(context.Context) error {
		r := regentctl(t, c, ctlBound, "history", "-o", "json")
		var rows []struct {
			Timeline  int          `json:"timeline"`
			NewLeader string       `json:"new_leader"`
			Phases    []phaseEntry `json:"phases"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
			return fmt.Errorf("%s", r)
		}
		for _, row := range rows {
			if row.NewLeader == winner.Name && row.Timeline+1 == tm.Timeline {
				if len(row.Phases) != len(tm.Phases) {
					return fmt.Errorf("history entry %+v, want the record's phases %v", row, tm.Phases)
				}
				return nil
			}
		}
		return fmt.Errorf("no history entry for %s's timeline %d: %s", winner.Name, tm.Timeline, r.stdout)
	})
	r := regentctl(t, c, ctlBound, "history")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "Failover Phases") || !strings.Contains(r.stdout, "first_write ") {
		t.Errorf("regentctl history does not print the phases:\n%s", r.stdout)
	}
	t.Logf("regentctl history:\n%s", r.stdout)
}

// waitStreamingSeen waits until every node's WAL receiver streams and its
// agent has ticked since (regent_ha_last_tick_timestamp_seconds): the
// agent then knows when it last saw its upstream alive, which dates the
// detect phase of a failover.
func waitStreamingSeen(t *testing.T, nodes []*testcluster.Node) {
	t.Helper()
	for _, n := range nodes {
		var since time.Time
		testcluster.Poll(t, replicateTimeout, n.Name+" streaming", func(ctx context.Context) error {
			v, err := n.QueryInt(ctx, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
			if err == nil && v != 1 {
				err = fmt.Errorf("%s: WAL receiver not streaming", n.Name)
			}
			since = time.Now()
			return err
		})
		testcluster.Poll(t, replicateTimeout, n.Name+"'s agent ticking after it streamed", func(ctx context.Context) error {
			mfs, err := scrapeMetrics(ctx, n)
			if err != nil {
				return err
			}
			v, err := mfs.value("regent_ha_last_tick_timestamp_seconds", nil)
			if err == nil && v <= float64(since.UnixNano())/1e9 {
				err = fmt.Errorf("last tick at %.3f, before %s", v, since)
			}
			return err
		})
	}
}
