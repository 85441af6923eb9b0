package agent

// Role is what this member is, as published in its member key ("role"),
// in GET /patroni and in regent_role. Patroni tools read these strings.
type Role string

// The roles of this member.
const (
	RolePrimary       Role = "primary"
	RoleReplica       Role = "replica"
	RoleDemoted       Role = "demoted" // stopped or restarted read-only after a fence or demotion
	RoleUninitialized Role = "uninitialized"
	// RoleStandbyLeader: the leader of a standby cluster, in recovery
	// following the remote cluster (Patroni's name).
	RoleStandbyLeader Role = "standby_leader"
)

// Roles are the values of regent_role's role label (one-hot).
var Roles = []Role{RolePrimary, RoleReplica, RoleStandbyLeader, RoleDemoted, RoleUninitialized}

// statusRole is the role a running server's status shows.
func statusRole(inRecovery bool) Role {
	if inRecovery {
		return RoleReplica
	}
	return RolePrimary
}

// PGRunState is where the local PostgreSQL stands, in Patroni's state
// vocabulary: the member key's "state" and GET /patroni's "state". Patroni
// tools (patronictl list, HAProxy checks) read these strings.
type PGRunState string

// The PostgreSQL states the agent publishes.
const (
	PGRunning         PGRunState = "running"
	PGStopped         PGRunState = "stopped"
	PGStarting        PGRunState = "starting"
	PGStopping        PGRunState = "stopping"
	PGCrashed         PGRunState = "crashed" // was running, found down without the agent stopping it
	PGStartFailed     PGRunState = "start failed"
	PGRestarting      PGRunState = "restarting"
	PGRestartFailed   PGRunState = "restart failed (stop)"
	PGCreatingReplica PGRunState = "creating replica"
	PGInitializing    PGRunState = "initializing new cluster"
	PGCustomBootstrap PGRunState = "running custom bootstrap script" // bootstrap.method (Patroni's state)
)
