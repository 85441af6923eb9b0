package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// Synchronous mode (patroni-compat.md §3.7). The leader keeps two things in
// step: synchronous_standby_names (what PostgreSQL waits for) and the sync
// key (who may be promoted). The key may only name a standby that cannot
// have missed an acknowledged commit, so it shrinks BEFORE the setting
// drops a standby and grows only AFTER a standby is confirmed synchronous
// under the current setting, with all WAL up to the moment the setting
// changed flushed.

// pickSyncStandbys chooses up to count standbys from pg_stat_replication:
// streaming, a member that runs and is not tagged nosync (nor
// sync_priority 0); members without nofailover first, then higher
// sync_priority, then already-sync, then most advanced (flush LSN).
func pickSyncStandbys(repl []postgres.Replica, members map[string]dcs.Member, count int) []string {
	type cand struct {
		name       string
		sync       bool
		flush      postgres.LSN
		nofailover bool
		priority   int
	}
	var cands []cand
	for _, r := range repl {
		m, ok := members[r.ApplicationName]
		tags := config.Tags(m.Tags)
		if !ok || r.State != "streaming" || PGRunState(m.State) != PGRunning || tags.NoSync() {
			continue
		}
		cands = append(cands, cand{r.ApplicationName, r.SyncState == "sync" || r.SyncState == "quorum", r.FlushLSN, m.NoFailover(), tags.SyncPriority()})
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.nofailover != b.nofailover {
			return !a.nofailover
		}
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		if a.sync != b.sync {
			return a.sync
		}
		if a.flush != b.flush {
			return a.flush > b.flush
		}
		return a.name < b.name
	})
	var out []string
	for _, c := range cands {
		if len(out) == count {
			break
		}
		out = append(out, c.name)
	}
	sort.Strings(out)
	return out
}

// confirmedSync returns the standbys PostgreSQL reports as synchronous
// under the current setting (names), having flushed at least sinceLSN.
func confirmedSync(repl []postgres.Replica, names []string, sinceLSN postgres.LSN) []string {
	var out []string
	for _, r := range repl {
		if (r.SyncState == "sync" || r.SyncState == "quorum") && slices.Contains(names, r.ApplicationName) && r.FlushLSN >= sinceLSN {
			out = append(out, r.ApplicationName)
		}
	}
	sort.Strings(out)
	return out
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ssnValue renders synchronous_standby_names for the picked standbys:
// "" (asynchronous), "*" (strict, none available), "pg2", or "2 (a,b)".
func ssnValue(picked []string, strict bool) string {
	if len(picked) == 0 {
		return ssnSpec{Star: strict}.String()
	}
	return ssnSpec{Num: len(picked), Names: picked}.String()
}

func quoteStandby(name string) string {
	if plainIdent.MatchString(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// ssnNames parses the names back out of a value ssnValue produced.
func ssnNames(v string) []string { return parseSSN(v).Names }

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// syncDecision is one tick of the leader's synchronous-mode upkeep, in
// the order manageSync carries it out.
type syncDecision struct {
	// Off: synchronous mode is off; the sync key is deleted (DeleteKey,
	// when one exists) and SSN is "".
	Off       bool
	DeleteKey bool
	// Shrink: write the sync key naming Shrunk before the setting changes
	// (the key names a standby no longer picked and confirmed, or another
	// leader). Growing then waits for the next tick's view.
	Shrink bool
	Shrunk []string
	// SSN is the synchronous_standby_names value to set.
	SSN string
	// Degraded: non-strict mode with no standby picked runs asynchronously
	// (reported once the setting is written, not on a shrink tick).
	Degraded bool
	// Grow: after the setting, write the sync key naming Grown (standbys
	// confirmed synchronous under the setting that was already in force).
	Grow  bool
	Grown []string
}

// decideSync is the leader's synchronous-mode rule over the snapshot:
// current is the synchronous_standby_names in force (names), changedAt
// the WAL position when it last changed.
func decideSync(s Snapshot, current []string, changedAt postgres.LSN) syncDecision {
	v := s.View
	if !s.Config.SynchronousMode.Enabled() {
		return syncDecision{Off: true, DeleteKey: v.SyncRev != 0 && v.Sync.Leader != ""}
	}
	repl := s.PG.Status.Replication
	picked := pickSyncStandbys(repl, v.Members, s.Config.SynchronousNodeCount)
	confirmed := confirmedSync(repl, current, changedAt)
	d := syncDecision{SSN: ssnValue(picked, s.Config.SynchronousModeStrict)}
	var inKey []string
	if v.Sync.Leader == s.Name {
		inKey = v.Sync.Standbys()
	}
	// 1. Shrink first: the key keeps only standbys still picked and confirmed.
	shrunk := intersect(intersect(inKey, picked), confirmed)
	if v.Sync.Leader != s.Name || !slices.Equal(shrunk, inKey) {
		d.Shrink, d.Shrunk = true, shrunk
		return d
	}
	// 2. Then the setting.
	d.Degraded = len(picked) == 0 && !s.Config.SynchronousModeStrict
	if !slices.Equal(ssnNames(d.SSN), current) {
		return d // grow only once PostgreSQL reports under the new setting
	}
	// 3. Grow: standbys confirmed synchronous under the current setting.
	if grown := intersect(picked, confirmed); !slices.Equal(grown, shrunk) {
		d.Grow, d.Grown = true, grown
	}
	return d
}

// ssnPending marks a synchronous_standby_names change (or a leadership
// start) whose effective WAL position is not known yet: nobody counts as
// confirmed until the next tick reads it.
const ssnPending = ^postgres.LSN(0)

// manageSync carries out decideSync (or decideQuorum) on the leader every
// tick.
func (a *Agent) manageSync(ctx context.Context, s Snapshot) error {
	if a.ssnChangedAt == 0 || a.ssnChangedAt == ssnPending {
		// Read after the reload of the last change (the previous tick), so
		// a standby flushed past it holds every commit acknowledged under
		// the setting before; 0 (unknown, e.g. a restarted agent) likewise.
		a.ssnChangedAt = ssnPending
		if lsn := s.PG.Status.CurrentLSN; lsn != 0 {
			a.ssnChangedAt = lsn
		}
	}
	cur := parseSSN(a.pg.SynchronousStandbyNames())
	if s.Config.SynchronousMode.Quorum() {
		return a.manageQuorum(ctx, s, cur)
	}
	changedAt := a.ssnChangedAt
	if cur.Any && cur.Num < len(cur.Names) {
		// Leaving quorum mode: a commit was acknowledged by any Num of the
		// list, so no one standby is sure to hold it; the key names only
		// this leader until the named setting is confirmed.
		changedAt = ssnPending
	}
	d := decideSync(s, cur.Names, changedAt)
	switch {
	case d.Off:
		a.syncDegraded = false
		if d.DeleteKey {
			if err := a.dcs.DeleteAsLeader(ctx, a.name, a.dcs.Keys().Sync(), s.View.SyncRev); err != nil {
				return fmt.Errorf("delete sync key: %w", err)
			}
		}
		return a.setSSN(ctx, d.SSN, s)
	case d.Shrink:
		if err := a.writeSyncKey(ctx, s.View, d.Shrunk); err != nil {
			return err
		}
		return a.setSSN(ctx, d.SSN, s)
	}
	if err := a.setSSN(ctx, d.SSN, s); err != nil {
		return err
	}
	a.reportDegraded(d.Degraded)
	if d.Grow {
		return a.writeSyncKey(ctx, s.View, d.Grown)
	}
	return nil
}

// setSSN writes synchronous_standby_names and reloads; it remembers the
// WAL position at the change, which a standby must have flushed before it
// counts as synchronous.
func (a *Agent) setSSN(ctx context.Context, value string, s Snapshot) error {
	changed, err := a.pg.SetSynchronousStandbyNames(value)
	if err != nil || !changed {
		return err
	}
	a.ssnChangedAt = ssnPending
	a.log.Info("synchronous_standby_names changed", "value", value)
	rctx, cancel := a.ioContext(ctx)
	defer cancel()
	return a.pg.Reload(rctx)
}

func (a *Agent) writeSyncKey(ctx context.Context, v *dcs.Cluster, standbys []string) error {
	return a.writeSyncKeyQuorum(ctx, v, standbys, nil)
}

// writeSyncKeyQuorum writes the sync key; quorum is set in quorum mode
// (Patroni 4's field), nil otherwise.
func (a *Agent) writeSyncKeyQuorum(ctx context.Context, v *dcs.Cluster, standbys []string, quorum *int) error {
	sync := dcs.Sync{Leader: a.name, Quorum: quorum}
	if len(standbys) > 0 {
		joined := strings.Join(standbys, ",")
		sync.SyncStandby = &joined
	}
	data, _ := json.Marshal(sync)
	if _, err := a.dcs.CASAsLeader(ctx, a.name, a.dcs.Keys().Sync(), data, v.SyncRev); err != nil {
		return fmt.Errorf("write sync key: %w", err)
	}
	if quorum != nil {
		a.log.Info("sync key updated", "sync_standby", standbys, "quorum", *quorum)
		return nil
	}
	a.log.Info("sync key updated", "sync_standby", standbys)
	return nil
}

// reportDegraded logs the transition into and out of asynchronous
// operation in non-strict synchronous mode.
func (a *Agent) reportDegraded(degraded bool) {
	if degraded != a.syncDegraded {
		if degraded {
			a.log.Warn("synchronous mode degraded: no synchronous standby available; running asynchronously (synchronous_mode_strict is off)")
		} else {
			a.log.Info("synchronous replication restored")
		}
	}
	a.syncDegraded = degraded
}

// prepareSyncPromotion: before promoting in synchronous mode, the sync key
// names only this member and PostgreSQL starts with "*" (strict) or "".
func (a *Agent) prepareSyncPromotion(ctx context.Context, v *dcs.Cluster) error {
	if !a.dyn.SynchronousMode.Enabled() {
		return nil
	}
	var quorum *int
	if a.dyn.SynchronousMode.Quorum() {
		quorum = new(int)
	}
	if err := a.writeSyncKeyQuorum(ctx, v, nil, quorum); err != nil {
		return err
	}
	a.ssnChangedAt = ssnPending
	_, err := a.pg.SetSynchronousStandbyNames(ssnValue(nil, a.dyn.SynchronousModeStrict))
	return err
}

// leaveSyncDuty is a stopping synchronous standby's courtesy
// (patroni-compat.md §3.7): it tags itself nosync and waits up to
// 2·loop_wait for the leader to drop it from the sync key and the setting,
// so commits do not hang on a standby that is going away.
func (a *Agent) leaveSyncDuty(ctx context.Context) {
	v := a.dcs.View()
	if !a.dyn.SynchronousMode.Enabled() || a.lease.leading || v == nil || v.Sync.Leader == a.name || !v.Sync.Matches(a.name) {
		return
	}
	a.log.Info("stopping: asking the leader to release me from synchronous duty")
	a.nosync = true
	a.publish(ctx)
	changed, cancel := a.dcs.Subscribe()
	defer cancel()
	wait := time.NewTimer(2 * a.dyn.LoopWait)
	defer wait.Stop()
	for {
		if v := a.dcs.View(); v == nil || !v.Sync.Matches(a.name) {
			a.log.Info("released from synchronous duty")
			return
		}
		select {
		case <-changed:
		case <-wait.C:
			a.log.Warn("not released from synchronous duty in time; stopping anyway")
			return
		case <-ctx.Done():
			return
		}
	}
}
