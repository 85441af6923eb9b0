package fencing_test

import (
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"
)

// TestStuckLoopIsResetBeforeLeaseExpires drives the watchdog the way the HA
// loop does — renew, then keepalive on the acknowledgement — and then stops
// the loop. The fake device must fire exactly when now passes
// lastPing + timeout, and that must be strictly before the lease can expire
// at etcd (lastRenewalSent + ttl).
func TestStuckLoopIsResetBeforeLeaseExpires(t *testing.T) {
	tests := []struct {
		name                  string
		ttl, loopWait, margin time.Duration
		rtt                   time.Duration // renewal round trip (< KeepaliveWindow)
		jitter                time.Duration // extra tick delay of a healthy loop (< 1s)
	}{
		{name: "defaults", ttl: 10 * time.Second, loopWait: time.Second, margin: 3 * time.Second,
			rtt: 200 * time.Millisecond, jitter: 900 * time.Millisecond},
		{name: "tightest", ttl: 4 * time.Second, loopWait: time.Second, margin: 2 * time.Second,
			rtt: 400 * time.Millisecond, jitter: 50 * time.Millisecond},
		{name: "patroni timings", ttl: 30 * time.Second, loopWait: 10 * time.Second, margin: 5 * time.Second,
			rtt: 2 * time.Second, jitter: 999 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := fencing.CheckTiming(tt.ttl, tt.loopWait, tt.margin); err != nil {
				t.Fatalf("settings must be valid: %v", err)
			}
			r := newRig(t, fencing.ModeRequired)
			timeout := fencing.DeviceTimeout(tt.ttl, tt.margin)

			// Healthy loop: acquire, arm, then renew + keepalive every tick.
			var lastRenewal, lastPing time.Time
			for tick := range 20 {
				lastRenewal = r.clk.Now() // the renewal's send time
				r.clk.Advance(tt.rtt)     // etcd acknowledges
				if tick == 0 {
					if err := r.wd.Arm(timeout); err != nil {
						t.Fatal(err)
					}
				} else if err := r.wd.Keepalive(); err != nil {
					t.Fatal(err)
				}
				lastPing = r.clk.Now()
				// Worst case until the next keepalive: a late tick plus the next round trip.
				r.clk.Advance(tt.loopWait + tt.jitter - tt.rtt)
				if r.dev.Fired(r.clk.Now().Add(tt.rtt)) {
					t.Fatalf("tick %d: device would reset a healthy leader", tick)
				}
			}

			// The loop blocks: no more renewals, no more keepalives.
			if want := lastPing.Add(timeout); !r.dev.Deadline().Equal(want) {
				t.Fatalf("Deadline = %s, want lastPing + %s = %s", r.dev.Deadline(), timeout, want)
			}
			fire := r.dev.Deadline()
			if r.dev.Fired(fire) {
				t.Error("fired at exactly lastPing + timeout; must need now to pass it")
			}
			if !r.dev.Fired(fire.Add(time.Nanosecond)) {
				t.Error("not fired just after lastPing + timeout")
			}
			// Walk the clock forward as the stuck host would live through it.
			var firedAt time.Time
			for now := r.clk.Now(); !now.After(lastRenewal.Add(tt.ttl)); now = now.Add(10 * time.Millisecond) {
				if r.dev.Fired(now) {
					firedAt = now
					break
				}
			}
			if firedAt.IsZero() {
				t.Fatalf("device never fired before the lease could expire at %s", lastRenewal.Add(tt.ttl))
			}
			if expiry := lastRenewal.Add(tt.ttl); !fire.Before(expiry) || !firedAt.Before(expiry) {
				t.Errorf("device fires at %s, not strictly before the lease can expire at %s", fire, expiry)
			}
			t.Logf("renewal sent %s, last ping %s, device fires %s, lease expires %s",
				lastRenewal.Format(time.StampMilli), lastPing.Format(time.StampMilli),
				fire.Format(time.StampMilli), lastRenewal.Add(tt.ttl).Format(time.StampMilli))
		})
	}
}
