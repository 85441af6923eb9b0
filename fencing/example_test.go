package fencing_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/fencing/fencingtest"
)

// The HA loop arms the watchdog before promoting, pings it only after each
// acknowledged lease renewal, and disarms it on every exit path. Production
// code passes fencing.OpenLinux instead of the fake's opener.
func ExampleWatchdog() {
	ttl, loopWait := 10*time.Second, time.Second
	cfg := fencing.Config{Mode: fencing.ModeRequired}
	cfg.SetDefaults()
	if err := fencing.CheckTiming(ttl, loopWait, cfg.SafetyMargin); err != nil {
		fmt.Println(err)
		return
	}

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dev := fencingtest.NewFakeDevice(clock)
	wd := fencing.NewWatchdog(cfg, dev.Opener(), slog.New(slog.DiscardHandler), clock)
	defer func() { _ = wd.Disarm() }() // on every exit path

	if err := wd.Arm(fencing.DeviceTimeout(ttl, cfg.SafetyMargin)); err != nil {
		fmt.Println("must not lead:", err)
		return
	}
	// … each tick, after the lease renewal was acknowledged:
	now = now.Add(loopWait)
	_ = wd.Keepalive()

	st := wd.Status()
	fmt.Println(st.Armed, st.Timeout, wd.Usable())
	// The loop hangs: the device resets the host 8s after the last ping
	// (ttl − margin/2: after the agent's own fence at 7s, before expiry at 10s).
	fmt.Println(dev.Fired(now.Add(8*time.Second)), dev.Fired(now.Add(8*time.Second+time.Millisecond)))
	// Output:
	// true 8s true
	// false true
}
