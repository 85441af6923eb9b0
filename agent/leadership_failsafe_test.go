package agent

import (
	"testing"
	"time"
)

// TestLeadershipFailsafe: the failsafe transitions at ttl 10 s and
// safety_margin 3 s. A round moves the deadline exactly as a renewal would
// (its send time + ttl − margin, never back), marks the episode, and
// reports "extended" (the watchdog rule) only when the deadline moved; a
// renewal or a regained key ends the episode; a regained key moves the
// deadline by the new lease.
func TestLeadershipFailsafe(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	base := newLeadership(3 * time.Second).granted(10 * time.Second).won(at(0)) // deadline 7
	type result struct {
		l        leadership
		extended bool
	}
	round := func(l leadership, s float64) result { n, e := l.failsafeRenewed(at(s)); return result{n, e} }
	tests := []struct {
		name         string
		run          func() result
		wantLeading  bool
		wantDeadline time.Time
		wantExtended bool
		wantFailsafe bool
		wantSince    time.Time
	}{
		{"a round extends like a renewal", func() result { return round(base, 4) }, true, at(11), true, true, at(4)},
		{"rounds chain; the episode keeps its start", func() result { return round(round(base, 4).l, 8) }, true, at(15), true, true, at(4)},
		{"an older round never moves it back and does not ping", func() result { return round(round(base, 4).l, 2) }, true, at(11), false, true, at(4)},
		{"a round for a member that does not lead changes nothing", func() result { return round(base.lost(), 4) }, false, time.Time{}, false, false, time.Time{}},
		{"a renewal ends the episode", func() result {
			n, e := round(base, 4).l.renewed(at(5))
			return result{n, e}
		}, true, at(12), true, false, time.Time{}},
		{"a renewal ends the episode even when not later", func() result {
			n, e := round(base, 4).l.renewed(at(3))
			return result{n, e}
		}, true, at(11), false, false, time.Time{}},
		{"regained on a new lease: the episode ends, deadline by the new lease", func() result {
			n, e := round(base, 4).l.regained(at(6), 20*time.Second)
			return result{n, e}
		}, true, at(23), true, false, time.Time{}},
		{"regained earlier than the round's deadline keeps it", func() result {
			n, e := round(base, 6).l.regained(at(5), 10*time.Second)
			return result{n, e}
		}, true, at(13), false, false, time.Time{}},
		{"regained when not leading changes nothing", func() result {
			n, e := base.lost().regained(at(5), 10*time.Second)
			return result{n, e}
		}, false, time.Time{}, false, false, time.Time{}},
		{"lost ends the episode", func() result { return result{round(base, 4).l.lost(), false} }, false, time.Time{}, false, false, time.Time{}},
		{"a failed fence ends the episode", func() result { return result{round(base, 4).l.fenceFailed(), false} }, false, time.Time{}, false, false, time.Time{}},
		{"won again after an episode starts clean", func() result { return result{round(base, 4).l.lost().won(at(20)), false} }, true, at(27), false, false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run()
			st := r.l.state(1)
			if st.Leading != tt.wantLeading || !st.Deadline.Equal(tt.wantDeadline) || r.extended != tt.wantExtended ||
				st.Failsafe != tt.wantFailsafe || !r.l.failsafeSince.Equal(tt.wantSince) {
				t.Errorf("got leading %v deadline %v extended %v failsafe %v since %v; want %v %v %v %v %v",
					st.Leading, st.Deadline.Sub(t0), r.extended, st.Failsafe, r.l.failsafeSince.Sub(t0),
					tt.wantLeading, tt.wantDeadline.Sub(t0), tt.wantExtended, tt.wantFailsafe, tt.wantSince.Sub(t0))
			}
		})
	}
}

// TestFailsafeRoundPingsOnlyWhenYoung: a round obeys the one ping rule —
// its send time is the last acknowledgement, so a round that took longer
// than the keepalive window cannot ping (the deadline falls back to the
// device's bound instead).
func TestFailsafeRoundPingsOnlyWhenYoung(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	l, _ := newLeadership(3 * time.Second).granted(10 * time.Second).won(t0).failsafeRenewed(t0.Add(4 * time.Second))
	if !l.pingable(t0.Add(5 * time.Second)) {
		t.Error("a ping 1 s after the round's send time was refused")
	}
	if l.pingable(t0.Add(5600 * time.Millisecond)) {
		t.Error("a ping 1.6 s after the round's send time was allowed")
	}
}
