package agent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/bytesize"
	"github.com/regent-ha/regent/postgres"
)

// decide is the HA loop's brain: a pure function from one Snapshot to one
// Plan. It does no I/O and reads no clock; every branch is table-tested
// (decide_test.go; `go test -cover` shows each function of this file at
// 100%). The rules are ordered: the first that applies wins, and the
// helpers below rely on what the earlier rules already ruled out (noted
// at the top of each).
func decide(s Snapshot) Plan {
	if p, ok := fenceCheck(s.Lease, s.Now); ok {
		return p
	}
	if s.Busy != "" {
		return plan(ActWait, "", "%s running beside the loop; PostgreSQL and its data directory are its own until it ends", s.Busy)
	}
	if f := s.FastPath; f != nil && f.Verdict == VerdictRunning {
		// Whatever the key or the cluster does meanwhile (its lease ran
		// out, a failover request, maintenance mode): one run at a time,
		// and its result decides the next step.
		return plan(ActWait, "", "fast failover: fence.command against %s is running beside the loop", f.Leader)
	}
	if s.View == nil {
		return plan(ActWait, "", "no cluster view from etcd yet")
	}
	if s.PG.DataDirEmpty {
		if s.Config.Pause && !s.Lease.Leading {
			// Maintenance mode creates nothing: no clone, no bootstrap.
			return decidePaused(s)
		}
		return decideEmptyDataDir(s)
	}
	if p, ok := checkSystemID(s); ok {
		return p
	}
	if s.Lease.Leading && s.Quiescing {
		// One rule for a running and a stopped PostgreSQL: the switchover
		// step stops it (and restores it) itself.
		return plan(ActWait, "", "switchover: writes quiesced; PostgreSQL stopped on purpose while the lease is held")
	}
	switch {
	case s.Restart == RestartStopping:
		return plan(ActWait, "", "restart: PostgreSQL is stopping beside the loop; the lease is renewed meanwhile, then it starts again")
	case s.Restart == RestartStarting && !s.PG.Running && s.Lease.Leading && s.standby():
		return plan(ActStartStandbyLeader, "", "restart: stopped; starting PostgreSQL again as the standby leader (the lease is held)")
	case s.Restart == RestartStarting && !s.PG.Running && s.Lease.Leading:
		return plan(ActStartPrimary, "", "restart: stopped; starting PostgreSQL again as the primary (the lease is held)")
	case s.Restart == RestartStarting && !s.PG.Running:
		leader := s.leaderName()
		if leader == s.Name {
			leader = "" // a key from an earlier session: no upstream
		}
		return plan(ActStartReplica, leader, "restart: stopped; starting PostgreSQL again read-only (I do not hold the lease)")
	}
	if s.Config.Pause {
		return decidePaused(s)
	}
	if !s.PG.Running {
		return decideStopped(s)
	}
	return decideRunning(s)
}

// fenceCheck is the safety invariant (DESIGN §2): a leader past
// t_renew + ttl − safety_margin stops serving writes before etcd can expire
// its lease. The loop also calls it first thing on every tick, before any
// I/O, so a process waking from a freeze fences before doing anything else.
func fenceCheck(l LeaseState, now time.Time) (Plan, bool) {
	if skipSelfFencing {
		return Plan{}, false
	}
	if l.Unfenced {
		return plan(ActFence, "", "an earlier fence could not stop PostgreSQL; fencing again (leader key and watchdog kept)"), true
	}
	if !l.Leading || now.Before(l.Deadline) {
		return Plan{}, false
	}
	return plan(ActFence, "", "lease deadline passed %s ago (no acknowledged renewal in time); fencing: immediate stop, restart read-only",
		now.Sub(l.Deadline).Round(time.Millisecond)), true
}

func decideEmptyDataDir(s Snapshot) Plan {
	leader := s.leaderName()
	switch {
	case leader == s.Name:
		if s.Lease.Leading && s.standby() && s.Config.StandbyCluster.Host != "" {
			return plan(ActCloneRemote, "", "standby leader with an empty data directory (a failed rewind); cloning the remote cluster again, keeping the leader key")
		}
		if s.Lease.Leading {
			return plan(ActRelease, "", "I hold the leader key but my data directory is empty; releasing it")
		}
		return plan(ActWait, "", "leader key names me but my data directory is empty; waiting for the key to expire")
	case leader != "":
		if _, ok := s.member(leader); !ok {
			return plan(ActWait, "", "data directory is empty; waiting for leader %s to publish its member key", leader)
		}
		return plan(ActClone, leader, "data directory is empty; cloning from leader %s", leader)
	case s.View.Initialize == nil:
		if s.Tags.NoFailover() {
			return plan(ActWait, "", "cluster is not initialized and I am tagged nofailover; waiting for another member to bootstrap it")
		}
		if !s.ViewFresh {
			return plan(ActWait, "", "cluster view is stale; not bootstrapping")
		}
		if !s.WatchdogUsable {
			return plan(ActWait, "", "cluster is not initialized and my required watchdog is unusable; waiting for another member to bootstrap it")
		}
		if s.standby() {
			return plan(ActBootstrapStandby, "", "cluster is not initialized and standby_cluster is set; racing to bootstrap it as a copy of the remote cluster")
		}
		return plan(ActBootstrap, "", "cluster is not initialized; racing to bootstrap it")
	case *s.View.Initialize == "":
		return plan(ActWait, "", "another member is bootstrapping the cluster")
	case s.CreateWithoutLeader:
		return plan(ActClone, "", "data directory is empty and the cluster has no leader; creating a replica with a no_leader method")
	default:
		return plan(ActWait, "", "cluster is initialized but has no leader to clone from")
	}
}

// checkSystemID refuses to run a data directory that belongs to another
// cluster: joining it would corrupt both.
func checkSystemID(s Snapshot) (Plan, bool) {
	init := s.View.Initialize
	if init == nil || *init == "" || s.PG.SystemID == 0 {
		return Plan{}, false
	}
	want, err := strconv.ParseUint(*init, 10, 64)
	if err != nil || want == s.PG.SystemID {
		return Plan{}, false
	}
	return plan(ActRefuse, "", "database system identifier %d differs from the cluster's %d (initialize key): this data directory belongs to another cluster; refusing to join",
		s.PG.SystemID, want), true
}

// decideStopped: PostgreSQL is not running, the data directory is not
// empty, not paused, and a leader is not quiescing (decide ruled those out).
func decideStopped(s Snapshot) Plan {
	if s.Lease.Leading {
		down := s.Now.Sub(s.PG.DownSince)
		if (s.PG.DownSince.IsZero() || down < s.Config.PrimaryStartTimeout) && s.standby() {
			return plan(ActStartStandbyLeader, "", "PostgreSQL is not running on the standby leader; starting it in recovery following the remote cluster (down %s of primary_start_timeout %s)",
				down.Round(time.Millisecond), s.Config.PrimaryStartTimeout)
		}
		if s.PG.DownSince.IsZero() || down < s.Config.PrimaryStartTimeout {
			return plan(ActStartPrimary, "", "PostgreSQL is not running on the leader; restarting it in place (down %s of primary_start_timeout %s)",
				down.Round(time.Millisecond), s.Config.PrimaryStartTimeout)
		}
		return plan(ActRelease, "", "PostgreSQL has been down %s ≥ primary_start_timeout %s; releasing the leader key so a replica takes over",
			down.Round(time.Millisecond), s.Config.PrimaryStartTimeout)
	}
	switch leader := s.leaderName(); leader {
	case s.Name:
		return plan(ActStartReplica, "", "leader key names me from an earlier session; starting read-only until it expires")
	case "":
		return plan(ActStartReplica, "", "PostgreSQL is not running and the cluster has no leader; starting read-only")
	default:
		return plan(ActStartReplica, leader, "PostgreSQL is not running; starting as a replica of %s", leader)
	}
}

// decideRunning: PostgreSQL runs, not paused, and a leader is not
// quiescing (decide ruled those out).
func decideRunning(s Snapshot) Plan {
	st := s.PG.Status
	leader := s.leaderName()
	if s.Lease.Leading {
		if !s.WatchdogUsable {
			return plan(ActRelease, "", "watchdog is required but unusable; stepping down: stop PostgreSQL, then release the leader key")
		}
		if s.standby() {
			return decideStandbyLeader(s)
		}
		if st.InRecovery {
			return plan(ActPromote, "", "I hold the leader key and PostgreSQL is in recovery; promoting")
		}
		return plan(ActLead, "", "leading: PostgreSQL is the primary and the lease is held")
	}
	if !st.InRecovery && skipSelfFencing {
		return plan(ActWait, "", "UNSAFE build: keeping a primary without the lease")
	}
	if !st.InRecovery {
		// A writable PostgreSQL without the lease: safety first, always.
		switch leader {
		case "":
			return plan(ActDemote, "", "PostgreSQL is a primary but the cluster has no leader and I do not hold the lease; demoting before racing as a replica")
		case s.Name:
			return plan(ActDemote, "", "PostgreSQL is a primary but the leader key naming me belongs to an earlier session; demoting")
		default:
			return plan(ActDemote, leader, "PostgreSQL is a primary but %s holds the leader key; demoting", leader)
		}
	}
	switch {
	case s.staleOwnKey():
		return plan(ActRelease, "", "the leader key is still on my lease although I no longer lead; releasing it so the cluster can elect")
	case leader == s.Name:
		return plan(ActWait, "", "leader key names me from an earlier session; waiting for it to expire")
	case leader == "" && s.failsafeBlock() != "":
		return plan(ActWait, "", "leader key gone, but %s; not racing", s.failsafeBlock())
	case leader == "" && s.View.Failover.Member == s.Name:
		return decideDesignated(s)
	case leader == "" && s.designatedOther():
		return plan(ActWait, "", "switchover/failover to %s requested; only it may take the leader key", s.View.Failover.Member)
	case leader == "":
		return decideElection(s)
	case s.FastPath != nil:
		return decideFastPath(s)
	default:
		return plan(ActFollow, leader, "following leader %s", leader)
	}
}

// decidePaused is maintenance mode (patroni-compat.md §3.9): the agent never
// starts, stops, promotes or demotes PostgreSQL on its own. The lock
// follows what the operator does; only an explicit switchover or failover
// to a named candidate promotes. The lease deadline still fences (checked
// before this): Regent never lets a primary outlive its lease.
func decidePaused(s Snapshot) Plan {
	st := s.PG.Status
	leader := s.leaderName()
	primary := s.PG.Running && !st.InRecovery
	switch {
	case s.PG.DataDirEmpty:
		return plan(ActWait, "", "paused: data directory is empty; not bootstrapping or cloning")
	case s.Lease.Leading && primary:
		return plan(ActLead, "", "paused: leading (PostgreSQL is the primary)")
	case s.Lease.Leading && s.PG.Running && st.InRecovery && s.standby():
		return plan(ActStandbyLead, "", "paused: standby leader (PostgreSQL stays in recovery)")
	case s.Lease.Leading && s.PG.Running && s.View.Failover.Member == s.Name:
		return plan(ActPromote, "", "paused: explicit failover to me; promoting")
	case s.Lease.Leading:
		return plan(ActRelease, "", "paused: PostgreSQL is not a running primary; releasing the leader key")
	case s.staleOwnKey():
		return plan(ActRelease, "", "paused: the leader key is still on my lease although I no longer lead; releasing it")
	case !s.PG.Running:
		return plan(ActWait, "", "paused: PostgreSQL is not running; not starting it")
	case leader == "" && (primary || s.View.Failover.Member == s.Name) && s.failsafeBlock() != "":
		return plan(ActWait, "", "paused: the cluster has no leader, but %s; not taking the leader key", s.failsafeBlock())
	case primary && leader == "":
		return plan(ActAcquire, "", "paused: PostgreSQL runs as primary and the cluster has no leader; taking the leader key")
	case primary && leader != s.Name:
		return plan(ActWait, "", "paused: PostgreSQL is a primary while %s holds the leader key (parallel primaries: resolve by hand)", orUnknown(leader))
	case leader == "" && s.View.Failover.Member == s.Name:
		return decidePausedFailover(s)
	case leader != "" && leader != s.Name:
		return plan(ActFollow, leader, "paused: following leader %s", leader)
	}
	return plan(ActWait, "", "paused: no automatic action")
}

// failsafeBlock is why this member must not take the leader key or
// promote ("" when failsafe forbids nothing): a leader's failsafe call
// younger than its ttl (that leader may be serving writes without etcd;
// whatever failsafe_mode says now, the hold was given), or, with
// failsafe_mode on, a /failsafe key that does not name this member (it was
// not in the topology the leader calls, so the leader cannot know it is
// there: Patroni's rule).
func (s *Snapshot) failsafeBlock() string {
	if h := s.FailsafeHold; h.Active(s.Now) && h.Leader != s.Name {
		return fmt.Sprintf("failsafe: leader %s confirmed %s ago that it still leads without etcd (the hold lasts %s)",
			h.Leader, s.Now.Sub(h.At).Round(time.Millisecond), h.TTL)
	}
	if s.Config.FailsafeMode && s.FailsafeTopology != nil {
		if _, ok := s.FailsafeTopology[s.Name]; !ok {
			return "failsafe mode: the /failsafe key does not name me (I am not in the topology the leader checks)"
		}
	}
	return ""
}

// designatedOther: the failover key names another member that can still
// take over (its member key exists and the cluster has not been leaderless
// for over 2·ttl); others then stand aside. The caller already handled a
// key naming this member.
func (s *Snapshot) designatedOther() bool {
	f := s.View.Failover
	if f.Member == "" {
		return false
	}
	if _, ok := s.member(f.Member); !ok {
		return false
	}
	return s.LeaderlessSince.IsZero() || s.Now.Sub(s.LeaderlessSince) < 2*s.Config.TTL
}

// decidePausedFailover: a manual failover to this member while paused and
// leaderless. Nothing fenced the former primary: in maintenance mode its
// agent does not stop PostgreSQL, and may itself be stopped with
// PostgreSQL left writable (Patroni's behaviour too). So promote only when
// its stop is confirmed — its live agent publishes it as not running, or
// fence.command will run against it first (race: exit 0 or no promotion) —
// or when the operator vouches for it (assume_old_primary_down). A member
// seen running as a primary refuses even that.
func decidePausedFailover(s Snapshot) Plan {
	for _, p := range s.Peers {
		if p.Reachable && !p.InRecovery && PGRunState(p.State) == PGRunning {
			return plan(ActWait, "", "paused: failover to me requested, but %s runs as a primary; stop it first", p.Name)
		}
	}
	prev := s.PreviousLeader
	m, seen := s.member(prev)
	switch {
	case s.View.Failover.AssumeOldPrimaryDown:
		return decideDesignated(s)
	case prev == "":
		return plan(ActWait, "", "paused: failover to me requested, but I cannot tell which member was the primary, so nobody confirmed it stopped; stop it and repeat the failover with assume_old_primary_down")
	case prev == s.Name || (seen && PGRunState(m.State) != PGRunning):
		return decideDesignated(s) // its own agent reports PostgreSQL down
	case s.StonithConfigured:
		return decideDesignated(s) // race runs fence.command against it first
	}
	return plan(ActWait, "", "paused: failover to me requested, but the former primary %s may still accept writes (nobody confirmed it stopped: its agent is gone or reports it running); stop it and repeat the failover with assume_old_primary_down", prev)
}

// decideDesignated: this member is the named candidate of a switchover or
// failover. It races without comparing peers, but a planned switchover's
// candidate first catches up with the old leader's final LSN
// (switchover.Record.CaughtUp).
func decideDesignated(s Snapshot) Plan {
	st := s.PG.Status
	if r := s.Switchover; r != nil && r.To == s.Name && r.FinalLSN > 0 && !r.CaughtUp(st.ReplayLSN) {
		return plan(ActWait, "", "designated candidate: replayed %s, waiting to catch up with the old leader's final LSN %s", st.ReplayLSN, postgres.LSN(r.FinalLSN))
	}
	if s.Tags.NoFailover() {
		return plan(ActWait, "", "named as candidate but tagged nofailover; not racing")
	}
	if s.Config.SynchronousMode.Enabled() && s.View.Sync.Leader != "" && !s.View.Sync.Matches(s.Name) {
		return plan(ActWait, "", "named as candidate but not a synchronous standby; not racing")
	}
	if !s.WatchdogUsable {
		return plan(ActWait, "", "named as candidate but my required watchdog is unusable; not racing")
	}
	return plan(ActRace, "", "designated candidate (failover key names me, requested by %s); racing", orUnknown(s.View.Failover.Leader))
}

func orUnknown(s string) string {
	if s == "" {
		return "an operator"
	}
	return s
}

// decideElection runs when the cluster has no leader and this member is a
// running replica: race only when eligible and no reachable eligible peer
// is ahead (WAL position, then failover_priority, then name), so usually
// exactly one member races (DESIGN §4).
func decideElection(s Snapshot) Plan {
	e := elect(s)
	if !e.Race {
		return Plan{Action: Action{Kind: ActWait}, Reason: "not racing for the leader key: " + strings.Join(e.Self.Reasons, "; "), Election: &e}
	}
	var others []string
	for _, c := range e.Candidates {
		others = append(others, c.String())
	}
	reason := fmt.Sprintf("leader key gone; I am the most advanced eligible member (%s tl%d", e.Self.WAL, e.Self.Timeline)
	if len(others) > 0 {
		reason += "; peers: " + strings.Join(others, ", ")
	}
	if v := s.View.Sync; s.Config.SynchronousMode.Quorum() && v.Leader != "" && v.Leader != s.Name {
		seen, _ := quorumVotes(s, e.Self)
		reason += fmt.Sprintf("; quorum commit: saw %d of the set %v, need %d", seen, v.Standbys(), v.QuorumValue()+1)
	}
	return Plan{Action: Action{Kind: ActRace}, Reason: reason + "); racing", Election: &e}
}

// elect evaluates the candidate rules for this member against its peers.
// Self.Reasons lists why it must not race; empty means it races.
func elect(s Snapshot) Election {
	st := s.PG.Status
	self := Candidate{Name: s.Name, Reachable: true, WAL: st.WALPosition(), Timeline: int(st.Timeline), Priority: s.Tags.FailoverPriority()}
	var block []string
	if !s.ViewFresh {
		block = append(block, "cluster view is stale")
	}
	if s.Tags.NoFailover() {
		block = append(block, "tag nofailover")
	}
	if !s.WatchdogUsable {
		block = append(block, "watchdog required but unusable")
	}
	syncOnly := s.Config.SynchronousMode.Enabled() && s.View.Sync.Leader != ""
	if syncOnly && !s.View.Sync.Matches(s.Name) {
		block = append(block, fmt.Sprintf("synchronous mode: not a synchronous standby (sync key: %s)", strings.Join(s.View.Sync.Standbys(), ",")))
	}
	if why := raceBackoff(s); why != "" {
		block = append(block, why)
	}
	if tl := s.View.Timeline(); self.Timeline < tl {
		block = append(block, fmt.Sprintf("timeline %d is behind the cluster timeline %d", self.Timeline, tl))
	}
	if optime := s.View.Status.Optime; optime > uint64(self.WAL) && int64(optime-uint64(self.WAL)) > s.Config.MaximumLagOnFailover {
		block = append(block, fmt.Sprintf("lag %s > maximum_lag_on_failover %s (last known leader position %d, mine %s)",
			bytesize.Format(int64(optime-uint64(self.WAL))), bytesize.Format(s.Config.MaximumLagOnFailover), optime, self.WAL))
	}
	peers := append([]PeerStatus(nil), s.Peers...)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	var cands []Candidate
	for _, p := range peers {
		if syncOnly && (!s.View.Sync.Matches(p.Name) || (p.Name == s.View.Sync.Leader && p.Reachable && p.InRecovery)) {
			// Only synchronous standbys compete; the former sync leader in
			// recovery cannot win either (Patroni skips it too). A peer still
			// running as a primary is never skipped.
			continue
		}
		c, why := comparePeer(self, p)
		cands = append(cands, c)
		if why != "" {
			block = append(block, why)
		}
	}
	if syncOnly && s.Config.SynchronousMode.Quorum() && s.View.Sync.Matches(s.Name) && s.View.Sync.Leader != s.Name {
		// Quorum commit: the most advanced of q+1 set members holds every
		// acknowledged commit; fewer seen, and it may not (agent/quorum.go).
		_, why := quorumVotes(s, self)
		block = append(block, why...)
	}
	self.Eligible = len(block) == 0
	self.Reasons = block
	return Election{Self: self, Candidates: cands, Race: self.Eligible}
}

// comparePeer returns the peer as a candidate and, when the peer must win
// over self, the reason self stands down.
func comparePeer(self Candidate, p PeerStatus) (Candidate, string) {
	c := Candidate{Name: p.Name, Reachable: p.Reachable, WAL: p.WAL, Timeline: p.Timeline, Priority: p.Priority}
	switch {
	case !p.Reachable:
		c.Reasons = append(c.Reasons, "unreachable")
		return c, ""
	case !p.InRecovery:
		c.Reasons = append(c.Reasons, "running as a primary")
		return c, fmt.Sprintf("%s is running as a primary", p.Name)
	case p.NoFailover:
		c.Reasons = append(c.Reasons, "tag nofailover")
		return c, ""
	case p.WatchdogFailed:
		c.Reasons = append(c.Reasons, "watchdog failed")
		return c, ""
	}
	c.Eligible = true
	switch {
	case p.WAL > self.WAL:
		return c, fmt.Sprintf("%s is more advanced (%s > %s)", p.Name, p.WAL, self.WAL)
	case p.WAL < self.WAL:
		return c, ""
	case p.Priority > self.Priority:
		return c, fmt.Sprintf("%s is equally advanced (%s) with a higher failover_priority (%d > %d)", p.Name, p.WAL, p.Priority, self.Priority)
	case p.Priority == self.Priority && p.Name < self.Name:
		return c, fmt.Sprintf("%s is equally advanced (%s) and wins the tie-break by name", p.Name, p.WAL)
	}
	return c, ""
}
