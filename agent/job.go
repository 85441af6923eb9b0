package agent

import (
	"context"
	"fmt"
	"time"
)

// job is long PostgreSQL work that runs beside the HA loop — a clone, a
// rewind, a restart's stop — so the loop keeps renewing its lease and
// member key and keeps reacting to the cluster while it lasts (minutes
// for a large clone, up to stop_timeout for a stop). The work touches only
// PostgreSQL through the agent's bounded wrappers; its result is
// collected as soon as it ends (waitNextTick selects on done) and finish
// runs in the loop's goroutine; a success wakes the loop at once, a
// failure waits for the next tick (a retry without a pause would spin).
// What follows the work (start PostgreSQL, clone again) is decided by
// the loop from a fresh snapshot, never by the work itself.
type job struct {
	kind string
	done chan error // receives the work's result once
	// finish runs in the loop goroutine with the result.
	finish func(err error)
}

// goBeside starts work beside the loop; finish runs in the loop once the
// loop collects the result (collect, or endJob on waitNextTick's wake-up).
func (a *Agent) goBeside(ctx context.Context, kind string, work func(ctx context.Context) error, finish func(err error)) *job {
	j := &job{kind: kind, done: make(chan error, 1), finish: finish}
	a.log.Info("started beside the loop", "job", kind)
	go func() { j.done <- work(ctx) }()
	return j
}

// collect finishes j if its work has ended, without blocking, and reports
// whether it did.
func (a *Agent) collect(j *job) bool {
	select {
	case err := <-j.done:
		a.endJob(j, err)
		return true
	default:
		return false
	}
}

// endJob runs the job's finish in the loop goroutine.
func (a *Agent) endJob(j *job, err error) {
	if err != nil {
		a.log.Error("work beside the loop failed", "job", j.kind, "err", err)
	} else {
		a.log.Info("work beside the loop done", "job", j.kind)
	}
	j.finish(err)
}

// The data-directory job: a clone or a rewind. There is at most one at a
// time (decide waits while one runs), and while it runs the loop writes no
// file in the data directory.

// jobSettleTimeout bounds how long shutdown waits for a running job to
// notice its cancelled context.
const jobSettleTimeout = 10 * time.Second

// startJob runs a clone or rewind beside the loop; finish runs in the loop
// once it ended.
func (a *Agent) startJob(ctx context.Context, kind string, work func(ctx context.Context) error, finish func(err error)) {
	a.job = a.goBeside(ctx, kind, work, func(err error) {
		a.job = nil
		finish(err)
	})
}

// collectJob finishes a clone or rewind whose work has ended, without blocking.
func (a *Agent) collectJob() {
	if a.job != nil {
		a.collect(a.job)
	}
}

// busyWith says what holds PostgreSQL beside the loop, for a refusal.
func (a *Agent) busyWith() string {
	if a.job != nil {
		return fmt.Sprintf("a %s is running beside the loop", a.job.kind)
	}
	return "a restart is in progress"
}

// busy names the running job ("" when none), for the snapshot.
func (a *Agent) busy() string {
	if a.job == nil {
		return ""
	}
	return a.job.kind
}

// settleJob waits (bounded) for a running job and routing work at shutdown: its context is
// cancelled by then, so the work is ending.
func (a *Agent) settleJob() {
	for _, j := range []*job{a.job, a.routingJob, a.fast.job} {
		if j == nil {
			continue
		}
		select {
		case err := <-j.done:
			a.endJob(j, err)
		case <-time.After(jobSettleTimeout):
			a.log.Warn("shutting down while work beside the loop still runs", "job", j.kind)
		}
	}
}
