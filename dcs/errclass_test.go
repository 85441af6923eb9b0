package dcs

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
