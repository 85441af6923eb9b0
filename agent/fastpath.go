package agent

// The fence-confirmed fast path (fence.fast_failover): a leader that is
// gone is replaced as soon as fence.command confirms it can no longer
// acknowledge writes, instead of after its lease expires.
//
//  1. Suspect: a replica suspects the leader when its WAL receiver gets
//     nothing from it and the leader's REST API and PostgreSQL both fail a
//     bounded probe (suspectLeader). It publishes the suspicion in
//     suspects/<member>, on its session lease, and deletes it when the
//     suspicion ends.
//  2. Agree: a majority of the members other than the leader (itself
//     included) suspect the same leader key revision, each for at least
//     suspect_after on this member's clock (agreement).
//  3. Fence: the best candidate (elect: the same rules as a leaderless
//     election) runs fence.command against the leader beside the loop,
//     bounded by fence.timeout.
//  4. Take over: on exit 0 only, it deletes the leader key with a compare
//     on the suspected ModRevision (a failed compare: something changed,
//     the fast path is aborted) and races for the key at once. A hook that
//     fails or times out falls back to the lease expiry.
//
// Safety: the fast path never lets two nodes accept writes. The hook's exit
// 0 means "the old primary can no longer acknowledge writes" (powered off,
// or cut off from its clients and replicas); only after it does anyone
// delete the old key, and only the key that was suspected (its
// ModRevision). The old primary's own agent, if it still runs and reaches
// etcd, finds the key gone at its next renewal (CheckLeader fails), loses
// the leadership and demotes: a leader that lost its key never re-creates
// it. Nothing else in the lease rule changes: without an exit 0 the key
// stays until the lease expires, as without the fast path.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/secret"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// LeaderProbe is one bounded look at the leader from a replica.
type LeaderProbe struct {
	// APIReachable: its REST API answered GET api_url.
	APIReachable bool
	// PGReachable: its postmaster answered (a protocol-level probe: a
	// frozen host still completes TCP handshakes in the kernel).
	PGReachable bool
}

// LeaderProber probes the leader's REST API and PostgreSQL, within ctx.
// *HTTPPeers implements it.
type LeaderProber interface {
	ProbeLeader(ctx context.Context, m dcs.Member) LeaderProbe
}

// SuspectInput is what suspectLeader classifies.
type SuspectInput struct {
	Probe LeaderProbe
	// Streaming: the WAL receiver streams from an upstream.
	Streaming bool
	// Received is this replica's receive position now; SuspectedAt the
	// position when the current suspicion began (Suspecting).
	Received, SuspectedAt postgres.LSN
	Suspecting            bool
}

// suspectLeader: the leader is suspected gone when neither its REST API
// nor its PostgreSQL answers and the WAL receiver gets nothing from it —
// it does not stream, or no WAL arrived since the suspicion began. A
// frozen or cut-off primary can leave the receiver "streaming" until
// wal_receiver_timeout (60 s by default), so that state alone does not
// clear a suspicion; WAL still arriving does.
func suspectLeader(in SuspectInput) bool {
	if in.Probe.APIReachable || in.Probe.PGReachable {
		return false
	}
	if in.Suspecting && in.Streaming && in.Received != in.SuspectedAt {
		return false
	}
	return true
}

// agreement returns the members (sorted) whose suspicion of the current
// leader key has lasted at least after, and how many make a majority of
// voters (the members other than the leader). held maps a member to how
// long this member has seen its suspicion (its own: how long it holds).
func agreement(voters []string, held map[string]time.Duration, after time.Duration) (agreed []string, need int) {
	for _, v := range voters {
		if d, ok := held[v]; ok && d >= after {
			agreed = append(agreed, v)
		}
	}
	slices.Sort(agreed)
	return agreed, len(voters)/2 + 1
}

// FenceVerdict is the fast path's state for the current leader key.
type FenceVerdict string

const (
	// VerdictNone: the hook has not run for this key.
	VerdictNone FenceVerdict = ""
	// VerdictRunning: the hook runs beside the loop.
	VerdictRunning FenceVerdict = "running"
	// VerdictFenced: the hook exited 0: take over.
	VerdictFenced FenceVerdict = "fenced"
	// VerdictFallback: the hook failed or timed out: wait for the lease.
	VerdictFallback FenceVerdict = "fallback"
	// VerdictAborted: the key changed under the delete: stand aside.
	VerdictAborted FenceVerdict = "aborted"
)

// fenceVerdict classifies the hook's run: exit 0 (and nothing else) is a
// confirmed fence; anything else falls back to the lease, with the reason.
func fenceVerdict(res fencing.HookResult, err error) (FenceVerdict, string) {
	switch {
	case err != nil:
		return VerdictFallback, err.Error()
	case !res.Ran:
		return VerdictFallback, "fence.command did not run"
	case res.ExitCode != 0:
		return VerdictFallback, fmt.Sprintf("fence.command exited %d", res.ExitCode)
	}
	return VerdictFenced, ""
}

// FastPathView is the fast path's part of the Snapshot (nil when it does
// not apply: disabled, no leader key held by another member, not a
// running replica).
type FastPathView struct {
	Leader    string
	LeaderRev int64
	// Suspecting: this member suspects the leader now.
	Suspecting bool
	// Agreed: the members whose suspicion lasted suspect_after (self
	// included); Need is a majority of the members other than the leader.
	Agreed []string
	Need   int
	// SuspectAfter is fence.suspect_after.
	SuspectAfter time.Duration
	// Verdict is the hook's outcome for this key; Why the fallback's or
	// abort's reason.
	Verdict FenceVerdict
	Why     string
	// Election is the one that chose this member to fence (the record of
	// the takeover).
	Election *Election
}

// decideFastPath: a running replica, a leader key held by another member,
// no hook running (decide and decideRunning ruled out the rest). It follows the leader unless the
// fast path acts: fence it (agreed, best candidate) or take over (fenced).
func decideFastPath(s Snapshot) Plan {
	f := s.FastPath
	follow := func(format string, args ...any) Plan {
		return plan(ActFollow, f.Leader, "following leader %s; fast failover: "+format, append([]any{f.Leader}, args...)...)
	}
	switch f.Verdict {
	case VerdictFenced:
		return Plan{Action: Action{Kind: ActFastTakeover, Leader: f.Leader},
			Reason:   fmt.Sprintf("fast failover: fence.command confirmed %s can no longer acknowledge writes; deleting its leader key (revision %d) and racing", f.Leader, f.LeaderRev),
			Election: f.Election}
	case VerdictFallback:
		return follow("fence.command failed (%s); waiting for the lease to expire", f.Why)
	case VerdictAborted:
		return follow("aborted (%s)", f.Why)
	}
	switch {
	case !f.Suspecting:
		return plan(ActFollow, f.Leader, "following leader %s", f.Leader)
	case len(f.Agreed) < f.Need:
		return follow("suspected, %d of %d members agree long enough (%s)", len(f.Agreed), f.Need, strings.Join(f.Agreed, ","))
	case s.failsafeBlock() != "":
		return follow("suspected, but %s", s.failsafeBlock())
	}
	e := elect(s)
	if !e.Race {
		return follow("%s is gone by majority, but I am not the candidate: %s", f.Leader, strings.Join(e.Self.Reasons, "; "))
	}
	return Plan{Action: Action{Kind: ActFastFence, Leader: f.Leader},
		Reason: fmt.Sprintf("fast failover: %s is gone by majority (%s agree for suspect_after %s); I am the most advanced eligible member (%s); running fence.command against it",
			f.Leader, strings.Join(f.Agreed, ","), f.SuspectAfter, e.Self.WAL),
		Election: &e}
}

// fastState is the loop's memory of the fast path.
type fastState struct {
	// suspect is this member's own suspicion (zero: none).
	suspect suspicion
	// published is the suspicion its suspects/<member> key holds, and on
	// which session lease (a new lease lost the key).
	published      suspicion
	publishedLease int64
	// seen: when this member first saw each peer's suspicion of the
	// current leader key (its own clock: no cross-host comparison).
	seen map[string]time.Time
	// observedAt: when the last tick read the suspicions (fastWake).
	observedAt time.Time
	// aliveAt: the last probe the leader answered.
	aliveAt time.Time
	// job is the hook running beside the loop; outcome its result for
	// the key it fenced.
	job     *job
	outcome *fenceOutcome
}

type suspicion struct {
	Leader    string
	Rev       int64
	Since     time.Time // this agent's clock
	SinceWall time.Time
	LSN       postgres.LSN
}

// fenceOutcome is the hook's run against one leader key revision.
type fenceOutcome struct {
	Leader  string
	Rev     int64
	Verdict FenceVerdict
	Why     string
	Record  *restapi.StonithRecord
	// SuspectedAt and AgreedAt time the episode (this agent's clock).
	SuspectedAt, AgreedAt time.Time
	Election              *Election
}

// observeFastPath adds the fast path's view to s (the end of observe):
// the leader probe, this member's suspicion and its key, the peers'
// suspicions, and the peers' status once a majority agrees. Every call is
// bounded by the probe budget and ioDeadline.
func (a *Agent) observeFastPath(ctx context.Context, s *Snapshot) {
	f := &a.fast
	var l *dcs.Leader
	if s.View != nil {
		l = s.View.Leader
	}
	if !a.cfg.Fence.FastFailover || l == nil || l.Name == a.name || a.lease.leading || s.Config.Pause || !s.PG.Running || !s.PG.Status.InRecovery {
		if f.job != nil {
			// Whatever happened to the key meanwhile, the hook's run is
			// this member's until it ends: no second run from race.
			s.FastPath = &FastPathView{Leader: f.outcome.Leader, LeaderRev: f.outcome.Rev, Verdict: VerdictRunning}
		} else if l != nil || f.outcome == nil || f.outcome.Verdict != VerdictFenced {
			// A later episode fences afresh. A confirmed fence is kept
			// while no key exists (the lease ran out meanwhile): the
			// election's race then needs no second run (fastFenced).
			f.outcome = nil
		}
		f.suspect, f.seen = suspicion{}, nil
		a.syncSuspectKey(ctx)
		return
	}
	if o := f.outcome; o != nil && (o.Leader != l.Name || o.Rev != l.ModRevision) && f.job == nil {
		f.outcome = nil // a new leader key: the old verdict says nothing about it
	}
	if f.suspect.Leader != "" && (f.suspect.Leader != l.Name || f.suspect.Rev != l.ModRevision) {
		f.suspect = suspicion{}
	}
	view := &FastPathView{Leader: l.Name, LeaderRev: l.ModRevision, SuspectAfter: a.cfg.Fence.SuspectAfter}
	s.FastPath = view
	if o := f.outcome; o != nil {
		view.Verdict, view.Why, view.Election = o.Verdict, o.Why, o.Election
		return // decided for this key: no more probing
	}
	// Peers' suspicions are dated before the probe: the view already
	// held them then.
	seenAt := s.Now
	f.observedAt = seenAt
	a.noteSuspicion(ctx, s, l)
	view.Suspecting = f.suspect.Leader != ""
	a.syncSuspectKey(ctx)
	var voters []string
	held := map[string]time.Duration{}
	for name := range s.View.Members {
		if name != l.Name {
			voters = append(voters, name)
		}
	}
	if view.Suspecting {
		held[a.name] = s.Now.Sub(f.suspect.Since)
	}
	seen := map[string]time.Time{}
	for name, sus := range s.View.Suspects() {
		if name == a.name || sus.Leader != l.Name || sus.LeaderRevision != l.ModRevision {
			continue
		}
		first, ok := f.seen[name]
		if !ok {
			first = seenAt
		}
		seen[name], held[name] = first, s.Now.Sub(first)
	}
	f.seen = seen
	view.Agreed, view.Need = agreement(voters, held, view.SuspectAfter)
	if view.Suspecting && len(view.Agreed) >= view.Need {
		s.Peers = a.fetchPeers(ctx, s.View, l.Name)
		s.Now = a.now()
	}
}

// probeBound is how long the leader probe may take: half a loop_wait
// (a tick must not be spent waiting on a dead leader: every tick of a
// suspecting replica probes again), at most maxProbe and retry_timeout,
// at least minProbe.
func probeBound(loopWait, retry time.Duration) time.Duration {
	return max(minProbe, min(maxProbe, retry, loopWait/2))
}

// A live leader's REST API (it serves published state) and postmaster
// answer in milliseconds: maxProbe is a hundredfold margin, and every
// probe of a dead leader costs the fast path that long. Below minProbe a
// loaded but live host could miss its answer. A missed answer alone
// fences nobody: a majority must agree for suspect_after first.
const (
	maxProbe = 500 * time.Millisecond
	minProbe = 200 * time.Millisecond
)

// noteSuspicion probes the leader and starts, keeps or ends this member's
// suspicion.
func (a *Agent) noteSuspicion(ctx context.Context, s *Snapshot, l *dcs.Leader) {
	f := &a.fast
	pctx, cancel := context.WithTimeout(ctx, probeBound(a.dyn.LoopWait, a.dyn.RetryTimeout))
	defer cancel()
	pctx, cancel2 := context.WithDeadline(pctx, a.ioDeadline())
	defer cancel2()
	st := s.PG.Status
	// The probe runs every tick, WAL arriving or not: WAL that arrived
	// since the last tick may predate a freeze by a moment, and skipping
	// the probe for it would cost a busy cluster a whole tick.
	m, ok := s.View.Members[l.Name]
	if !ok || a.prober == nil {
		// Nothing to probe (no member key, no prober): never suspected.
		f.suspect = suspicion{}
		return
	}
	probe := a.prober.ProbeLeader(pctx, m)
	s.Now = a.now()
	in := SuspectInput{Probe: probe, Streaming: st.Streaming, Received: st.ReceiveLSN, SuspectedAt: f.suspect.LSN, Suspecting: f.suspect.Leader != ""}
	switch holds := suspectLeader(in); {
	case holds && !in.Suspecting:
		f.suspect = suspicion{Leader: l.Name, Rev: l.ModRevision, Since: s.Now, SinceWall: time.Now(), LSN: st.ReceiveLSN}
		a.log.Warn("fast failover: suspecting the leader is gone (no WAL from it; its REST API and PostgreSQL do not answer)", "leader", l.Name)
	case !holds && in.Suspecting:
		a.log.Info("fast failover: the leader answers again; suspicion withdrawn", "leader", l.Name)
		f.suspect = suspicion{}
	}
	if probe.APIReachable || probe.PGReachable {
		f.aliveAt = s.Now
	}
}

// syncSuspectKey makes suspects/<member> say what this member suspects:
// written on the session lease when a suspicion begins (or the lease
// changed), deleted when it ends. Bounded by ioContext; a failure is
// retried next tick.
func (a *Agent) syncSuspectKey(ctx context.Context) {
	f := &a.fast
	key := a.dcs.Keys().Suspect(a.name)
	cur, lease := f.suspect, a.dcs.Lease()
	if cur.Leader == f.published.Leader && cur.Rev == f.published.Rev && (cur.Leader == "" || lease == f.publishedLease) {
		return
	}
	wctx, cancel := a.ioContext(ctx)
	defer cancel()
	if cur.Leader == "" {
		if err := a.dcs.Delete(wctx, key, 0); err != nil {
			a.log.Warn("fast failover: cannot delete my suspicion key", "err", err)
			return
		}
		f.published = suspicion{}
		return
	}
	data, _ := json.Marshal(dcs.Suspicion{Leader: cur.Leader, LeaderRevision: cur.Rev, Since: cur.SinceWall.UTC().Format(time.RFC3339Nano)})
	if err := a.dcs.PutOnLease(wctx, key, data); err != nil {
		a.log.Warn("fast failover: cannot publish my suspicion", "err", err)
		return
	}
	f.published, f.publishedLease = cur, lease
}

// fetchPeers asks the other members (but skip, and those tagged
// nofailover) for their status, within peerTimeout: the election's input.
func (a *Agent) fetchPeers(ctx context.Context, v *dcs.Cluster, skip string) []PeerStatus {
	pctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	others := make(map[string]dcs.Member, len(v.Members))
	for name, m := range v.Members {
		if name != a.name && name != skip && m.APIURL != "" && !m.NoFailover() {
			others[name] = m
		}
	}
	return a.peers.Fetch(pctx, others)
}

// startFastFence runs fence.command against the suspected leader beside
// the loop (bounded by fence.timeout); its result is the next tick's
// input (fenceOutcome). The loop keeps ticking and renewing meanwhile.
func (a *Agent) startFastFence(ctx context.Context, s Snapshot, p Plan) {
	target := p.Action.Leader
	m := s.View.Members[target]
	o := &fenceOutcome{Leader: target, Rev: s.FastPath.LeaderRev, Verdict: VerdictRunning,
		SuspectedAt: a.fast.suspect.Since, AgreedAt: a.now(), Election: p.Election}
	a.fast.outcome = o
	a.log.Warn("fast failover: running fence.command against the leader", "target", target, "revision", o.Rev)
	var res fencing.HookResult
	a.fast.job = a.goBeside(ctx, "fast failover fence.command", func(ctx context.Context) error {
		var err error
		res, err = a.stonith.Run(ctx, target, m.ConnURL, a.cfg.Scope)
		return err
	}, func(err error) {
		a.fast.job = nil
		o.Record = &restapi.StonithRecord{Target: target, Ran: res.Ran, ExitCode: res.ExitCode, DurationMs: res.Duration.Milliseconds(),
			Output: secret.RedactText(res.Output), Error: secret.RedactText(res.Err)}
		if err != nil {
			o.Record.Error = secret.RedactText(err.Error())
		}
		o.Verdict, o.Why = fenceVerdict(res, err)
		if o.Verdict == VerdictFallback {
			o.Why = secret.RedactText(o.Why)
			a.record(restapi.Decision{Kind: "fast_failover_fallback", PreviousLeader: target, Stonith: o.Record,
				Candidates: electionRecord(o.Election),
				Reason:     fmt.Sprintf("fast failover: fence.command against %s failed (%s); falling back to the lease expiry", target, o.Why)})
		}
	})
}

// fastTakeover deletes the fenced leader's key with a compare on the
// revision that was suspected and fenced, then races for it at once. A
// failed compare means the key changed (the old leader released it, or
// another member took it): the fast path is aborted and the normal rules
// apply from the next tick.
func (a *Agent) fastTakeover(ctx context.Context, s Snapshot, p Plan) error {
	o := a.fast.outcome
	dctx, cancel := a.ioContext(ctx)
	err := a.dcs.Delete(dctx, a.dcs.Keys().Leader(), o.Rev)
	cancel()
	switch {
	case errors.Is(err, dcs.ErrConflict):
		o.Verdict, o.Why = VerdictAborted, fmt.Sprintf("the leader key changed since revision %d", o.Rev)
		a.record(restapi.Decision{Kind: "fast_failover_aborted", PreviousLeader: o.Leader, Stonith: o.Record,
			Reason: fmt.Sprintf("fast failover: %s was fenced, but %s; not racing over it", o.Leader, o.Why)})
		return nil
	case err != nil:
		return fmt.Errorf("fast failover: delete the leader key at revision %d: %w", o.Rev, err)
	}
	a.log.Warn("fast failover: deleted the fenced leader's key", "leader", o.Leader, "revision", o.Rev)
	// The episode's timings for the record: the leader was last seen
	// answering a probe, and suspected gone from the suspicion's start.
	a.leaderlessSince, a.previousLeader = o.SuspectedAt, o.Leader
	if !a.fast.aliveAt.IsZero() {
		a.leaderLastSeen = a.fast.aliveAt
	}
	return a.race(ctx, s, p)
}

// fastFenced returns the fast path's record when fence.command already
// confirmed target fenced (race does not run it again).
func (a *Agent) fastFenced(target string) (*restapi.StonithRecord, bool) {
	if o := a.fast.outcome; o != nil && o.Verdict == VerdictFenced && o.Leader == target {
		return o.Record, true
	}
	return nil, false
}

// fastAgreedAt is when the fast path's majority agreed, for the record of
// the failover it led to (zero without one).
func (a *Agent) fastAgreedAt() time.Time {
	if o := a.fast.outcome; o != nil && o.Verdict == VerdictFenced {
		return o.AgreedAt
	}
	return time.Time{}
}

// fastWake is the earliest moment a suspicion the last tick counted as
// too young comes of age (zero when none is pending): the loop wakes then
// instead of at the next loop_wait — at once when that moment passed
// during the tick itself (its probe).
func (a *Agent) fastWake() time.Time {
	f := &a.fast
	if f.suspect.Leader == "" || f.outcome != nil {
		return time.Time{}
	}
	after := a.cfg.Fence.SuspectAfter
	var wake time.Time
	for _, t := range append([]time.Time{f.suspect.Since}, slices.Collect(maps.Values(f.seen))...) {
		if at := t.Add(after); at.After(f.observedAt) && (wake.IsZero() || at.Before(wake)) {
			wake = at
		}
	}
	return wake
}
