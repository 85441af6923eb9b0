package agent

// STONITH: fence.command, the operator's hook that a candidate runs
// against a former leader that did not step down cleanly, before it
// promotes over it. (The agent's own self-stop is "fence", in fence.go.)

import (
	"context"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/secret"
	"github.com/regent-ha/regent/restapi"
)

// releasedCleanly: a leader that stepped down on purpose stops PostgreSQL
// before deleting its key, and its member key stays, saying "stopped". A
// leader whose key vanished with its member key (lease expiry: host dead,
// frozen, partitioned) or that still claims to run did not — unless its
// agent has written its member key since the key went (goneRev: the view's
// revision when this member first saw no leader key) saying PostgreSQL
// runs as a replica: an agent restarted quickly after a clean stop (a
// `systemctl restart`) is alive and keeps PostgreSQL in recovery, and
// must not be powered off for it. A member key older than goneRev proves
// nothing: the leader may have frozen between promoting and publishing.
func releasedCleanly(v *dcs.Cluster, leader string, goneRev int64) bool {
	m, ok := v.Members[leader]
	if !ok {
		return false
	}
	switch PGRunState(m.State) {
	case PGStopped:
		return true
	case PGRunning, PGStarting:
		return Role(m.Role) == RoleReplica && goneRev > 0 && v.MemberRevs[leader] > goneRev
	}
	return false
}

// stonithOldLeader runs fence.command against the former leader before this
// member races to replace it, unless that leader stepped down cleanly.
// It returns false when the promotion must not go ahead.
func (a *Agent) stonithOldLeader(ctx context.Context, s Snapshot) (*restapi.StonithRecord, bool) {
	if len(a.cfg.Fence.Command) == 0 || a.previousLeader == "" || a.previousLeader == a.name || releasedCleanly(s.View, a.previousLeader, a.leaderGoneRev) {
		return nil, true
	}
	target := a.previousLeader
	if rec, ok := a.fastFenced(target); ok {
		return rec, true // the fast path's run confirmed it already
	}
	var connURL string
	if m, ok := s.View.Members[target]; ok {
		connURL = m.ConnURL
	}
	a.log.Warn("former leader did not step down cleanly; running fence.command before racing", "target", target)
	res, err := a.stonith.Run(ctx, target, connURL, a.cfg.Scope)
	// The record is kept in etcd and served by GET /decisions: what the
	// hook printed is redacted first (an IPMI password, a token).
	rec := &restapi.StonithRecord{Target: target, Ran: res.Ran, ExitCode: res.ExitCode, DurationMs: res.Duration.Milliseconds(),
		Output: secret.RedactText(res.Output), Error: secret.RedactText(res.Err)}
	if err != nil {
		rec.Error = secret.RedactText(err.Error())
		return rec, false
	}
	return rec, true
}
