package switchover

import (
	"testing"
	"time"
)

// TestClock: timeouts run on this host's clock from when it first saw the
// switchover and each stage; the record's own times never count.
func TestClock(t *testing.T) {
	var c Clock
	r := at(StageQuiesce, func(r *Record) { r.CreatedAt = t0.Add(-time.Hour) })
	check := func(after time.Duration, wantTotal, wantStage time.Duration) {
		t.Helper()
		total, inStage := c.Observe(r, t0.Add(after))
		if total != wantTotal || inStage != wantStage {
			t.Errorf("at +%s: total %s, in stage %s; want %s, %s", after, total, inStage, wantTotal, wantStage)
		}
	}
	check(0, 0, 0)
	check(5*time.Second, 5*time.Second, 5*time.Second)
	r.Stage = StageCatchUp
	check(7*time.Second, 7*time.Second, 0)
	check(9*time.Second, 9*time.Second, 2*time.Second)
	r = at(StagePreFlight, func(r *Record) { r.ID = "s2" }) // a new switchover starts afresh
	check(10*time.Second, 0, 0)
}
