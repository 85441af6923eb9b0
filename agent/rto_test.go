package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/restapi"
)

func TestFailoverPhases(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	full := restapi.FailoverTimings{LeaderLastSeen: at(0), DetectedAt: at(9000), ElectedAt: at(10500), PromotedAt: at(10700), FirstWriteAt: at(10710)}
	// ph("detect", 9000, "elect", 1500, …): phases and their ms.
	ph := func(kv ...any) []restapi.PhaseRecord {
		var out []restapi.PhaseRecord
		for pair := range slices.Chunk(kv, 2) {
			out = append(out, restapi.PhaseRecord{Phase: pair[0].(string), Ms: int64(pair[1].(int))})
		}
		return out
	}
	tests := []struct {
		name  string
		t     restapi.FailoverTimings
		fence *restapi.StonithRecord
		want  []restapi.PhaseRecord
	}{
		{"lease path", full, nil, ph("detect", 9000, "elect", 1500, "promote", 200, "first_write", 10)},
		{"fence ran: its time leaves the election's", full, &restapi.StonithRecord{Ran: true, DurationMs: 1200},
			ph("detect", 9000, "fence", 1200, "elect", 300, "promote", 200, "first_write", 10)},
		{"fence not configured (not run)", full, &restapi.StonithRecord{}, ph("detect", 9000, "elect", 1500, "promote", 200, "first_write", 10)},
		{"no leader ever seen: no detect", func() restapi.FailoverTimings { c := full; c.LeaderLastSeen = time.Time{}; return c }(), nil,
			ph("elect", 1500, "promote", 200, "first_write", 10)},
		{"write probe failed: no first_write", func() restapi.FailoverTimings { c := full; c.FirstWriteAt = time.Time{}; return c }(), nil,
			ph("detect", 9000, "elect", 1500, "promote", 200)},
		{"stream lost before the key went: detect from the stream", func() restapi.FailoverTimings { c := full; c.UpstreamLastSeen = at(-900); return c }(), nil,
			ph("detect", 9900, "elect", 1500, "promote", 200, "first_write", 10)},
		{"stream lost long before (2·ttl): detect from the key", func() restapi.FailoverTimings { c := full; c.UpstreamLastSeen = at(-20001); return c }(), nil,
			ph("detect", 9000, "elect", 1500, "promote", 200, "first_write", 10)},
		{"fast path: suspect_agree between detect and fence; elect from the agreement", func() restapi.FailoverTimings {
			c := full
			c.LeaderLastSeen, c.DetectedAt, c.AgreedAt = at(7000), at(8000), at(9200)
			return c
		}(), &restapi.StonithRecord{Ran: true, DurationMs: 300},
			ph("detect", 1000, "suspect_agree", 1200, "fence", 300, "elect", 1000, "promote", 200, "first_write", 10)},
		{"clock step: never negative", func() restapi.FailoverTimings {
			c := full
			c.PromotedAt = at(10400)
			c.FirstWriteAt = at(10300)
			return c
		}(), nil,
			ph("detect", 9000, "elect", 1500, "promote", 0, "first_write", 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, failoverPhases(tt.t, tt.fence, 10*time.Second)); diff != "" {
				t.Errorf("failoverPhases (-want +got):\n%s", diff)
			}
		})
	}
}
