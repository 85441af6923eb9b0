package dcs

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// ErrorClass is what kind of failure an etcd call met, so that an operator
// (and the agent's failsafe rule) can tell an etcd outage from a lost key.
// Its String is the stable value logged under the key "etcd_error" and
// exported in GET /patroni and the metrics.
type ErrorClass uint8

// The classes. Unreachable, Timeout, NoLeader, Auth and Other say nothing
// about the leader key: they are outages (Outage). Compare and LeaseLost
// are etcd's own answer that the key or the lease is gone.
const (
	ErrClassNone ErrorClass = iota
	// ErrClassUnreachable: no connection to any etcd endpoint.
	ErrClassUnreachable
	// ErrClassTimeout: connected, but no answer in time.
	ErrClassTimeout
	// ErrClassNoLeader: etcd answers "etcdserver: no leader" (quorum lost,
	// members alive) or its leader changed under the request.
	ErrClassNoLeader
	// ErrClassAuth: authentication failed or permission denied.
	ErrClassAuth
	// ErrClassCompare: a guarded write's compare failed (ErrNotLeader,
	// ErrConflict): etcd answered, the key is not as expected.
	ErrClassCompare
	// ErrClassLeaseLost: etcd answered that the session lease is gone.
	ErrClassLeaseLost
	// ErrClassOther: any other error.
	ErrClassOther
)

var errClassNames = [...]string{"", "unreachable", "timeout", "no_leader", "auth", "compare_failed", "lease_lost", "other"}

// ErrorClasses lists every class but None, in order (for metrics).
func ErrorClasses() []ErrorClass {
	return []ErrorClass{ErrClassUnreachable, ErrClassTimeout, ErrClassNoLeader, ErrClassAuth, ErrClassCompare, ErrClassLeaseLost, ErrClassOther}
}

func (c ErrorClass) String() string {
	if int(c) < len(errClassNames) {
		return errClassNames[c]
	}
	return "other"
}

// Outage reports an error that says nothing about who holds the leader
// key: etcd could not be asked, or could not answer. Only such a failure
// of a leader's renewal may be bridged by failsafe mode.
func (c ErrorClass) Outage() bool {
	switch c {
	case ErrClassNone, ErrClassCompare, ErrClassLeaseLost:
		return false
	}
	return true
}

// ClassifyError classifies err by itself: a timeout is ErrClassTimeout
// whatever the connection's state (Client.Classify tells an unreachable
// etcd apart).
func ClassifyError(err error) ErrorClass {
	var code codes.Code
	if s, ok := status.FromError(err); ok {
		code = s.Code()
	}
	switch {
	case err == nil:
		return ErrClassNone
	case errors.Is(err, ErrLeaseLost) || isLeaseNotFound(err):
		return ErrClassLeaseLost
	case errors.Is(err, ErrNotLeader) || errors.Is(err, ErrConflict):
		return ErrClassCompare
	case errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrGRPCNoLeader) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrGRPCLeaderChanged) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrGRPCTimeoutDueToLeaderFail):
		return ErrClassNoLeader
	case errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrGRPCPermissionDenied) ||
		errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrGRPCAuthFailed) ||
		errors.Is(err, rpctypes.ErrInvalidAuthToken) || errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken) ||
		code == codes.PermissionDenied || code == codes.Unauthenticated:
		return ErrClassAuth
	case code == codes.Unavailable:
		return ErrClassUnreachable
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrTimeout) || code == codes.DeadlineExceeded:
		return ErrClassTimeout
	}
	return ErrClassOther
}

// Classify is ClassifyError, with a timeout read as ErrClassUnreachable
// while the connection to etcd is not ready: etcd's client waits for a
// connection until the context ends, so an etcd that is down shows as a
// timeout otherwise.
func (c *Client) Classify(err error) ErrorClass {
	cl := ClassifyError(err)
	if cl == ErrClassTimeout && c.cli.ActiveConnection().GetState() != connectivity.Ready {
		return ErrClassUnreachable
	}
	return cl
}
