package chaos

import (
	"context"
	"fmt"
	"time"
)

// drCatchUpTimeout bounds each wait for the standby cluster to be whole
// and caught up after a round's recovery: generous, a copy of the primary
// (a rewind that failed) included.
const drCatchUpTimeout = 180 * time.Second

// standbyRun is the standby side of a run: the cluster and its checks.
type standbyRun struct {
	sc     *StandbyCluster
	checks []StandbyCatchUp
	// failed: a check failed; the final one is then skipped (it would
	// wait its whole bound for what did not recover before).
	failed bool
}

// startStandby creates the probe table on the primary, starts the standby
// cluster and waits until it is whole and has the primary's rows.
func (r *Run) startStandby(ctx context.Context) {
	leader, err := r.c.leaderNode(ctx)
	if err == nil {
		err = execSQL(ctx, leader, drProbeSQL)
	}
	if err != nil {
		r.fail("create the standby probe table: %v", err)
	}
	sc, err := r.c.newStandbyCluster()
	r.t.Cleanup(sc.cleanup) // before the cluster's own: it needs the network and etcd
	if err == nil {
		r.c.dr = sc
		err = sc.start()
	}
	if err != nil {
		r.fail("standby cluster: %v", err)
	}
	r.dr = &standbyRun{sc: sc}
	cu := r.standbyCatchUp(ctx, 0, bootstrapTimeout)
	if _, _, problem := cu.judge(r.hist.Ops()); problem != "" {
		r.fail("standby cluster not whole within %s: %s", bootstrapTimeout, problem)
	}
	r.log.Add(r.clock.Now(), "standby cluster %s: %s leads, following the primary", drScope, cu.Holder)
}

// standbyAfterRound checks the standby cluster once the primary cluster
// recovered from round n (the final check is round 0), and reports
// whether it was whole and caught up (true without a standby cluster).
func (r *Run) standbyAfterRound(ctx context.Context, n int) bool {
	if r.dr == nil {
		return true
	}
	if n == 0 && r.dr.failed {
		r.log.Add(r.clock.Now(), "standby check final: skipped, an earlier one failed")
		return false
	}
	cu := r.standbyCatchUp(ctx, n, drCatchUpTimeout)
	r.dr.checks = append(r.dr.checks, cu)
	acked, replayed, problem := cu.judge(r.hist.Ops())
	what := fmt.Sprintf("round %d", n)
	if n == 0 {
		what = "final"
	}
	line := fmt.Sprintf("standby check %s: %s leads, %d/%d acknowledged writes replayed, %s after the rows were read",
		what, cu.Holder, replayed, acked, cu.Took.Round(time.Millisecond))
	if problem != "" {
		line = fmt.Sprintf("standby check %s: NOT WHOLE OR NOT CAUGHT UP within %s: %s", what, drCatchUpTimeout, problem)
		r.dr.failed = true
	}
	r.log.Add(r.clock.Now(), "%s", line)
	r.t.Logf("%s", line)
	return problem == ""
}

// standbyCatchUp reads the primary's rows, then polls the standby cluster
// until it is whole and has replayed them (StandbyCatchUp.judge) or
// timeout passes; it returns the last state read.
func (r *Run) standbyCatchUp(ctx context.Context, round int, timeout time.Duration) StandbyCatchUp {
	cu := StandbyCatchUp{Round: round, At: r.clock.Now()}
	leader, err := r.c.leaderNode(ctx)
	if err == nil {
		cu.Primary, err = ids(ctx, leader)
	}
	if err != nil {
		cu.Err = fmt.Sprintf("primary's rows: %v", err)
		return cu
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		crashed := r.readStandby(ctx, &cu)
		cu.Took = r.clock.Now() - cu.At
		if _, _, problem := cu.judge(r.hist.Ops()); problem == "" || crashed {
			return cu
		}
		select {
		case <-ctx.Done():
			return cu
		case <-time.After(pollInterval):
		}
	}
}

// readStandby reads the members' roles, the key holder and its rows into
// cu. It reports whether an agent crashed (then nothing can recover).
func (r *Run) readStandby(ctx context.Context, cu *StandbyCatchUp) (crashed bool) {
	sc := r.dr.sc
	cu.Roles, cu.Holder, cu.Standby, cu.Err = map[string]string{}, "", nil, ""
	for _, n := range sc.nodes {
		if err := n.Crashed(); err != nil {
			cu.Err = fmt.Sprintf("%s %v: %v", n.Name, errCrashed, err)
			return true
		}
		st, err := n.Status(ctx)
		if err != nil {
			cu.Roles[n.Name] = ""
			continue
		}
		cu.Roles[n.Name] = st.Role + "/" + st.State
	}
	holder, err := sc.Leader(ctx)
	if err != nil {
		cu.Err = fmt.Sprintf("standby leader key: %v", err)
		return false
	}
	cu.Holder = holder.Name
	if cu.Standby, err = ids(ctx, holder); err != nil {
		cu.Err = fmt.Sprintf("standby leader's rows: %v", err)
	}
	return false
}

// standbyVerdicts runs the standby checkers (nil without a standby
// cluster).
func (r *Run) standbyVerdicts(ops []Op) []Verdict {
	if r.dr == nil {
		return nil
	}
	return []Verdict{CheckStandbyReadOnly(r.dr.sc.Probes()), CheckStandbyLeaderKey(r.dr.sc.KeyEvents()),
		CheckStandbyReplay(ops, r.dr.checks)}
}
