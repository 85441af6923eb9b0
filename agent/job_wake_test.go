package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regent-ha/regent/postgres/pgtest"
)

// TestFailedJobWaitsForTheNextTick: work beside the loop that succeeded
// wakes the loop at once (the next step, a start, follows without a
// loop_wait), but a failed one is retried at the next tick: a clone whose
// source is unreachable fails at connect in milliseconds, and waking at
// once made a standby cluster's replica cut from its leader retry
// pg_basebackup about 200 times a second (the chaos suite's standby mode,
// async, seed 1796554497199070368: 1,148 attempts in 7 s).
func TestFailedJobWaitsForTheNextTick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		wakes bool
	}{
		{"a job that succeeded wakes the loop", nil, true},
		{"a job that failed does not", errors.New("pg_basebackup: connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newLoopHarness(t, newStore(), pgtest.New(7000000000000000001))
			a := h.agent
			a.dyn.LoopWait = time.Hour
			a.nextTick = h.now.Add(time.Hour)
			finished := make(chan struct{})
			a.startJob(t.Context(), "clone", func(context.Context) error { return tc.err }, func(error) { close(finished) })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			returned := make(chan struct{})
			go func() { a.waitNextTick(ctx); close(returned) }()
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				t.Fatal("the job's result was not collected")
			}
			if a.job != nil {
				t.Errorf("job still set after its finish ran")
			}
			if tc.wakes {
				select {
				case <-returned:
				case <-time.After(10 * time.Second):
					t.Fatal("the loop still waits (loop_wait an hour) after a job that succeeded")
				}
				return
			}
			// The failed job was collected; the loop must wait for its
			// tick (an hour away) or an event, not return on it.
			select {
			case <-returned:
				t.Fatal("the loop woke at once on a failed job: it would retry it without a pause")
			case <-time.After(300 * time.Millisecond):
			}
			cancel()
			<-returned
		})
	}
}
