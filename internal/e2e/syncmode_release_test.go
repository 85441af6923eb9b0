package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestSyncStandbyStopReleasesFirst: a synchronous standby that stops
// cleanly first tags itself nosync and waits (up to 2·loop_wait) for the
// leader to take it out of synchronous_standby_names (patroni-compat.md
// §3.7, "Effects elsewhere"), so commits never wait for a standby whose
// PostgreSQL is already gone. An observer samples, while the standby's
// agent stops, whether its postmaster runs and what the leader's
// synchronous_standby_names is.
func TestSyncStandbyStopReleasesFirst(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{DCS: syncOn(false)})
	sb := waitSyncStandby(t, c, leader, replicateTimeout)
	mustExec(t, leader, "CREATE TABLE e2e_release (id bigint PRIMARY KEY, node text NOT NULL)")
	w := startSyncWriter(t, c, "e2e_release")
	waitAcked(t, w, leader.Name, time.Now(), 20, replicateTimeout)

	obs := observeRelease(t, leader, sb)
	stopping := time.Now()
	sb.StopAgent(t)
	stopped := time.Now()
	testcluster.Poll(t, replicateTimeout, leader.Name+"'s synchronous_standby_names no longer naming "+sb.Name, func(ctx context.Context) error {
		ssn, err := showSSN(ctx, leader)
		if err != nil {
			return err
		}
		if slices.Contains(ssnMembers(ssn), sb.Name) {
			return fmt.Errorf("%q", ssn)
		}
		return nil
	})
	samples, bad := obs.stop()
	waitAcked(t, w, leader.Name, time.Now(), 20, replicateTimeout)
	st := w.Snapshot()
	t.Logf("%s's agent stopped in %.1fs; %d samples, %d of them with its PostgreSQL gone while %s's synchronous_standby_names named it; writer: longest gap %s, %d failed attempts, last error %v",
		sb.Name, stopped.Sub(stopping).Seconds(), samples, len(bad), leader.Name, testcluster.LongestGap(st.Acked).Duration.Round(time.Millisecond), st.Errors, st.LastErr)
	if len(bad) > 0 {
		t.Errorf("commits waited for a stopped standby: %s's PostgreSQL was down while %s's synchronous_standby_names named it (first at %s, last at %s, %d samples); the stopping standby was not released first",
			sb.Name, leader.Name, bad[0].Format("15:04:05.000"), bad[len(bad)-1].Format("15:04:05.000"), len(bad))
	}
}

// releaseObserver samples, every 20 ms and until stop, whether sb's
// postmaster runs and leader's synchronous_standby_names; it records the
// times sb's PostgreSQL was down while the setting named it.
type releaseObserver struct {
	cancel  context.CancelFunc
	done    chan struct{}
	samples int
	bad     []time.Time
}

func observeRelease(t *testing.T, leader, sb *testcluster.Node) *releaseObserver {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cctx, ccancel := context.WithTimeout(ctx, replicateTimeout)
	conn, err := leader.Connect(cctx)
	ccancel()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	o := &releaseObserver{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer closeQuietly(ctx, conn)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			down := !sb.PostgresRunning()
			var ssn string
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			err := conn.QueryRow(qctx, "SHOW synchronous_standby_names").Scan(&ssn)
			qcancel()
			if err != nil {
				continue
			}
			o.samples++
			if down && slices.Contains(ssnMembers(ssn), sb.Name) {
				o.bad = append(o.bad, time.Now())
			}
		}
	}()
	t.Cleanup(func() { o.stop() })
	return o
}

// stop ends the sampling and returns the number of samples and the bad
// ones.
func (o *releaseObserver) stop() (int, []time.Time) {
	o.cancel()
	<-o.done
	return o.samples, o.bad
}
