package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/regent-ha/regent/internal/linkproxy"
)

// FaultKind names a fault the scheduler can inject.
type FaultKind string

// The faults. "primary" is the leader at injection time; "replica" one of
// the others, at random.
const (
	// PartitionPrimaryEtcd cuts the primary from every etcd member (both
	// directions); replicas and clients still reach it.
	PartitionPrimaryEtcd FaultKind = "partition-primary-etcd"
	// PartitionPrimaryAll cuts the primary from etcd and from the
	// replicas; clients still reach it.
	PartitionPrimaryAll FaultKind = "partition-primary-all"
	// IsolatePrimary unplugs the primary's veth: no one reaches it.
	IsolatePrimary FaultKind = "isolate-primary"
	// AsymPrimaryToEtcd drops what the primary sends to etcd only.
	AsymPrimaryToEtcd FaultKind = "asym-primary-to-etcd"
	// AsymEtcdToPrimary drops what etcd sends to the primary only.
	AsymEtcdToPrimary FaultKind = "asym-etcd-to-primary"
	// PartitionReplica cuts a replica from etcd and from the primary.
	PartitionReplica FaultKind = "partition-replica"
	// KillAgentPrimary SIGKILLs the primary's agent (PostgreSQL runs on).
	KillAgentPrimary FaultKind = "kill-agent-primary"
	// KillPostgresPrimary SIGKILLs the primary's PostgreSQL.
	KillPostgresPrimary FaultKind = "kill-postgres-primary"
	// KillNodePrimary SIGKILLs both: a host crash.
	KillNodePrimary FaultKind = "kill-node-primary"
	// FreezeAgentPrimary SIGSTOPs the primary's agent.
	FreezeAgentPrimary FaultKind = "freeze-agent-primary"
	// FreezePostgresPrimary SIGSTOPs every process of the primary's
	// PostgreSQL: the postmaster, its backends, walsenders and auxiliary
	// processes (the agent runs on).
	FreezePostgresPrimary FaultKind = "freeze-postgres-primary"
	// FreezePostmasterPrimary SIGSTOPs the primary's postmaster alone: the
	// backends and walsenders it forked keep serving their connections,
	// new connections wait in the listen queue, and the agent runs on.
	FreezePostmasterPrimary FaultKind = "freeze-postmaster-primary"
	// FreezeNodePrimary SIGSTOPs both: a stalled host.
	FreezeNodePrimary FaultKind = "freeze-node-primary"
	// KillReplica SIGKILLs a replica's agent and PostgreSQL.
	KillReplica FaultKind = "kill-replica"
	// FreezeReplica SIGSTOPs a replica's agent and PostgreSQL.
	FreezeReplica FaultKind = "freeze-replica"
	// EtcdMemberLoss SIGKILLs an etcd follower.
	EtcdMemberLoss FaultKind = "etcd-member-loss"
	// EtcdLeaderLoss SIGKILLs the etcd raft leader.
	EtcdLeaderLoss FaultKind = "etcd-leader-loss"
	// EtcdQuorumLoss SIGKILLs the etcd leader and a follower.
	EtcdQuorumLoss FaultKind = "etcd-quorum-loss"
	// SlowEtcdPrimary delays the primary's etcd traffic, each way, by 0.2
	// to 2 s: from slower than usual to past retry_timeout.
	SlowEtcdPrimary FaultKind = "slow-etcd-primary"
	// LossyEtcdPrimary loses 10–50 % of the primary's etcd traffic, each
	// lost chunk arriving a retransmission timeout (0.2–1.5 s) late.
	LossyEtcdPrimary FaultKind = "lossy-etcd-primary"
	// SlowEtcdAll delays every node's etcd traffic by 0.2 to 1.5 s each
	// way (an overloaded etcd, as its clients see it).
	SlowEtcdAll FaultKind = "slow-etcd-all"

	// The failsafe kinds run with failsafe_mode on for the round (#17).

	// EtcdTotalLossFailsafe SIGKILLs every etcd member: the primary must
	// stay writable (the round's unavailability is the write gap).
	EtcdTotalLossFailsafe FaultKind = "etcd-total-loss-failsafe"
	// EtcdTotalLossPartitionFailsafe SIGKILLs every etcd member and cuts
	// a replica from the other nodes: the primary cannot reach every
	// member, so it fences by its deadline.
	EtcdTotalLossPartitionFailsafe FaultKind = "etcd-total-loss-partition-failsafe"
	// PartitionPrimaryEtcdFailsafe cuts the primary from every etcd
	// member (the replicas reach etcd and see its key expire, and must
	// not race while they hold its failsafe calls).
	PartitionPrimaryEtcdFailsafe FaultKind = "partition-primary-etcd-failsafe"
	// EtcdReturnsPartitionedFailsafe SIGKILLs every etcd member, cuts a
	// replica from the other nodes once the primary is in failsafe, and
	// heals etcd a ttl before the partition: etcd returns while the
	// replica, which reaches it, is partitioned from the primary.
	EtcdReturnsPartitionedFailsafe FaultKind = "etcd-returns-partitioned-failsafe"
	// EtcdQuorumLossFailsafe SIGKILLs the etcd leader and a follower: the
	// last member answers "etcdserver: no leader", an outage the primary
	// must bridge, not a lost key.
	EtcdQuorumLossFailsafe FaultKind = "etcd-quorum-loss-failsafe"

	// The fence kinds run with the harness's fence hook (fencehook.go) as
	// fence.command and fence.fast_failover on (#19); every other round
	// runs without them. They are not in the default mix: select them
	// with -chaos.faults (the alias "fence" names all three).

	// KillNodeFenced SIGKILLs the primary's agent and PostgreSQL, the hook
	// working: the replicas may fence it and take over before its lease
	// expires.
	KillNodeFenced FaultKind = "kill-node-fenced"
	// PartitionReplicasFenced cuts the primary from the other nodes but
	// not from etcd or the clients: it keeps renewing its lease and stays
	// writable (in asynchronous mode), so only the fence can stop it; no
	// write it acknowledges may be invoked after the hook confirmed it
	// dead (FenceCheck).
	PartitionReplicasFenced FaultKind = "partition-replicas-fenced"
	// KillNodeFenceFails SIGKILLs the primary's agent and PostgreSQL while
	// the hook fails (exit 1): nobody may take the leader key before the
	// old lease can have expired at etcd. The hook works again from the
	// heal.
	KillNodeFenceFails FaultKind = "kill-node-fence-fails"
)

// The routing kinds run only in routing mode (-chaos.routing: PgBouncer
// in front, every agent's routing: section naming it), where they join
// the default mix. Each brings its own switchover (the round's action,
// PATCH /switchover), which the fault meets at a routing step
// (docs/routing.md, "Failure modes").
const (
	// KillAgentAfterPause starts a switchover and SIGKILLs the primary's
	// agent as soon as PgBouncer shows the database paused: its lease
	// runs out, a replica wins the election, and that new primary's
	// failover repoint must resume PgBouncer.
	KillAgentAfterPause FaultKind = "kill-agent-after-pause"
	// PgBouncerCutCandidate cuts PgBouncer from the switchover's candidate
	// (both ways: its agent cannot reach the admin console) and starts the
	// switchover: the old primary pauses, the candidate promotes, its
	// repoint (and the CLEANUP retry) cannot reach PgBouncer.
	PgBouncerCutCandidate FaultKind = "pgbouncer-cut-candidate"
	// PgBouncerCutPrimary cuts PgBouncer from the primary and starts a
	// switchover: the pause fails, the switchover aborts before stopping
	// anything, the primary stays the primary.
	PgBouncerCutPrimary FaultKind = "pgbouncer-cut-primary"
)

// RoutingFaults is the alias "routing" of ParseFaults.
var RoutingFaults = []FaultKind{KillAgentAfterPause, PgBouncerCutCandidate, PgBouncerCutPrimary}

// FenceFaults is the alias "fence" of ParseFaults.
var FenceFaults = []FaultKind{KillNodeFenced, PartitionReplicasFenced, KillNodeFenceFails}

// faultSpec says how to inject and heal a kind, and what to measure.
type faultSpec struct {
	kind FaultKind
	// onReplica: the target is a replica, not the primary.
	onReplica bool
	// stopsAgent: the primary's agent stops running; the emulated
	// watchdog resets the node when its device would fire. Without a
	// watchdog nothing can fence that primary (by design: DESIGN §2, §6),
	// so these kinds run only in rounds with one.
	stopsAgent bool
	// failsafe: the round runs with failsafe_mode on (Run.setFailsafe).
	failsafe bool
	// fence: the round runs with the fence hook and the fast path
	// (Options.Fence); failFence: the hook fails while the fault holds.
	fence, failFence bool
	// routing: the kind needs routing mode, and the round a switchover
	// (planRounds pairs it with one); candidate: the switchover goes to
	// the fault's target.
	routing, candidate bool
	// standby: a standby-cluster kind (standby_faults.go), drawn only in
	// a run with -chaos.standby.
	standby bool
	// shape draws the shaping of a delay or loss fault.
	shape  func(rng *rand.Rand) linkproxy.Shaping
	inject func(ctx context.Context, f *fault) error
	heal   func(ctx context.Context, f *fault) error
}

// fault is one injection.
type fault struct {
	spec    *faultSpec
	c       *Cluster
	primary *Node             // the leader at injection
	node    *Node             // the target node
	members []*EtcdMember     // the etcd members killed
	order   []*EtcdMember     // the members in a random order
	reset   bool              // the emulated watchdog reset the node
	shape   linkproxy.Shaping // of a delay or loss fault
	note    string            // what the injection saw, for Target
}

// Target names what the fault hit.
func (f *fault) Target() string {
	if len(f.members) > 0 {
		var names []string
		for _, m := range f.members {
			names = append(names, m.Name)
		}
		return fmt.Sprint(names)
	}
	switch {
	case f.spec.kind == SlowEtcdAll:
		return "all " + f.shape.String()
	case f.spec.shape != nil:
		return f.node.Name + " " + f.shape.String()
	case f.note != "":
		return f.node.Name + " " + f.note
	}
	return f.node.Name
}

var specs = []*faultSpec{
	{kind: PartitionPrimaryEtcd, inject: cutFrom(true, false), heal: unblock},
	{kind: PartitionPrimaryAll, inject: cutFrom(true, true), heal: unblock},
	{kind: IsolatePrimary, inject: func(ctx context.Context, f *fault) error { return f.c.net.Detach(ctx, f.node.Host) },
		heal: func(ctx context.Context, f *fault) error { return f.c.net.Attach(ctx, f.node.Host) }},
	{kind: AsymPrimaryToEtcd, inject: oneWay(true), heal: unblock},
	{kind: AsymEtcdToPrimary, inject: oneWay(false), heal: unblock},
	{kind: PartitionReplica, onReplica: true, inject: cutFrom(true, true), heal: unblock},
	{kind: KillAgentPrimary, stopsAgent: true, inject: func(_ context.Context, f *fault) error { return f.node.KillAgent() }, heal: restartOrThaw},
	{kind: KillPostgresPrimary, inject: func(_ context.Context, f *fault) error { return f.node.KillPostgres() }, heal: nothing},
	{kind: KillNodePrimary, inject: func(_ context.Context, f *fault) error { return f.node.Kill() }, heal: restartOrThaw},
	{kind: FreezeAgentPrimary, stopsAgent: true, inject: freeze(true, false), heal: restartOrThaw},
	{kind: FreezePostgresPrimary, inject: freeze(false, true), heal: restartOrThaw},
	{kind: FreezePostmasterPrimary, inject: func(_ context.Context, f *fault) error { return f.node.FreezePostmaster() }, heal: restartOrThaw},
	{kind: FreezeNodePrimary, stopsAgent: true, inject: freeze(true, true), heal: restartOrThaw},
	{kind: KillReplica, onReplica: true, inject: func(_ context.Context, f *fault) error { return f.node.Kill() }, heal: restartOrThaw},
	{kind: FreezeReplica, onReplica: true, inject: freeze(true, true), heal: restartOrThaw},
	{kind: EtcdMemberLoss, inject: killMembers(0, 1), heal: restartMembers},
	{kind: EtcdLeaderLoss, inject: killMembers(1, 0), heal: restartMembers},
	{kind: EtcdQuorumLoss, inject: killMembers(1, 1), heal: restartMembers},
	{kind: SlowEtcdPrimary, shape: func(rng *rand.Rand) linkproxy.Shaping { return linkproxy.Shaping{Latency: between(rng, 200, 2000)} },
		inject: shapeLinks(false), heal: unshapeLinks},
	{kind: LossyEtcdPrimary, shape: func(rng *rand.Rand) linkproxy.Shaping {
		return linkproxy.Shaping{Loss: 0.1 + 0.4*rng.Float64(), RTO: between(rng, 200, 1500)}
	}, inject: shapeLinks(false), heal: unshapeLinks},
	{kind: SlowEtcdAll, shape: func(rng *rand.Rand) linkproxy.Shaping { return linkproxy.Shaping{Latency: between(rng, 200, 1500)} },
		inject: shapeLinks(true), heal: unshapeLinks},
	{kind: EtcdTotalLossFailsafe, failsafe: true, inject: killAllMembers, heal: restartMembers},
	{kind: EtcdTotalLossPartitionFailsafe, failsafe: true, onReplica: true,
		inject: all(killAllMembers, cutFrom(false, true)), heal: all(restartMembers, unblock)},
	{kind: PartitionPrimaryEtcdFailsafe, failsafe: true, inject: cutFrom(true, false), heal: unblock},
	{kind: EtcdReturnsPartitionedFailsafe, failsafe: true, onReplica: true,
		inject: all(killAllMembers, awaitFailsafe, cutFrom(false, true)), heal: all(restartMembers, holdTTL, unblock)},
	{kind: EtcdQuorumLossFailsafe, failsafe: true, inject: killMembers(1, 1), heal: restartMembers},
	{kind: KillNodeFenced, fence: true, inject: func(_ context.Context, f *fault) error { return f.node.Kill() },
		heal: all(awaitLeader, restartOrThaw)},
	{kind: PartitionReplicasFenced, fence: true, inject: cutFrom(false, true), heal: all(unblock, awaitLeader, restartOrThaw)},
	{kind: KillNodeFenceFails, fence: true, failFence: true,
		inject: all(failFence(true), func(_ context.Context, f *fault) error { return f.node.Kill() }),
		heal:   all(failFence(false), awaitLeader, restartOrThaw)},
	{kind: KillAgentAfterPause, routing: true, stopsAgent: true, inject: killAfterPause, heal: restartOrThaw},
	{kind: PgBouncerCutCandidate, routing: true, candidate: true, onReplica: true, inject: cutRouter, heal: unblock},
	{kind: PgBouncerCutPrimary, routing: true, inject: cutRouter, heal: unblock},
}

// pauseWait bounds killAfterPause's wait for the pause: the switchover's
// pre-flight checks, with room.
const pauseWait = 20 * time.Second

// killAfterPause waits until PgBouncer shows the routed database paused
// (the round's switchover began before the injection), then SIGKILLs the
// target's agent. A switchover that never paused (refused, or over
// between two looks) still has the agent killed, and says so.
func killAfterPause(ctx context.Context, f *fault) error {
	ctx, cancel := context.WithTimeout(ctx, pauseWait)
	defer cancel()
	f.note = "(pause not seen)"
	for ctx.Err() == nil {
		if db, err := f.c.router.Show(ctx); err == nil && db.Paused {
			f.note = "(after PAUSE)"
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return f.node.KillAgent()
}

// cutRouter cuts PgBouncer from the target node, both ways: the agent
// cannot reach the admin console, PgBouncer cannot reach PostgreSQL.
func cutRouter(ctx context.Context, f *fault) error {
	return f.c.net.Cut(ctx, f.c.router.Host, f.node.Host)
}

// fenced reports whether kind k runs with the fence hook.
func fenced(k FaultKind) bool {
	s, err := specOf(k)
	return err == nil && s.fence
}

// failFence makes the fence hook fail (on) or work.
func failFence(on bool) func(context.Context, *fault) error {
	return func(_ context.Context, f *fault) error { return f.c.fence.SetFailing(on) }
}

// awaitLeaderWait bounds awaitLeader: the lease running out, an election
// and a promotion, with room.
const awaitLeaderWait = 60 * time.Second

// awaitLeader waits until a node other than the fault's target holds the
// leader key, or the target holds it again alive (it was never fenced),
// before the target is restarted: a member that runs the hook late (after
// the lease ran out, say) must find a dead host, not a rebooted one, as it
// would in production when hosts do not reboot within seconds. It is not
// an error if that does not happen (recovery then judges the round).
func awaitLeader(ctx context.Context, f *fault) error {
	f.c.awaitLeaderBesides(ctx, f.node)
	return nil
}

// awaitLeaderBesides waits (bounded by awaitLeaderWait, logged when it
// runs out) until a node other than n holds the leader key, or n holds it
// with its agent running.
func (c *Cluster) awaitLeaderBesides(ctx context.Context, n *Node) {
	ctx, cancel := context.WithTimeout(ctx, awaitLeaderWait)
	defer cancel()
	for {
		name, err := c.Leader(ctx)
		if err == nil && (name != n.Name || n.AgentRunning()) {
			return
		}
		select {
		case <-ctx.Done():
			c.log.Add(c.clock.Now(), "no leader besides %s within %s; starting it anyway", n.Name, awaitLeaderWait)
			return
		case <-time.After(pollInterval):
		}
	}
}

// all runs steps in order; it stops at the first error.
func all(steps ...func(context.Context, *fault) error) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		for _, s := range steps {
			if err := s(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}
}

// killAllMembers SIGKILLs every etcd member: etcd is gone for everyone.
func killAllMembers(_ context.Context, f *fault) error {
	f.members = slices.Clone(f.order)
	var errs []error
	for _, m := range f.members {
		errs = append(errs, m.kill())
	}
	return errors.Join(errs...)
}

// failsafeActiveWait bounds how soon the primary reports failsafe active
// once etcd is gone: a failed renewal (retry_timeout) and one round.
const failsafeActiveWait = 15 * time.Second

// awaitFailsafe waits until the primary reports failsafe mode active. It
// is not an error if it never does (it may have fenced: then the round
// measures that); the log says which.
func awaitFailsafe(ctx context.Context, f *fault) error {
	ctx, cancel := context.WithTimeout(ctx, failsafeActiveWait)
	defer cancel()
	for ctx.Err() == nil {
		if st, err := f.primary.Status(ctx); err == nil && st.FailsafeModeIsActive {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// holdTTL keeps the rest of the fault for a ttl after the previous heal
// step: holding it is the experiment (etcd back, the partition not yet).
func holdTTL(ctx context.Context, f *fault) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.c.TTL()):
		return nil
	}
}

// between draws a duration in [lo, hi] milliseconds.
func between(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
}

// shapeLinks applies the fault's shaping to the target's etcd links, or
// to every node's.
func shapeLinks(all bool) func(context.Context, *fault) error {
	return func(_ context.Context, f *fault) error {
		nodes := []*Node{f.node}
		if all {
			nodes = f.c.Nodes()
		}
		for _, n := range nodes {
			n.ShapeLinks(f.shape)
		}
		return nil
	}
}

func unshapeLinks(_ context.Context, f *fault) error {
	for _, n := range f.c.Nodes() {
		n.ShapeLinks(linkproxy.Shaping{})
	}
	return nil
}

// cutFrom cuts the target node from the etcd members and/or the other
// nodes, both directions.
func cutFrom(etcd, nodes bool) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		var errs []error
		if etcd {
			for _, m := range f.c.etcd {
				errs = append(errs, f.c.net.Cut(ctx, f.node.Host, m.Host))
			}
		}
		if nodes {
			for _, n := range f.c.Others(f.node.Name) {
				errs = append(errs, f.c.net.Cut(ctx, f.node.Host, n.Host))
			}
		}
		return errors.Join(errs...)
	}
}

// oneWay drops packets from the target to etcd (out) or from etcd to it.
func oneWay(out bool) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		var errs []error
		for _, m := range f.c.etcd {
			if out {
				errs = append(errs, f.c.net.Block(ctx, f.node.Host, m.Host.IP))
			} else {
				errs = append(errs, f.c.net.Block(ctx, m.Host, f.node.Host.IP))
			}
		}
		return errors.Join(errs...)
	}
}

func unblock(ctx context.Context, f *fault) error { return f.c.net.UnblockAll(ctx) }

func nothing(context.Context, *fault) error { return nil }

func freeze(agent, postgres bool) func(context.Context, *fault) error {
	return func(_ context.Context, f *fault) error { return f.node.Freeze(agent, postgres) }
}

// restartOrThaw resumes what the fault stopped, and starts the agent again
// if it is dead (killed, or reset by the emulated watchdog).
func restartOrThaw(_ context.Context, f *fault) error {
	f.node.Thaw()
	if f.node.AgentRunning() {
		return nil
	}
	return f.node.Start()
}

// killMembers SIGKILLs leaders (0 or 1: the raft leader) and followers
// (chosen at random by the caller's order) etcd members.
func killMembers(leaders, followers int) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		leader, err := f.c.EtcdLeader(ctx)
		if err != nil {
			return err
		}
		f.members = pickMembers(f.order, leader, leaders, followers)
		var errs []error
		for _, m := range f.members {
			errs = append(errs, m.kill())
		}
		return errors.Join(errs...)
	}
}

// pickMembers returns the leader (if leaders > 0) and the first followers
// non-leaders of order.
func pickMembers(order []*EtcdMember, leader *EtcdMember, leaders, followers int) []*EtcdMember {
	var out []*EtcdMember
	if leaders > 0 {
		out = append(out, leader)
	}
	for _, m := range order {
		if m != leader && followers > 0 {
			out = append(out, m)
			followers--
		}
	}
	return out
}

// restartMembers starts every killed member, then waits for each to
// serve: members killed all together only regain a quorum together.
func restartMembers(ctx context.Context, f *fault) error {
	var errs []error
	for _, m := range f.members {
		errs = append(errs, m.start())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, m := range f.members {
		errs = append(errs, m.waitServing(ctx))
	}
	return errors.Join(errs...)
}

// newFault resolves a kind's target: the primary, a random replica, and a
// random order of the etcd members (killMembers picks followers from it).
func (c *Cluster) newFault(spec *faultSpec, primary *Node, rng *rand.Rand) *fault {
	f := &fault{spec: spec, c: c, node: primary, primary: primary}
	if spec.onReplica {
		others := c.Others(primary.Name)
		f.node = others[rng.IntN(len(others))]
	}
	if spec.shape != nil {
		f.shape = spec.shape(rng)
	}
	f.order = slices.Clone(c.etcd)
	rng.Shuffle(len(f.order), func(i, j int) { f.order[i], f.order[j] = f.order[j], f.order[i] })
	return f
}
