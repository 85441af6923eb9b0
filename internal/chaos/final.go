package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/testcluster"
)

// catchUpTimeout bounds the wait for every replica to replay the final
// primary's last WAL position.
const catchUpTimeout = 60 * time.Second

// Finish stops the workload, waits for a whole cluster and replicas that
// have replayed everything, reads the final state (adding one read of
// every register row to the history) and runs every checker.
//
// If the cluster does not recover (or a round did not), the lost-write
// checker cannot run: the report then carries a failed final-state verdict
// next to the history checkers'.
func (r *Run) Finish(rounds []*Round) *Report {
	ctx := r.t.Context()
	r.wl.Stop()
	timeout := r.cfg.RecoveryTimeout
	if n := len(rounds); n > 0 && rounds[n-1].Err != nil {
		timeout = 30 * time.Second // it already had its chance
	}
	leader, err := r.waitHealthy(ctx, timeout)
	var final FinalState
	if err == nil {
		final, err = r.finalState(ctx, leader)
	}
	if err == nil {
		r.standbyAfterRound(ctx, 0)
	}
	if err != nil {
		rep := r.CheckHistory(rounds)
		rep.Verdicts = append(rep.Verdicts, Verdict{Name: "final-state", Summary: fmt.Sprintf("could not read the final state: %v", err)})
		return rep
	}
	rep := r.CheckHistory(rounds)
	ops := r.hist.Ops()
	v, lost := CheckLostWrites(ops, final, r.cfg.Sync, r.cfg.Cluster.MaxLagOnFailover)
	rep.Verdicts = append(rep.Verdicts[:1], append([]Verdict{v}, rep.Verdicts[1:]...)...)
	rep.Lost = lost
	if r.cfg.Routing {
		rep.replace(CheckRouting(rounds, ops, lost, routingBound))
	}
	rep.attribute()
	return rep
}

// CheckHistory stops the workload and runs the checkers that need only
// the history (split brain, linearizability, lease, recovery); it does
// not need the cluster to have recovered.
func (r *Run) CheckHistory(rounds []*Round) *Report {
	r.wl.Stop()
	ops := r.hist.Ops()
	rep := &Report{Seed: r.cfg.Seed, Mode: r.cfg.modeName(), Routing: r.cfg.Routing, Rounds: rounds, Timeline: r.log,
		MaxLag: r.cfg.Cluster.MaxLagOnFailover, LogDir: r.c.Dir() + "/logs", Ops: len(ops)}
	lin := CheckLinearizable(ops, r.c.Dir()+"/logs")
	if !r.cfg.Sync {
		// Asynchronous replication loses acknowledged writes by design (up
		// to maximum_lag_on_failover): the register is then not
		// linearizable, and that is reported, not failed.
		lin.Name += " (informational in async mode)"
		lin.OK = true
	}
	rep.Verdicts = []Verdict{CheckSplitBrain(ops), lin, CheckPlainReads(ops, r.c.Dir()+"/logs"), CheckLease(rounds), CheckFence(rounds), checkRounds(rounds)}
	if r.cfg.Routing {
		// Lost writes through PgBouncer are counted once the final state
		// is read (Finish).
		rep.Verdicts = append(rep.Verdicts, CheckRouting(rounds, ops, nil, routingBound))
	}
	rep.Verdicts = append(rep.Verdicts, r.standbyVerdicts(ops)...)
	rep.Elapsed = time.Since(r.Start)
	return rep
}

// finalState reads what the cluster holds once replicas caught up.
func (r *Run) finalState(ctx context.Context, leader *Node) (FinalState, error) {
	fs := FinalState{Leader: leader.Name}
	if err := r.catchUp(ctx, leader); err != nil {
		return fs, err
	}
	rows, err := ids(ctx, leader)
	if err != nil {
		return fs, err
	}
	fs.Rows = rows
	for _, n := range r.c.Others(leader.Name) {
		other, err := ids(ctx, n)
		if err != nil {
			return fs, err
		}
		if d := diff(rows, other); d != "" {
			fs.Divergent = append(fs.Divergent, fmt.Sprintf("replica %s differs from primary %s: %s", n.Name, leader.Name, d))
		}
	}
	fs.History, err = r.historyKey(ctx)
	if err != nil {
		return fs, err
	}
	return fs, r.finalReads(ctx, leader)
}

// catchUp waits until every replica replayed the leader's current LSN.
func (r *Run) catchUp(ctx context.Context, leader *Node) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	var lsn string
	conn, err := connect(ctx, leader)
	if err != nil {
		return err
	}
	err = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	testcluster.CloseConn(ctx, conn)
	if err != nil {
		return fmt.Errorf("leader LSN: %w", err)
	}
	for _, n := range r.c.Others(leader.Name) {
		for {
			ok, err := queryInt(ctx, n, "SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::int", lsn)
			if err == nil && ok == 1 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not replay %s within %s (last: %w)", n.Name, lsn, catchUpTimeout, err)
			case <-time.After(pollInterval):
			}
		}
	}
	return nil
}

func ids(ctx context.Context, n *Node) (map[int64]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, n)
	if err != nil {
		return nil, err
	}
	defer testcluster.CloseConn(ctx, conn)
	rows, err := conn.Query(ctx, "SELECT id FROM chaos_writes")
	if err != nil {
		return nil, fmt.Errorf("read ids on %s: %w", n.Name, err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read ids on %s: %w", n.Name, err)
	}
	out := make(map[int64]bool, len(list))
	for _, id := range list {
		out[id] = true
	}
	return out, nil
}

// diff describes how b differs from a ("" if equal).
func diff(a, b map[int64]bool) string {
	var missing, extra []int64
	for id := range a {
		if !b[id] {
			missing = append(missing, id)
		}
	}
	for id := range b {
		if !a[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("%d ids missing %v, %d extra %v", len(missing), head(missing), len(extra), head(extra))
}

func head[T any](s []T) []T { return s[:min(len(s), 10)] }

func (r *Run) historyKey(ctx context.Context) ([]dcs.HistoryEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := r.c.cli.Get(ctx, r.c.keys.History())
	if err != nil {
		return nil, fmt.Errorf("read history key: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var h []dcs.HistoryEntry
	if err := json.Unmarshal(resp.Kvs[0].Value, &h); err != nil {
		return nil, fmt.Errorf("parse history key %q: %w", resp.Kvs[0].Value, err)
	}
	return h, nil
}

// finalReads reads every register row on the final primary, recorded as
// reads of one more client: a lost acknowledged register write shows.
func (r *Run) finalReads(ctx context.Context, leader *Node) error {
	conn, err := connect(ctx, leader)
	if err != nil {
		return err
	}
	defer testcluster.CloseConn(ctx, conn)
	keys := map[int64]bool{}
	for _, o := range r.hist.Ops() {
		if o.Kind != OpInsert {
			keys[o.Key] = true
		}
	}
	client := len(r.c.nodes) * clientsPerNode
	for k := range keys {
		op := Op{Kind: OpRead, Node: leader.Name, Client: client, Key: k, Invoke: r.clock.Now()}
		var inRecovery bool
		var walfile string
		err := conn.QueryRow(ctx, readSQL, k).Scan(&op.Value, &inRecovery, &walfile)
		op.Complete = r.clock.Now()
		if err != nil || inRecovery {
			return fmt.Errorf("final read of row %d on %s: %w (in recovery %v)", k, leader.Name, err, inRecovery)
		}
		op.Timeline = walfileTimeline(walfile)
		r.hist.Add(op)
	}
	return nil
}
