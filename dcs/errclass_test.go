package dcs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestClassifyError: each etcd failure lands in its class, wrapped or
// not; "etcdserver: no leader" is an outage, never a lost key.
func TestClassifyError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("dcs: keepalive lease 1: %w", err) }
	tests := []struct {
		err    error
		want   ErrorClass
		outage bool
	}{
		{nil, ErrClassNone, false},
		{wrap(ErrLeaseLost), ErrClassLeaseLost, false},
		{wrap(rpctypes.ErrLeaseNotFound), ErrClassLeaseLost, false},
		{wrap(ErrNotLeader), ErrClassCompare, false},
		{wrap(ErrConflict), ErrClassCompare, false},
		{wrap(rpctypes.ErrNoLeader), ErrClassNoLeader, true},
		{rpctypes.ErrGRPCNoLeader, ErrClassNoLeader, true},
		{wrap(rpctypes.ErrLeaderChanged), ErrClassNoLeader, true},
		{wrap(rpctypes.ErrTimeoutDueToLeaderFail), ErrClassNoLeader, true},
		{wrap(rpctypes.ErrPermissionDenied), ErrClassAuth, true},
		{wrap(rpctypes.ErrAuthFailed), ErrClassAuth, true},
		{status.Error(codes.Unauthenticated, "x"), ErrClassAuth, true},
		{status.Error(codes.Unavailable, "connection refused"), ErrClassUnreachable, true},
		{wrap(context.DeadlineExceeded), ErrClassTimeout, true},
		{status.Error(codes.DeadlineExceeded, "x"), ErrClassTimeout, true},
		{wrap(rpctypes.ErrTimeout), ErrClassTimeout, true},
		{errors.New("something else"), ErrClassOther, true},
	}
	for _, tt := range tests {
		got := ClassifyError(tt.err)
		if got != tt.want || got.Outage() != tt.outage {
			t.Errorf("ClassifyError(%v) = %s (outage %v), want %s (outage %v)", tt.err, got, got.Outage(), tt.want, tt.outage)
		}
	}
	for _, c := range ErrorClasses() {
		if c.String() == "" || c.String() == ErrorClass(200).String() && c != ErrClassOther {
			t.Errorf("class %d has no name of its own: %q", c, c.String())
		}
	}
}

// TestClassifyAgainstEtcd: what a renewal meets when etcd goes away, as
// the agent classifies it: a stopped etcd is unreachable; a member left
// without its quorum is an outage (no_leader or timeout: it may say so,
// or only not answer); an expired lease and a missing key are etcd's own
// answers, never outages.
func TestClassifyAgainstEtcd(t *testing.T) {
	t.Run("stopped", func(t *testing.T) {
		e := startEtcd(t)
		c := connect(t, e)
		if _, err := c.GrantLease(ctxT(t), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		err := c.CheckLeader(ctxT(t), "pg1")
		if got := c.Classify(err); got != ErrClassCompare {
			t.Errorf("check of an absent key: %s (%v), want compare_failed", got, err)
		}
		e.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err = c.KeepAlive(ctx)
		if got := c.Classify(err); got != ErrClassUnreachable {
			t.Errorf("keepalive to a stopped etcd: %s (%v), want unreachable", got, err)
		}
	})
	t.Run("quorum lost", func(t *testing.T) {
		if testing.Short() {
			t.Skip("three-member etcd cluster")
		}
		cfgs := startCluster(t)
		members := startMembers(t, cfgs...)
		c, err := Connect(t.Context(), Config{Endpoints: members[0].Endpoints()}, NewKeys("service", "classify"), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.GrantLease(ctxT(t), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		closeMembers(members[1], members[2])
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		err = c.CheckLeader(ctx, "pg1")
		t.Logf("linearizable read on a member without quorum: %s (%v)", c.Classify(err), err)
		if got := c.Classify(err); !got.Outage() || (got != ErrClassNoLeader && got != ErrClassTimeout) {
			t.Errorf("linearizable read on a member without quorum: %s (%v), want no_leader or timeout", got, err)
		}
	})
}
