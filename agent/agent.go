package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/fencing"
	"github.com/regent-ha/regent/internal/buildinfo"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/routing"
	"github.com/regent-ha/regent/switchover"
)

// ErrRefused is returned by Run when this node must not join the cluster
// (e.g. its data directory belongs to another cluster).
var ErrRefused = errors.New("agent: refusing to run")

// Options wires an Agent. Every dependency is an interface the agent
// declares, so the loop runs against fakes in unit tests.
type Options struct {
	Config    *config.Config
	DCS       DCS
	Postgres  Postgres
	Publisher Publisher
	Peers     PeerFetcher
	// Failsafe makes the leader's failsafe calls (POST /failsafe); nil
	// means no failsafe round can succeed, so the leader fences at its
	// deadline in an etcd outage even with failsafe_mode on.
	Failsafe FailsafeCaller
	// Watchdog is the hardware watchdog; nil means mode off.
	Watchdog Watchdog
	// Stonith runs fence.command (the STONITH hook); nil uses Config.Fence.
	Stonith StonithHook
	// Prober probes the leader for the fast path (fence.fast_failover);
	// nil uses Peers when it is a LeaderProber (HTTPPeers is).
	Prober LeaderProber
	// Metrics, when set, receives the loop's series.
	Metrics *Metrics
	// Notifier, when set, hears readiness, status and keep-alives from the
	// loop (systemd Type=notify; notify.go).
	Notifier Notifier
	Logger   *slog.Logger
	// Clock returns the current time with a monotonic reading; nil = time.Now.
	Clock func() time.Time
}

// Agent runs the HA loop of one member. Run owns all of its state: the
// other methods (the REST backend) only read published values or etcd.
type Agent struct {
	cfg   *config.Config
	name  string
	log   *slog.Logger
	dcs   DCS
	pg    Postgres
	pub   Publisher
	peers PeerFetcher
	// failsafe makes the failsafe calls; fs is the failsafe state.
	failsafe FailsafeCaller
	fs       failsafeState
	wd       Watchdog
	stonith  StonithHook
	prober   LeaderProber
	metrics  *Metrics
	now      func() time.Time

	notifier Notifier
	notified notifyState // what the service manager was last told

	// Loop-owned state.
	dyn           config.Dynamic
	lease         leadership // assigned only through setLease
	lastKeepAlive time.Time
	pgDownSince   time.Time
	pgState       PGRunState
	role          Role
	lastPlan      Plan
	lastRewindTry time.Time
	floorRaises   bool // the standby was started above its configured settings (the start-time floor)
	memberWritten memberRecord
	statusWritten statusRecord
	slots         slotState
	nextTick      time.Time
	// configErr is what this member could not apply of the cluster
	// config ("" when it applies fully); paramsErr the parameters' part,
	// kept until the parameters change.
	configErr string
	paramsErr error
	// configRev is the ModRevision of the config key last applied: the
	// loop re-reads the view every tick and re-parses only a new revision.
	configRev int64

	// Failover timing inputs: this replica's own WAL position across
	// ticks (raceBackoff), the last tick its WAL receiver streamed while
	// another member held the leader key (the detect phase), and the last
	// promote's moments (rto.go).
	walSeen        WALSeen
	streamLastSeen time.Time
	promotion      promotionTimes
	// fast is the fence-confirmed fast path's state (fastpath.go).
	fast fastState

	// The current leaderless episode, for the decision record.
	leaderLastSeen   time.Time
	leaderlessSince  time.Time
	leaderGoneRev    int64 // the view's revision when the leaderless episode was first seen
	previousLeader   string
	episodeRecorded  bool
	pendingDecisions []restapi.Decision

	// quiesce is set while this leader has stopped PostgreSQL for a switchover.
	quiesce *quiesceState
	// soClock times the running switchover on this host's clock.
	soClock switchover.Clock
	// ownRecords: this agent's newest switchover record write.
	ownRecords ownWrites
	// soStaleLock: a switchover lock seen without a running record.
	soStaleLock switchover.StaleLock
	// pollTick: this tick was woken by the switchover poll alone; a
	// leader whose lease is young skips that tick's renewal.
	pollTick bool
	// tickAgain: the next tick starts at once (set by a step whose outcome
	// the running switchover waits on, e.g. its candidate's promotion).
	tickAgain bool

	// Synchronous mode: the WAL position when synchronous_standby_names
	// last changed, and whether the leader runs degraded (asynchronous).
	ssnChangedAt postgres.LSN
	syncDegraded bool
	// quorumWait: what quorum-mode upkeep last waited for (logged once).
	quorumWait string
	// nosync: a stopping standby asks to be released from synchronous duty.
	nosync bool

	// Operator commands run by the loop between ticks.
	commands   chan command
	restartAt  *scheduledRestart
	restart    *restartJob     // a restart whose stop runs beside the loop
	job        *job            // a clone or rewind running beside the loop
	router     *routing.Runner // nil without a routing: section
	routingJob *job            // routing work running beside the loop
	// routingDebt is PgBouncer work this leader still owes (routing.go).
	routingDebt routingDebt
	// fatal is set by work beside the loop whose failure must stop the
	// agent (a failed bootstrap, as Patroni does); the next tick returns it.
	fatal         error
	callbackRole  Role // the role on_role_change last reported
	lastPublished *restapi.Snapshot

	// limits is what every etcd and PostgreSQL call is bounded by
	// (ioDeadline), published by the loop for every goroutine.
	limits atomic.Pointer[ioLimits]
	// api is the REST reads' own state (api.go).
	api apiReads
}

// New checks the options and returns an agent ready to Run.
func New(o Options) (*Agent, error) {
	if o.Config == nil || o.DCS == nil || o.Postgres == nil || o.Publisher == nil || o.Peers == nil {
		return nil, errors.New("agent: Config, DCS, Postgres, Publisher and Peers are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Watchdog == nil {
		o.Watchdog = fencing.NewWatchdog(fencing.Config{Mode: fencing.ModeOff}, nil, o.Logger, o.Clock)
	}
	if o.Stonith == nil {
		o.Stonith = o.Config.Fence
	}
	if p, ok := o.Peers.(LeaderProber); ok && o.Prober == nil {
		o.Prober = p
	}
	dyn, err := o.Config.BootstrapDynamic()
	if err != nil {
		return nil, fmt.Errorf("agent: bootstrap.dcs: %w", err)
	}
	// The cluster-wide parameters of bootstrap.dcs apply from the first
	// configuration written; later changes come through applyConfig.
	if err := o.Postgres.SetDynamicParameters(dyn.PostgresParameters); err != nil {
		return nil, fmt.Errorf("agent: bootstrap.dcs postgresql.parameters: %w", err)
	}
	a := &Agent{
		cfg: o.Config, name: o.Config.Name, pub: o.Publisher, peers: o.Peers, failsafe: o.Failsafe,
		wd: o.Watchdog, stonith: o.Stonith, prober: o.Prober, metrics: o.Metrics, notifier: o.Notifier,
		log: o.Logger.With("member", o.Config.Name, "scope", o.Config.Scope), now: o.Clock,
		dyn: dyn, lease: newLeadership(o.Config.Watchdog.SafetyMargin),
		pgState: PGStopped, role: RoleUninitialized, commands: make(chan command),
	}
	// Every etcd and PostgreSQL call goes through the bounded wrappers, so
	// no path (the loop's, a switchover step's, a command's) can wait past
	// retry_timeout or the lease deadline.
	if o.Config.Routing.Enabled() {
		a.router = routing.NewRunner(o.Config.Routing, o.Config.Scope)
	}
	a.dcs = boundedDCS{inner: o.DCS, bound: a.dcsDeadline}
	a.pg = boundedPostgres{Postgres: o.Postgres, bound: a.ioDeadline}
	a.publishLimits()
	return a, nil
}

// Run runs the HA loop until ctx ends, then shuts down cleanly: PostgreSQL
// is stopped and the leader key released. It returns ErrRefused (wrapped)
// when the node must not join, and nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "version", buildinfo.Version, "watchdog", a.cfg.Watchdog.Mode)
	a.probeWatchdog()
	var runErr error
	for ctx.Err() == nil {
		if err := a.tick(ctx); err != nil {
			runErr = err
			break
		}
		a.waitNextTick(ctx)
	}
	a.notifyStopping()
	a.settleJob()
	a.shutdown(context.WithoutCancel(ctx))
	return runErr
}

// waitNextTick sleeps until the next loop_wait boundary, waking early when
// the watch reports a change that can require action (DESIGN §2): the
// leader key, the config, a failover request or a switchover.
func (a *Agent) waitNextTick(ctx context.Context) {
	now := a.now()
	// A fixed cadence: an early wake-up does not move the scheduled tick.
	if !a.nextTick.After(now) {
		a.nextTick = a.nextTick.Add(a.dyn.LoopWait)
		if a.nextTick.Before(now) {
			a.nextTick = now.Add(a.dyn.LoopWait)
		}
	}
	wake := a.nextTick
	if d := a.lease.deadline(); a.lease.leading && d.Before(wake) {
		// Fence at the deadline itself, not at the next tick after it.
		wake = d
	}
	var stopped, restartStopped, jobDone, routed <-chan error
	if j := a.job; j != nil {
		jobDone = j.done // act on a success as soon as the work ends (a failure waits for the tick)
	}
	if j := a.routingJob; j != nil {
		routed = j.done // a switchover goes on as soon as its routers answered
	}
	if r := a.restart; r != nil && r.stop != nil {
		restartStopped = r.stop.done // start PostgreSQL again as soon as the stop ends
	}
	poll := switchover.Polls(a.activeSwitchover(a.dcs.View()), a.name, a.lease.leading)
	if q := a.quiesce; q != nil {
		if !q.done {
			stopped = q.stopped // a switchover moves on as soon as the stop ends
		} else {
			poll = true // catch-up: watch the candidate closely
		}
	}
	polled := false
	if fast := now.Add(switchoverPoll); poll && fast.Before(wake) {
		wake, polled = fast, true
	}
	if fw := a.fastWake(); !fw.IsZero() && fw.Before(wake) {
		wake, polled = fw, false // a suspicion comes of age: look again then
	}
	var fenced <-chan error
	if j := a.fast.job; j != nil {
		fenced = j.done // the fast path goes on as soon as the hook ends
	}
	if a.tickAgain {
		// This tick changed what the next one reads (a promotion the
		// switchover waits on): look again at once.
		a.tickAgain = false
		wake, polled = now, false
	}
	a.pollTick = false
	timer := time.NewTimer(wake.Sub(now))
	defer timer.Stop()
	var keepalive <-chan time.Time
	if every := a.keepaliveEvery(); every > 0 {
		// Keep-alives between ticks come from here, the loop itself.
		t := time.NewTicker(every)
		defer t.Stop()
		keepalive = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			a.pollTick = polled
			return
		case <-keepalive:
			a.keepalive()
		case err := <-stopped:
			a.quiesce.err, a.quiesce.done = err, true
			return
		case err := <-restartStopped:
			a.endJob(a.restart.stop, err)
			return
		case err := <-jobDone:
			a.endJob(a.job, err)
			if err == nil {
				return
			}
			// A failed job (a clone whose source is unreachable fails at
			// connect in milliseconds) is retried at the next tick: woken
			// at once, the loop retried it hundreds of times a second.
			jobDone = nil
		case err := <-routed:
			a.endJob(a.routingJob, err)
			return
		case err := <-fenced:
			a.endJob(a.fast.job, err)
			return
		case c := <-a.commands:
			a.runCommand(ctx, c)
		case <-a.dcs.Notify():
			changes := a.dcs.TakeChanges()
			if changes&wakeOn != 0 {
				return
			}
			// Fast failover: a replica looks at once when a peer suspects
			// the leader (or withdraws): it probes the leader now, not at
			// its next tick, and agreement comes a tick sooner.
			if a.cfg.Fence.FastFailover && !a.lease.leading && changes&dcs.ChangeSuspects != 0 {
				return
			}
			// A synchronous leader reacts at once to a member asking to be
			// released (nosync) or a standby coming or going.
			if a.lease.leading && a.dyn.SynchronousMode.Enabled() && changes&dcs.ChangeMembers != 0 {
				return
			}
		}
	}
}

// switchoverPoll is how often a member looks again while its switchover
// hand-over waits on a fact no etcd event reports (switchover.Polls, and
// the old leader reading the candidate's position during catch-up),
// instead of waiting for the next loop_wait tick. Every other hand-over
// wakes the loop by an event: the stop's end, the record's and the leader
// key's watch events.
const switchoverPoll = 50 * time.Millisecond

const wakeOn = dcs.ChangeLeader | dcs.ChangeConfig | dcs.ChangeFailover | dcs.ChangeSwitchover | dcs.ChangeInitialize | dcs.ChangeReload

// tick is one pass of observe → decide → act → publish.
func (a *Agent) tick(ctx context.Context) error {
	start := time.Now()
	defer func() { a.observeMetrics(time.Since(start)) }()
	// A process waking from a freeze checks its lease deadline before
	// anything else, and fences without touching etcd first.
	if p, ok := fenceCheck(a.leaseState(), a.now()); ok {
		a.note(p)
		a.fence(ctx)
		a.recordPlan(Snapshot{View: a.dcs.View()}, p)
		a.lastPlan = p
	}
	a.collectJob()
	if j := a.fast.job; j != nil {
		a.collect(j)
	}
	if err := a.fatal; err != nil {
		return err
	}
	a.collectRouting()
	if a.job == nil {
		// A clone or rewind owns the data directory while it runs: the
		// config (and its file writes) waits until it ends.
		a.applyConfig(ctx)
	}
	a.renew(ctx)
	snap := a.observe(ctx, a.restartProgress())
	p := decide(snap)
	a.note(p)
	err := a.act(ctx, snap, p)
	a.settleRestart()
	if (!a.lease.leading || a.dyn.Pause) && !a.lease.unfenced {
		// Disarm on every path out of leadership and in maintenance mode,
		// but never while a failed fence may leave PostgreSQL writable:
		// then the device must still fire if the agent hangs.
		a.disarmWatchdog()
	}
	if !a.lease.leading {
		// A routing debt is a leader's: the next leader repoints anew.
		a.routingDebt = routingDebt{}
	}
	if !a.lease.leading && a.slots.primary {
		// The next leadership must create the replication slots afresh;
		// a replica keeps its own state (its copy throttle) tick to tick.
		a.slots = slotState{}
	}
	a.recordPlan(snap, p)
	a.lastPlan = p
	restartPending := a.restartAt != nil || a.restart != nil
	a.driveSwitchover(ctx, snap)
	a.runScheduledRestart(ctx, decideScheduledRestart(snap))
	a.noteRoleChange(ctx)
	a.processFailoverKey(ctx, snap)
	switch {
	case unchangedPostgres(snap, p, restartPending) && a.quiesce == nil && (a.pgState == PGRunning) == snap.PG.Running:
		// Nothing this tick touched PostgreSQL: publish what observe read
		// rather than query it a second time.
		a.publishStatus(ctx, snap.PG.Status, snap.PG.Running)
	case snap.PG.Unresponsive:
		// It did not answer this tick: a second query would only wait out
		// retry_timeout again and slow every tick of a hung primary.
		a.publishStatus(ctx, snap.PG.Status, false)
	default:
		a.publish(ctx)
	}
	a.flushDecisions(ctx)
	a.notifyTick(snap)
	return err
}

// unchangedPostgres: the plan did not act on PostgreSQL (wait, or the
// steady leader's upkeep), and no switchover or scheduled restart could
// have, so the observed status is still current.
func unchangedPostgres(s Snapshot, p Plan, restartPending bool) bool {
	return (p.Action.Kind == ActWait || p.Action.Kind == ActLead) && s.Switchover == nil && !restartPending
}

// trackLeader follows leaderless episodes: when the leader was last seen
// and when its absence was first observed.
func (a *Agent) trackLeader(v *dcs.Cluster, now time.Time) {
	if v == nil {
		return
	}
	if l := v.LeaderName(); l != "" {
		a.leaderLastSeen, a.previousLeader = now, l
		a.leaderlessSince, a.episodeRecorded = time.Time{}, false
		return
	}
	if a.leaderlessSince.IsZero() {
		a.leaderlessSince, a.leaderGoneRev = now, v.Revision
	}
}

// recordPlan keeps the automatic decisions worth auditing: one stand-down
// per member per leaderless episode, and every fence, demotion, in-place
// restart and release. Won races are recorded by race itself.
func (a *Agent) recordPlan(s Snapshot, p Plan) {
	switch p.Action.Kind {
	case ActWait:
		if p.Election == nil || a.episodeRecorded {
			return
		}
		a.episodeRecorded = true
		a.record(restapi.Decision{Kind: "stood_down", Reason: p.Reason, PreviousLeader: a.previousLeader,
			Candidates: electionRecord(p.Election), Timings: &restapi.FailoverTimings{LeaderLastSeen: a.leaderLastSeen, DetectedAt: a.leaderlessSince}})
	case ActFence, ActDemote, ActStartPrimary, ActRelease:
		if p.Action == a.lastPlan.Action && p.Reason == a.lastPlan.Reason {
			return // once per transition
		}
		kind := map[ActionKind]string{ActFence: "fence", ActDemote: "demote", ActStartPrimary: "restart_primary", ActRelease: "release"}[p.Action.Kind]
		a.record(restapi.Decision{Kind: kind, Reason: p.Reason, PreviousLeader: s.View.LeaderName()})
	}
}

func (a *Agent) leaseState() LeaseState {
	return a.lease.state(a.dcs.Lease())
}

// note logs a plan once per transition (INFO), and at DEBUG while it repeats.
func (a *Agent) note(p Plan) {
	if p.Action == a.lastPlan.Action && p.Reason == a.lastPlan.Reason {
		a.log.Debug("plan", "action", p.Action.Kind, "reason", p.Reason)
		return
	}
	a.log.Info("decision", "action", p.Action.Kind, "leader", p.Action.Leader, "reason", p.Reason)
}

// applyConfig applies the dynamic config from the cached view: all this
// member can, keeping what it runs for the rest — a key with a bad value,
// timings its safety margin refuses (config.ApplyDynamic), a parameter
// PostgreSQL would refuse — so one bad value never drops the good ones.
// What it could not apply is its config error (setConfigError).
func (a *Agent) applyConfig(ctx context.Context) {
	v := a.dcs.View()
	if v == nil || v.Config == nil || v.Config.ModRevision == a.configRev {
		return
	}
	a.configRev = v.Config.ModRevision
	dyn, err := config.ApplyDynamic(v.Config.Data, a.dyn, a.cfg.Watchdog)
	if dyn.TTL != a.dyn.TTL || dyn.LoopWait != a.dyn.LoopWait || dyn.RetryTimeout != a.dyn.RetryTimeout {
		a.log.Info("timings changed", "ttl", dyn.TTL, "loop_wait", dyn.LoopWait, "retry_timeout", dyn.RetryTimeout)
	}
	if !reflect.DeepEqual(dyn.PostgresParameters, a.dyn.PostgresParameters) {
		a.paramsErr = a.applyParameters(ctx, dyn.PostgresParameters)
	}
	a.dyn = dyn
	a.publishLimits()
	a.setConfigError(errors.Join(err, a.paramsErr))
}

// setConfigError keeps what this member could not apply of the cluster
// config, published in its member key, GET /patroni and the metrics. It
// logs once per change, not once per tick: WARN when it appears or
// changes, INFO when a later config applies fully.
func (a *Agent) setConfigError(err error) {
	msg := ""
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	switch msg {
	case a.configErr:
		return
	case "":
		a.log.Info("cluster config applies fully again")
	default:
		a.log.Warn("cannot apply the cluster config fully; what it refuses keeps its current value", "err", msg)
	}
	a.configErr = msg
}

// applyParameters writes cluster-wide PostgreSQL parameters and reloads;
// a parameter that needs a restart shows as pending_restart. The valid
// parameters apply even when some are refused: the error names those.
func (a *Agent) applyParameters(ctx context.Context, params map[string]any) error {
	refused := a.pg.SetDynamicParameters(params)
	changed, err := a.pg.Reconfigure()
	if err != nil {
		a.log.Warn("cannot rewrite postgresql.conf", "err", err)
		return refused
	}
	if changed && a.pgState == PGRunning {
		a.log.Info("cluster-wide PostgreSQL parameters changed; reloading")
		rctx, cancel := a.ioContext(ctx)
		defer cancel()
		if err := a.pg.Reload(rctx); err != nil {
			a.log.Warn("reload after a parameter change failed", "err", err)
		}
	}
	return refused
}

// ioContext bounds one etcd or PostgreSQL call: by retry_timeout, and while
// leading also by the lease deadline, so no call can carry the leader past
// the moment it must fence. The bounded wrappers apply the same bound to
// every call; ioContext is for a group of calls that share one budget.
func (a *Agent) ioContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, a.ioDeadline())
}
