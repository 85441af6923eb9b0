package pgtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/progress"
	"github.com/regent-ha/regent/postgres"
)

// Fake is a scripted PostgreSQL. The zero value is not usable; call New.
type Fake struct {
	mu         sync.Mutex
	empty      bool
	running    bool
	inRecovery bool
	timeline   uint32
	lsn        postgres.LSN
	sysID      uint64
	upstream   *postgres.Upstream
	ssn        string
	repl       []postgres.Replica
	hung       bool
	ops        []string
	dynamic    map[string]any
	// StartErr, when set, makes Start fail.
	StartErr error
	// StopErr, when set, makes Stop fail and leaves the server running (a
	// stop that could not end the processes).
	StopErr error
	// StopGate, when set, makes Stop wait until it is closed (or ctx
	// ends): a slow stop, for work that runs beside the loop.
	StopGate chan struct{}
	// CloneGate, when set, makes Clone wait until it is closed (or ctx
	// ends): a long clone, for work that runs beside the loop.
	CloneGate chan struct{}
	// StopBudgets records the budget of every Stop, in order.
	StopBudgets []time.Duration
	// OnOp, when set, is called with every operation name as it happens.
	OnOp func(op string)
	// NotStreaming makes a replica with an upstream report no WAL
	// receiver (its upstream is gone or refuses it).
	NotStreaming bool
	// Histories are the upstream's timeline history files, by timeline
	// (TimelineHistory of one not listed returns nil).
	Histories map[uint32][]postgres.TimelineSwitch
	// SourceTimeline is the checkpoint timeline of the rewind source's
	// control file (SourceCheckpointTimeline); 0 means its newest
	// timeline in Histories (1 without any).
	SourceTimeline uint32
}

// New returns a fake with an initialized, stopped data directory.
func New(sysID uint64) *Fake {
	return &Fake{timeline: 1, sysID: sysID, lsn: 0x3000000, inRecovery: true}
}

// SetPrimary makes the fake a running primary at lsn.
func (f *Fake) SetPrimary(lsn postgres.LSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running, f.inRecovery, f.lsn = true, false, lsn
}

// SetReplica makes the fake a running replica at lsn.
func (f *Fake) SetReplica(lsn postgres.LSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running, f.inRecovery, f.lsn = true, true, lsn
}

// SetReplication sets what pg_stat_replication shows: a primary's WAL
// senders, or a replica's cascading ones (a standby leader's members).
func (f *Fake) SetReplication(repl ...postgres.Replica) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repl = repl
}

// Crash stops the fake without the agent's involvement.
func (f *Fake) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running = false
}

// Hang makes the running server stop answering (a frozen or hung
// postmaster): Status fails with a timeout, not ErrNotRunning, until Stop.
func (f *Fake) Hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hung = true
}

// Writable reports whether the fake would accept writes now.
func (f *Fake) Writable() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running && !f.inRecovery
}

// Ops returns the operations so far, in order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

func (f *Fake) record(op string) {
	f.ops = append(f.ops, op)
	if f.OnOp != nil {
		f.OnOp(op)
	}
}

func (f *Fake) Status(ctx context.Context) (postgres.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return postgres.Status{}, postgres.ErrNotRunning
	}
	if f.hung {
		return postgres.Status{}, fmt.Errorf("postgres status: %w", context.DeadlineExceeded)
	}
	st := postgres.Status{Running: true, InRecovery: f.inRecovery, Timeline: f.timeline, SystemID: f.sysID, Streaming: f.inRecovery && f.upstream != nil && !f.NotStreaming}
	if f.inRecovery {
		st.ReceiveLSN, st.ReplayLSN = f.lsn, f.lsn
	} else {
		st.CurrentLSN = f.lsn
	}
	st.Replication = slices.Clone(f.repl)
	return st, nil
}

func (f *Fake) DataDirEmpty() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.empty, nil
}

func (f *Fake) ControlData(ctx context.Context) (postgres.ControlData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return postgres.ControlData{SystemID: f.sysID, Timeline: f.timeline, CheckpointLSN: f.lsn}, nil
}

func (f *Fake) InitDB(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("initdb")
	f.empty, f.inRecovery = false, false
	return nil
}

func (f *Fake) SetupRoles(ctx context.Context) error { return nil }

func (f *Fake) ConfigurePrimary() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upstream = nil
	return false, nil
}

func (f *Fake) ConfigureStandby(up *postgres.Upstream) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := fmt.Sprint(up) != fmt.Sprint(f.upstream)
	f.upstream = up
	if !f.running {
		f.inRecovery = true
	}
	return changed, nil
}

// Upstream is what the last ConfigureStandby (or clone) pointed at (nil
// for none or after ConfigurePrimary).
func (f *Fake) Upstream() *postgres.Upstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upstream
}

func (f *Fake) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("start")
	if f.StartErr != nil {
		return f.StartErr
	}
	f.running = true
	return nil
}

func (f *Fake) Stop(ctx context.Context, from postgres.StopMode, budget time.Duration) (postgres.StopMode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("stop " + string(from))
	f.StopBudgets = append(f.StopBudgets, budget)
	if gate := f.StopGate; gate != nil {
		f.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
		}
		f.mu.Lock()
		if ctx.Err() != nil {
			return from, fmt.Errorf("pgtest: stop: %w", ctx.Err())
		}
	}
	if f.StopErr != nil {
		return from, f.StopErr
	}
	f.running, f.hung = false, false
	return from, nil
}

func (f *Fake) Promote(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("promote")
	f.inRecovery = false
	f.timeline++
	return nil
}

func (f *Fake) Checkpoint(ctx context.Context) error { return nil }
func (f *Fake) Reload(ctx context.Context) error     { return nil }

func (f *Fake) CreateReplica(ctx context.Context, up *postgres.Upstream) error {
	var from postgres.Upstream
	if up != nil {
		from = *up
	}
	if gate := f.CloneGate; gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return fmt.Errorf("pgtest: clone: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("clone " + from.Member)
	f.empty, f.inRecovery, f.upstream = false, true, up
	return nil
}

// Progress reports no replica creation in progress.
func (f *Fake) Progress() *progress.Progress { return nil }

// BootstrapFromBackup records the method and leaves a running primary.
func (f *Fake) BootstrapFromBackup(ctx context.Context, name string, m postgres.BootstrapMethod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("bootstrap " + name)
	f.empty, f.inRecovery, f.running = false, false, true
	return nil
}

func (f *Fake) Rewind(ctx context.Context, from postgres.Upstream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("rewind " + from.Member)
	return nil
}

// CheckWipe refuses, as the real guard does, another cluster's data
// directory (the fake's system identifier differs from systemID).
func (f *Fake) CheckWipe(ctx context.Context, systemID uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkWipeLocked(systemID)
}

func (f *Fake) checkWipeLocked(systemID uint64) error {
	if f.empty || systemID == postgres.AnySystem || systemID == f.sysID {
		return nil
	}
	return fmt.Errorf("%w (pgtest): system identifier %d is not %d", postgres.ErrWipeRefused, f.sysID, systemID)
}

func (f *Fake) WipeDataDir(ctx context.Context, systemID uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkWipeLocked(systemID); err != nil {
		f.record("wipe refused")
		return err
	}
	f.record("wipe")
	f.empty = true
	return nil
}

func (f *Fake) TimelineHistory(ctx context.Context, from postgres.Upstream, timeline uint32) ([]postgres.TimelineSwitch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Histories[timeline], nil
}

// SourceCheckpointTimeline records "checkpoint <member>" when asked to
// checkpoint and answers SourceTimeline.
func (f *Fake) SourceCheckpointTimeline(ctx context.Context, from postgres.Upstream, checkpoint bool) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if checkpoint {
		f.record("checkpoint " + from.Member)
	}
	if f.SourceTimeline != 0 {
		return f.SourceTimeline, nil
	}
	tl := uint32(1)
	for k := range f.Histories {
		tl = max(tl, k)
	}
	return tl, nil
}

func (f *Fake) EnsureSlots(ctx context.Context, p postgres.SlotPolicy) ([]postgres.Slot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Primary {
		f.record("slots " + strings.Join(p.Members, ","))
	} else {
		f.record("replica slots")
	}
	return nil, nil
}
func (f *Fake) ReadSlotStates(ctx context.Context, up postgres.Upstream, names []string) ([]postgres.SlotState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("read slot states " + up.Member + " " + strings.Join(names, ","))
	out := make([]postgres.SlotState, 0, len(names))
	for _, n := range names {
		out = append(out, postgres.SlotState{Name: n, State: []byte("state of " + n)})
	}
	return out, nil
}

func (f *Fake) OldestWAL(ctx context.Context) (postgres.LSN, error) { return 0, nil }

func (f *Fake) InstallSlotStates(states []postgres.SlotState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(states))
	for _, s := range states {
		names = append(names, s.Name)
	}
	f.record("install slot states " + strings.Join(names, ","))
	return nil
}

func (f *Fake) WriteHBA(memberHosts []string) (bool, error) { return false, nil }

// NewEmpty returns a fake with an empty data directory (bootstrap, clone).
func NewEmpty(sysID uint64) *Fake {
	f := New(sysID)
	f.empty = true
	return f
}

// SetDynamicParameters applies params by the real rule (the refused ones
// keep their value, the error names them); DynamicParameters reads them.
func (f *Fake) SetDynamicParameters(params map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	f.dynamic, err = postgres.MergeDynamicParameters(f.dynamic, params)
	return err
}

// DynamicParameters returns the cluster-wide parameters in effect.
func (f *Fake) DynamicParameters() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.dynamic)
}

// ProbeWrite succeeds only on a running primary.
func (f *Fake) ProbeWrite(ctx context.Context) error {
	if !f.Writable() {
		return fmt.Errorf("pgtest: cannot assign TransactionIds during recovery")
	}
	return nil
}

func (f *Fake) SetSynchronousStandbyNames(value string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := f.ssn != value
	f.ssn = value
	return changed, nil
}

func (f *Fake) SynchronousStandbyNames() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ssn
}

func (f *Fake) Reconfigure() (bool, error) { return false, nil }

func (f *Fake) SetStandbyFloor(settings map[string]int64) bool { return false }
