package testcluster

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// ThrottleWALSender makes the WAL this node (a primary) sends to standby
// trickle: the standby's walsender is SIGSTOPped and let run for run out
// of every period, so a backlog arrives in small bursts over many seconds
// (a slow link). Throttling the sender rather than the receiver matters:
// a receiver that always finds more data flushes, and so moves its
// reported receive position, only at WAL segment boundaries; one fed in
// bursts flushes after each. It returns at once; release stops the
// throttling and SIGCONTs the walsender (idempotent, also run at the
// test's cleanup). Throttling ends by itself when the walsender's pid is
// gone or no longer a postgres process. It fails the test when the node
// has no walsender for standby.
func (n *Node) ThrottleWALSender(t testing.TB, standby string, run, period time.Duration) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	pids, err := n.QueryInts(ctx, "SELECT pid FROM pg_stat_replication WHERE application_name = $1", standby)
	cancel()
	if err != nil || len(pids) != 1 {
		t.Fatalf("testcluster: throttle the walsender of %s for %s: %v (pids %v)", n.Name, standby, err, pids)
	}
	pid := int(pids[0])
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for running := true; ; running = !running {
			sig, wait := syscall.SIGSTOP, period-run
			if !running {
				sig, wait = syscall.SIGCONT, run
			}
			// Guard against pid reuse: never signal anything but PostgreSQL.
			if !postgres.IsPostgresBinary(pid) {
				return
			}
			if err := syscall.Kill(pid, sig); errors.Is(err, syscall.ESRCH) {
				return
			}
			timer.Reset(wait) // the shaping itself: a duty cycle, not a wait for an event
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		}
	}()
	n.c.log.logf("[%s] throttling the walsender %d for %s: runs %s of every %s", n.Name, pid, standby, run, period)
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			<-done
			n.c.log.logf("[%s] walsender %d no longer throttled (SIGCONT)", n.Name, pid)
		})
	}
	t.Cleanup(release)
	return release
}
