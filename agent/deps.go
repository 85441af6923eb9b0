package agent

import (
	"context"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/progress"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// DCS is what the agent needs from etcd; *dcs.Client implements it and
// dcs/dcstest.Fake stands in for it in unit tests.
type DCS interface {
	Keys() dcs.Keys
	Lease() int64
	GrantLease(ctx context.Context, ttl time.Duration) (int64, error)
	KeepAlive(ctx context.Context) error
	AcquireLeader(ctx context.Context, name string) (bool, error)
	CheckLeader(ctx context.Context, name string) error
	ReleaseLeader(ctx context.Context, name string) error
	ReattachLeader(ctx context.Context, name string, oldLease int64) error
	PutMember(ctx context.Context, name string, m dcs.Member) error
	CreateInitialize(ctx context.Context) (bool, error)
	SetInitialize(ctx context.Context, sysid string) error
	DeleteInitialize(ctx context.Context) error
	CAS(ctx context.Context, key string, value []byte, modRev int64) (int64, error)
	Put(ctx context.Context, key string, value []byte) error
	// PutOnLease writes a key that ends with this member's session
	// (suspects/<name>).
	PutOnLease(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string, modRev int64) error
	// Leader-only keys (status, history, sync, the leader's failover
	// writes) go through these: one transaction guarded by the leader key
	// naming name on the current lease, so a deposed leader cannot
	// overwrite them (dcs.ErrNotLeader).
	PutAsLeader(ctx context.Context, name, key string, value []byte) error
	CASAsLeader(ctx context.Context, name, key string, value []byte, modRev int64) (int64, error)
	DeleteAsLeader(ctx context.Context, name, key string, modRev int64) error
	Get(ctx context.Context, key string) (dcs.Value, bool, error)
	Load(ctx context.Context) (*dcs.Cluster, error)
	View() *dcs.Cluster
	Notify() <-chan struct{}
	Subscribe() (<-chan struct{}, func())
	TakeChanges() dcs.Change
	LastContact() time.Time
	// Classify tells what kind of failure an etcd error is.
	Classify(err error) dcs.ErrorClass
}

// Postgres is what the agent needs from the local instance; *postgres.Instance
// implements it.
type Postgres interface {
	Status(ctx context.Context) (postgres.Status, error)
	DataDirEmpty() (bool, error)
	ControlData(ctx context.Context) (postgres.ControlData, error)
	InitDB(ctx context.Context) error
	SetupRoles(ctx context.Context) error
	ConfigurePrimary() (bool, error)
	ConfigureStandby(up *postgres.Upstream) (bool, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context, from postgres.StopMode, budget time.Duration) (postgres.StopMode, error)
	Promote(ctx context.Context) error
	Checkpoint(ctx context.Context) error
	ProbeWrite(ctx context.Context) error
	Reload(ctx context.Context) error
	CreateReplica(ctx context.Context, from *postgres.Upstream) error
	BootstrapFromBackup(ctx context.Context, name string, m postgres.BootstrapMethod) error
	// Progress of the replica being created (nil when none); safe beside
	// CreateReplica.
	Progress() *progress.Progress
	Rewind(ctx context.Context, from postgres.Upstream) error
	CheckWipe(ctx context.Context, systemID uint64) error
	WipeDataDir(ctx context.Context, systemID uint64) error
	TimelineHistory(ctx context.Context, from postgres.Upstream, timeline uint32) ([]postgres.TimelineSwitch, error)
	SourceCheckpointTimeline(ctx context.Context, from postgres.Upstream, checkpoint bool) (uint32, error)
	EnsureSlots(ctx context.Context, p postgres.SlotPolicy) ([]postgres.Slot, error)
	ReadSlotStates(ctx context.Context, up postgres.Upstream, names []string) ([]postgres.SlotState, error)
	InstallSlotStates(states []postgres.SlotState) error
	OldestWAL(ctx context.Context) (postgres.LSN, error)
	WriteHBA(memberHosts []string) (bool, error)
	SetDynamicParameters(params map[string]any) error
	Reconfigure() (bool, error)
	SetStandbyFloor(settings map[string]int64) (raises bool)
	SetSynchronousStandbyNames(value string) (bool, error)
	SynchronousStandbyNames() string
}

// Watchdog is the hardware watchdog as the loop drives it; *fencing.Watchdog
// implements it. Keepalive is called only right after an acknowledged lease
// renewal, from the loop itself, so a stuck loop leads to a reset.
type Watchdog interface {
	Arm(timeout time.Duration) error
	Keepalive() error
	Disarm() error
	Usable() bool
	Status() fencing.Status
}

// StonithHook runs the operator's STONITH command against a former leader.
type StonithHook interface {
	Run(ctx context.Context, target, targetConnURL, scope string) (fencing.HookResult, error)
}

// Publisher receives the state the REST API serves; *restapi.Server implements it.
type Publisher interface {
	Publish(*restapi.Snapshot)
}

// PeerFetcher asks other members for their status (GET api_url).
type PeerFetcher interface {
	Fetch(ctx context.Context, members map[string]dcs.Member) []PeerStatus
}

// Notifier is the service manager (systemd's sd_notify; cmd/regent passes
// *sdnotify.Notifier). Only the loop goroutine calls it, so a loop that
// hangs stops its keep-alives and the service manager restarts the agent.
type Notifier interface {
	// Send sends one notification of KEY=VALUE lines.
	Send(lines ...string) error
	// WatchdogInterval is the service manager's liveness timeout
	// (WatchdogSec); 0 when it watches nothing.
	WatchdogInterval() time.Duration
}
