package agent

import (
	"context"
	"time"
)

// pgJob is long PostgreSQL work — a clone, a rewind — that runs beside the
// HA loop, so the loop keeps renewing its lease and member key and keeps
// reacting to the cluster while it lasts (minutes for a large clone). The
// work touches only PostgreSQL through the agent's bounded wrappers; what
// follows it (start as a replica, clone again after a failed rewind) is
// decided by the loop on the next tick, from a fresh snapshot. While a job
// runs, decide waits and the loop writes no file in the data directory.
type pgJob struct {
	kind string
	done chan error // receives the work's result once
	// finish runs in the loop goroutine with the result.
	finish func(err error)
}

// jobSettleTimeout bounds how long shutdown waits for a running job to
// notice its cancelled context.
const jobSettleTimeout = 10 * time.Second

// startJob runs work beside the loop; finish runs in the loop once it
// ended. There is at most one job at a time (decide waits while one runs).
func (a *Agent) startJob(ctx context.Context, kind string, work func(ctx context.Context) error, finish func(err error)) {
	j := &pgJob{kind: kind, done: make(chan error, 1), finish: finish}
	a.job = j
	a.log.Info("started beside the loop", "job", kind)
	go func() { j.done <- work(ctx) }()
}

// collectJob finishes a job whose work has ended, without blocking.
func (a *Agent) collectJob() {
	if a.job == nil {
		return
	}
	select {
	case err := <-a.job.done:
		a.endJob(err)
	default:
	}
}

// endJob runs the job's finish in the loop goroutine.
func (a *Agent) endJob(err error) {
	j := a.job
	a.job = nil
	if err != nil {
		a.log.Error("work beside the loop failed", "job", j.kind, "err", err)
	} else {
		a.log.Info("work beside the loop done", "job", j.kind)
	}
	j.finish(err)
}

// busy names the running job ("" when none), for the snapshot.
func (a *Agent) busy() string {
	if a.job == nil {
		return ""
	}
	return a.job.kind
}

// settleJob waits (bounded) for a running job at shutdown: its context is
// cancelled by then, so the work is ending.
func (a *Agent) settleJob() {
	if a.job == nil {
		return
	}
	select {
	case err := <-a.job.done:
		a.endJob(err)
	case <-time.After(jobSettleTimeout):
		a.log.Warn("shutting down while work beside the loop still runs", "job", a.job.kind)
	}
}
