package fencing

import (
	"strings"
	"testing"
	"time"
)

func TestCheckTiming(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name                  string
		ttl, loopWait, margin time.Duration
		wantKeys              []string // config keys the error must name; nil: valid
	}{
		{name: "defaults", ttl: 10 * s, loopWait: 1 * s, margin: 3 * s},
		{name: "patroni defaults", ttl: 30 * s, loopWait: 10 * s, margin: 5 * s},
		{name: "tightest valid", ttl: 4 * s, loopWait: 1 * s, margin: 2 * s},
		{name: "timeout exactly loop_wait+1s", ttl: 13 * s, loopWait: 10 * s, margin: 2500 * time.Millisecond},
		{name: "timeout one second short", ttl: 12 * s, loopWait: 11 * s, margin: 2 * s,
			wantKeys: []string{"watchdog.safety_margin", "ttl", "loop_wait"}},
		{name: "timeout equals loop_wait", ttl: 10 * s, loopWait: 8 * s, margin: 4 * s,
			wantKeys: []string{"watchdog.safety_margin", "ttl", "loop_wait"}},
		{name: "margin eats the whole ttl", ttl: 10 * s, loopWait: 1 * s, margin: 10 * s,
			wantKeys: []string{"watchdog.safety_margin"}},
		{name: "one-second margin leaves no fence grace", ttl: 10 * s, loopWait: 1 * s, margin: 1 * s,
			wantKeys: []string{"watchdog.safety_margin"}},
		{name: "sub-second timeout truncates below slack", ttl: 3500 * time.Millisecond, loopWait: 2 * s, margin: 2 * s,
			wantKeys: []string{"watchdog.safety_margin", "loop_wait"}},
		{name: "zero margin fires at lease expiry", ttl: 10 * s, loopWait: 1 * s, margin: 0,
			wantKeys: []string{"watchdog.safety_margin"}},
		{name: "sub-second margin", ttl: 10 * s, loopWait: 1 * s, margin: 999 * time.Millisecond,
			wantKeys: []string{"watchdog.safety_margin"}},
		{name: "negative margin", ttl: 10 * s, loopWait: 1 * s, margin: -1 * s,
			wantKeys: []string{"watchdog.safety_margin"}},
		{name: "zero ttl", ttl: 0, loopWait: 1 * s, margin: 3 * s, wantKeys: []string{"ttl"}},
		{name: "zero loop_wait", ttl: 10 * s, loopWait: 0, margin: 3 * s, wantKeys: []string{"loop_wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTiming(tt.ttl, tt.loopWait, tt.margin)
			if tt.wantKeys == nil {
				if err != nil {
					t.Fatalf("CheckTiming(%s, %s, %s) = %v, want nil", tt.ttl, tt.loopWait, tt.margin, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckTiming(%s, %s, %s) = nil, want an error naming %v", tt.ttl, tt.loopWait, tt.margin, tt.wantKeys)
			}
			// The keys are for the operator: the message is the contract here.
			for _, k := range tt.wantKeys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error %q does not name %q", err, k)
				}
			}
		})
	}
}

// TestCheckTimingGuarantees checks the two properties CheckTiming promises
// over a grid of settings, rather than trusting the table above.
func TestCheckTimingGuarantees(t *testing.T) {
	const step = 500 * time.Millisecond
	for ttl := step; ttl <= 30*time.Second; ttl += step {
		for lw := step; lw <= ttl; lw += step {
			for m := -step; m <= ttl; m += step {
				if CheckTiming(ttl, lw, m) != nil {
					continue
				}
				timeout := DeviceTimeout(ttl, m)
				// A healthy loop that pings every loop_wait, up to 1s late, never fires it.
				if lw+time.Second > timeout {
					t.Fatalf("ttl=%s loop_wait=%s margin=%s accepted, but timeout %s < loop_wait+1s", ttl, lw, m, timeout)
				}
				// Pinged within the keepalive window after the renewal was sent,
				// it fires before the lease expires…
				rtt := KeepaliveWindow(ttl, m) - time.Nanosecond
				if fire := rtt + timeout; fire >= ttl {
					t.Fatalf("ttl=%s loop_wait=%s margin=%s accepted, but the device fires at %s ≥ ttl", ttl, lw, m, fire)
				}
				// …and never before the agent's own fence point plus the grace
				// to stop and disarm.
				if timeout < ttl-m+FenceGrace {
					t.Fatalf("ttl=%s loop_wait=%s margin=%s accepted, but the device (%s) fires before the agent fences (%s) + grace", ttl, lw, m, timeout, ttl-m)
				}
			}
		}
	}
}

func TestDeviceTimeout(t *testing.T) {
	if got := DeviceTimeout(10*time.Second, 3*time.Second); got != 8*time.Second {
		t.Errorf("DeviceTimeout(10s, 3s) = %s, want 8s (ttl − margin/2, truncated)", got)
	}
	if got := DeviceTimeout(10*time.Second, 4*time.Second); got != 8*time.Second {
		t.Errorf("DeviceTimeout(10s, 4s) = %s, want 8s", got)
	}
	if got := DeviceTimeout(10*time.Second, 2500*time.Millisecond); got != 8*time.Second {
		t.Errorf("DeviceTimeout(10s, 2.5s) = %s, want 8s (truncated, never rounded up)", got)
	}
}
