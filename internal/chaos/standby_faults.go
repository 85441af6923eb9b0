package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// The standby-cluster kinds (-chaos.standby): they hit the standby
// leader, or fail the primary cluster over so that the standby leader must
// follow its new primary.
const (
	// KillStandbyLeader SIGKILLs the standby leader's agent and
	// PostgreSQL: the other member must take the key and keep following.
	KillStandbyLeader FaultKind = "kill-standby-leader"
	// FreezeStandbyLeader SIGSTOPs the standby leader's agent and
	// PostgreSQL.
	FreezeStandbyLeader FaultKind = "freeze-standby-leader"
	// PartitionStandbyLeader cuts the standby leader from etcd, from the
	// other standby member and from the primary cluster's nodes.
	PartitionStandbyLeader FaultKind = "partition-standby-leader"
	// FailoverPrimaryStandby SIGKILLs the primary cluster's primary (agent
	// and PostgreSQL: it cannot write on, with or without a watchdog) and
	// holds until another node leads: the standby leader must follow the
	// new primary, rewinding when it had received WAL the new one lacks.
	FailoverPrimaryStandby FaultKind = "failover-primary-standby"
)

// StandbyFaults is the alias "standby" of ParseFaults.
var StandbyFaults = []FaultKind{KillStandbyLeader, FreezeStandbyLeader, PartitionStandbyLeader, FailoverPrimaryStandby}

func init() {
	specs = append(specs,
		&faultSpec{kind: KillStandbyLeader, standby: true,
			inject: onStandbyLeader(func(_ context.Context, f *fault) error { return f.node.Kill() }), heal: restartOrThaw},
		&faultSpec{kind: FreezeStandbyLeader, standby: true, inject: onStandbyLeader(freeze(true, true)), heal: restartOrThaw},
		&faultSpec{kind: PartitionStandbyLeader, standby: true, inject: onStandbyLeader(cutStandby), heal: unblock},
		&faultSpec{kind: FailoverPrimaryStandby, standby: true,
			inject: all(func(_ context.Context, f *fault) error { return f.node.Kill() }, awaitLeader), heal: restartOrThaw},
	)
}

// StandbyMix is the fault mix of a standby run: kinds and the standby
// kinds, when kinds names none of them (a list that does is taken as it
// is). The schedule draws the standby kinds in a third of the rounds
// (Config.favor).
func StandbyMix(kinds []FaultKind) []FaultKind {
	for _, k := range kinds {
		if s, err := specOf(k); err == nil && s.standby {
			return kinds
		}
	}
	return append(slices.Clone(kinds), StandbyFaults...)
}

// checkStandbyKinds refuses standby kinds in a run without a standby
// cluster.
func checkStandbyKinds(kinds []FaultKind, standby bool) error {
	if standby {
		return nil
	}
	for _, k := range kinds {
		if s, err := specOf(k); err == nil && s.standby {
			return fmt.Errorf("fault kind %s needs a standby cluster (-chaos.standby, make chaos STANDBY=1)", k)
		}
	}
	return nil
}

// onStandbyLeader makes the standby leader the fault's target, then runs
// step on it.
func onStandbyLeader(step func(context.Context, *fault) error) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		if f.c.dr == nil {
			return errors.New("no standby cluster")
		}
		n, err := f.c.dr.Leader(ctx)
		if err != nil {
			return fmt.Errorf("standby leader: %w", err)
		}
		f.node = n
		return step(ctx, f)
	}
}

// cutStandby cuts the target (a standby member) from every etcd member,
// the other standby members and the primary cluster's nodes.
func cutStandby(ctx context.Context, f *fault) error {
	var errs []error
	for _, m := range f.c.etcd {
		errs = append(errs, f.c.net.Cut(ctx, f.node.Host, m.Host))
	}
	for _, n := range append(f.c.dr.Others(f.node.Name), f.c.Nodes()...) {
		errs = append(errs, f.c.net.Cut(ctx, f.node.Host, n.Host))
	}
	return errors.Join(errs...)
}
