package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of an action's requests and of the waits around it.
const (
	// actionTimeout bounds one action request: Patroni's POST /switchover
	// polls for up to 20 s, a restart waits for PostgreSQL's stop and start.
	// Past it the outcome is unknown ("no-answer"); the agent goes on.
	actionTimeout = 45 * time.Second
	// undoTimeout bounds the heal's undo (ttl restored, resumed), retried
	// on every node until the config key shows it.
	undoTimeout = 90 * time.Second
	// settleTimeout bounds the wait for a switchover the action started
	// to end (lock released, failover key gone).
	settleTimeout = 120 * time.Second
	// scheduleGrace: a scheduled switchover still pending this long after
	// its time will not run (its leader is gone, say): it is cancelled.
	scheduleGrace = 20 * time.Second
)

var actionClient = &http.Client{Timeout: actionTimeout}

// request sends one API request with a JSON body (nil: none) and returns
// the status and the body.
func (n *Node) request(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return testcluster.API{Name: n.Name, URL: n.APIURL, Client: actionClient}.Do(ctx, method, path, body)
}

// brief shortens an answer for the round's line.
func brief(body []byte) string {
	s := testcluster.Compact(body)
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "…"
	}
	return s
}

// actionRun is one action in a round: its request, drawn when the round
// starts, then sent by begin in the background.
type actionRun struct {
	r      *Run
	rec    *Action
	target *Node
	method string
	path   string
	body   any
	// ttl is the ttl a ttl action asks for; ahead how far ahead a
	// scheduled switchover is asked for, scheduled the time it asked for.
	ttl       time.Duration
	ahead     time.Duration
	scheduled time.Time
	// records are the switchover records that existed before the round
	// (nil: etcd did not say).
	records map[string]bool
	done    chan struct{}
}

// newAction draws an action's target and request (with the run's rng, on
// the test goroutine); nil when the plan has none.
func (r *Run) newAction(ctx context.Context, p RoundPlan, leader *Node) *actionRun {
	if p.Action == "" {
		return nil
	}
	nodes := r.c.Nodes()
	replicas := r.c.Others(leader.Name)
	a := &actionRun{r: r, rec: &Action{Kind: p.Action, Offset: p.ActionAt}, done: make(chan struct{}),
		target: nodes[r.rng.IntN(len(nodes))]}
	base := r.cfg.Cluster.TTL
	switch p.Action {
	case ActionTTLUp, ActionTTLDown:
		down, up := ttlChoices(base, r.cfg.Cluster.LoopWait, r.cfg.Cluster.RetryTimeout, safetyMargin)
		choices := up
		if p.Action == ActionTTLDown {
			choices = down
		}
		ttl := base
		if len(choices) > 0 {
			ttl = choices[r.rng.IntN(len(choices))]
		}
		a.ttl = time.Duration(ttl) * time.Second
		a.method, a.path, a.body = http.MethodPatch, "/config", map[string]any{"ttl": ttl}
		a.rec.Detail = fmt.Sprintf("ttl %d→%d s", base, ttl)
	case ActionPause:
		a.method, a.path, a.body = http.MethodPatch, "/config", map[string]any{"pause": true}
		a.rec.Detail = "pause"
	case ActionSwitchover:
		body := map[string]any{"reason": "chaos"}
		a.rec.Detail = "to the best candidate"
		if r.rng.IntN(2) == 0 {
			to := replicas[r.rng.IntN(len(replicas))].Name
			body["to"] = to
			a.rec.Detail = "to " + to
		}
		a.method, a.path, a.body = http.MethodPatch, "/switchover", body
	case ActionSwitchoverPatroni, ActionSwitchoverScheduled:
		body := map[string]any{"leader": leader.Name}
		a.rec.Detail = "leader " + leader.Name
		if r.rng.IntN(2) == 0 {
			to := replicas[r.rng.IntN(len(replicas))].Name
			body["candidate"] = to
			a.rec.Detail += ", candidate " + to
		}
		if p.Action == ActionSwitchoverScheduled {
			a.ahead = between(r.rng, 2000, 6000) // scheduled_at is set when sent
			a.rec.Detail += fmt.Sprintf(", scheduled %s ahead", a.ahead)
		}
		a.method, a.path, a.body = http.MethodPost, "/switchover", body
	case ActionRestartLeader:
		a.target = leader
		a.method, a.path, a.body = http.MethodPost, "/restart", map[string]any{}
		a.rec.Detail = "restart"
	case ActionReinitReplica:
		a.target = replicas[r.rng.IntN(len(replicas))]
		force := r.rng.IntN(2) == 0
		a.method, a.path, a.body = http.MethodPost, "/reinitialize", map[string]any{"force": force}
		a.rec.Detail = fmt.Sprintf("force %v", force)
	}
	a.rec.Node = a.target.Name
	if a.switches() {
		// Read now, while etcd answers: the fault may take it away.
		a.records, _ = r.switchoverRecords(ctx)
	}
	return a
}

// switchTo makes a routing kind's switchover go to n (the fault acts on
// the candidate), or to the best candidate (n nil): a replica drawn at
// random may not qualify (not the synchronous standby), and the round
// would then test no switchover at all.
func (a *actionRun) switchTo(n *Node) {
	body, ok := a.body.(map[string]any)
	if !ok || a.rec.Kind != ActionSwitchover {
		return
	}
	if n == nil {
		delete(body, "to")
		a.rec.Detail = "to the best candidate"
		return
	}
	body["to"] = n.Name
	a.rec.Detail = "to " + n.Name
}

// switches reports whether the action may start a switchover.
func (a *actionRun) switches() bool {
	switch a.rec.Kind {
	case ActionSwitchover, ActionSwitchoverPatroni, ActionSwitchoverScheduled:
		return true
	}
	return false
}

// begin sends the request in the background; the round goes on.
func (a *actionRun) begin(ctx context.Context, round int) {
	if body, ok := a.body.(map[string]any); ok && a.ahead > 0 {
		a.scheduled = time.Now().Add(a.ahead)
		body["scheduled_at"] = a.scheduled.Format(time.RFC3339Nano)
	}
	a.rec.Start = a.r.clock.Now()
	a.r.log.Add(a.rec.Start, "round %d: action %s (%s): %s %s on %s", round, a.rec.Kind, a.rec.Detail, a.method, a.path, a.target.Name)
	go func() {
		defer close(a.done)
		code, body, err := a.target.request(ctx, a.method, a.path, a.body)
		a.rec.Done = a.r.clock.Now()
		a.rec.Code, a.rec.Answer = code, brief(body)
		if err != nil {
			a.rec.Err = shortErr(err)
		}
		a.r.log.Add(a.rec.Done, "round %d: action %s answered %s", round, a.rec.Kind, a.rec.Outcome())
	}()
}

// ttlChanges is the ttl change the action may have made, for the lease
// check (whatever its answer: a timed-out CAS may still have committed).
func (a *actionRun) ttlChanges() []ttlChange {
	if a == nil || a.ttl == 0 || a.rec.Start == 0 {
		return nil
	}
	return []ttlChange{{Sent: a.rec.Start, TTL: a.ttl}}
}

// finish runs after the heal: it waits for the request's answer, undoes
// what must not outlive the round (ttl, pause) and waits until a
// switchover it started has ended. An error ends the run: the next round
// would not start from the base configuration.
func (a *actionRun) finish(ctx context.Context) error {
	if a == nil || a.rec.Start == 0 {
		return nil
	}
	<-a.done // bounded by actionTimeout
	switch a.rec.Kind {
	case ActionTTLUp, ActionTTLDown:
		return a.undo(ctx, map[string]any{"ttl": a.r.cfg.Cluster.TTL}, func(cfg map[string]any) bool {
			ttl, ok := cfg["ttl"].(float64)
			return ok && int(ttl) == a.r.cfg.Cluster.TTL
		})
	case ActionPause:
		return a.undo(ctx, map[string]any{"pause": false}, func(cfg map[string]any) bool {
			p, ok := cfg["pause"]
			return !ok || p == false
		})
	}
	if a.switches() {
		return a.settle(ctx)
	}
	return nil
}

// undo patches the config key through each node in turn until etcd shows
// it undone.
func (a *actionRun) undo(ctx context.Context, patch map[string]any, done func(map[string]any) bool) error {
	want, _ := json.Marshal(patch)
	tries, last, err := a.r.patchConfigUntil(ctx, patch, done)
	if err != nil {
		return fmt.Errorf("undo %s: %w", a.rec.Kind, err)
	}
	if tries == 0 {
		a.rec.Undo = "nothing to undo (the change did not take)"
	} else {
		a.rec.Undo = fmt.Sprintf("%s after %d request(s), last %s", want, tries, last)
	}
	a.r.log.Add(a.r.clock.Now(), "action %s undone: %s", a.rec.Kind, a.rec.Undo)
	return nil
}

// patchConfigUntil patches the config key through each node in turn until
// etcd shows done (bounded by undoTimeout); it returns how many requests
// it sent and how the last one went.
func (r *Run) patchConfigUntil(ctx context.Context, patch map[string]any, done func(map[string]any) bool) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, undoTimeout)
	defer cancel()
	nodes := r.c.Nodes()
	want, _ := json.Marshal(patch)
	var last string
	for try := 0; ; try++ {
		cfg, err := r.configKey(ctx)
		if err == nil && done(cfg) {
			return try, last, nil
		}
		n := nodes[try%len(nodes)]
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		code, body, err := n.request(rctx, http.MethodPatch, "/config", patch)
		rcancel()
		last = fmt.Sprintf("%s %d", n.Name, code)
		if code >= 300 {
			last += " " + brief(body)
		}
		if err != nil {
			last = fmt.Sprintf("%s: %s", n.Name, shortErr(err))
		}
		select {
		case <-ctx.Done():
			return try, last, fmt.Errorf("config key not %s within %s (last: %s)", want, undoTimeout, last)
		case <-time.After(time.Second): // let the write land before re-reading
		}
	}
}

// configKey reads the config key as a JSON object.
func (r *Run) configKey(ctx context.Context) (map[string]any, error) {
	v, err := testcluster.GetKey(ctx, r.c.cli, r.c.keys.Config())
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("no config key")
	}
	var cfg map[string]any
	if err := json.Unmarshal(v, &cfg); err != nil {
		return nil, fmt.Errorf("config key: %w", err)
	}
	return cfg, nil
}

// settle waits until no switchover is running or pending (the lock and
// the failover key gone), cancelling a scheduled one that cannot run any
// more, then records what became of the records the action created.
func (a *actionRun) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	cancelled := false
	var last string
	for {
		lock, failover, err := a.r.switchoverPending(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case lock == "" && failover.Empty():
			a.rec.Result = a.r.describeRecords(ctx, a.records)
			if cancelled {
				a.rec.Result = "scheduled switchover cancelled after its time; " + a.rec.Result
			}
			return nil
		default:
			last = fmt.Sprintf("lock %q, failover key %+v", lock, failover)
		}
		if err == nil && !cancelled && lock == "" && failover.ScheduledAt != "" && !a.scheduled.IsZero() &&
			time.Now().After(a.scheduled.Add(scheduleGrace)) {
			cancelled = true
			a.r.cancelScheduled(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not settle within %s: %s", a.rec.Kind, settleTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// switchoverPending reads the switchover lock and the failover key.
func (r *Run) switchoverPending(ctx context.Context) (string, dcs.Failover, error) {
	var f dcs.Failover
	lock, err := testcluster.GetKey(ctx, r.c.cli, r.c.keys.SwitchoverLock())
	if err != nil {
		return "", f, fmt.Errorf("read switchover lock: %w", err)
	}
	fo, err := testcluster.GetKey(ctx, r.c.cli, r.c.keys.Failover())
	if err != nil {
		return "", f, fmt.Errorf("read failover key: %w", err)
	}
	if len(fo) > 0 {
		if err := json.Unmarshal(fo, &f); err != nil {
			return "", f, fmt.Errorf("failover key %q: %w", fo, err)
		}
	}
	return string(lock), f, nil
}

// cancelScheduled sends DELETE /switchover to each node until one answers.
func (r *Run) cancelScheduled(ctx context.Context) {
	for _, n := range r.c.Nodes() {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		code, body, err := n.request(rctx, http.MethodDelete, "/switchover", nil)
		cancel()
		if err == nil {
			r.log.Add(r.clock.Now(), "scheduled switchover cancelled through %s: %d %s", n.Name, code, testcluster.Compact(body))
			return
		}
	}
}

// switchoverRecords lists the ids of the switchover records in etcd.
func (r *Run) switchoverRecords(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := r.c.cli.Get(ctx, r.c.keys.SwitchoversPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list switchover records: %w", err)
	}
	ids := map[string]bool{}
	for _, kv := range resp.Kvs {
		ids[strings.TrimPrefix(string(kv.Key), r.c.keys.SwitchoversPrefix())] = true
	}
	return ids, nil
}

// describeRecords names the records created since before and their final
// state ("switchover records: none" when the action created none).
func (r *Run) describeRecords(ctx context.Context, before map[string]bool) string {
	if before == nil {
		return "switchover records: unknown (etcd did not list them before the round)"
	}
	now, err := r.switchoverRecords(ctx)
	if err != nil {
		return "switchover records: unknown (" + err.Error() + ")"
	}
	var out []string
	for id := range now {
		if before[id] {
			continue
		}
		out = append(out, id+" "+r.recordState(ctx, id))
	}
	if len(out) == 0 {
		return "switchover records: none"
	}
	slices.Sort(out)
	return "switchover records: " + strings.Join(out, ", ")
}

// recordState is a record's from→to, state and stage, and its failure.
func (r *Run) recordState(ctx context.Context, id string) string {
	v, err := testcluster.GetKey(ctx, r.c.cli, r.c.keys.Switchover(id))
	if err != nil || v == nil {
		return "(unreadable)"
	}
	var rec struct {
		From, To, Stage, State string
		Failure                *struct{ Reason string }
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return "(unparsable)"
	}
	s := fmt.Sprintf("%s→%s %s at %s", rec.From, rec.To, rec.State, rec.Stage)
	if rec.Failure != nil && rec.Failure.Reason != "" {
		s += " (" + rec.Failure.Reason + ")"
	}
	return s
}

// setFailsafe turns failsafe_mode on or off for a failsafe round. On, it
// also waits until the failsafe key names every node: the topology the
// leader checks (without it the leader has none and fences, as without
// failsafe).
func (r *Run) setFailsafe(ctx context.Context, on bool) error {
	if _, _, err := r.patchConfigUntil(ctx, map[string]any{"failsafe_mode": on}, func(cfg map[string]any) bool {
		v, ok := cfg["failsafe_mode"].(bool)
		return v == on && (ok || !on)
	}); err != nil {
		return fmt.Errorf("failsafe_mode %v: %w", on, err)
	}
	if !on {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, undoTimeout)
	defer cancel()
	for {
		resp, err := r.c.cli.Get(ctx, r.c.keys.Failsafe())
		var topo map[string]string
		if err == nil && len(resp.Kvs) == 1 && json.Unmarshal(resp.Kvs[0].Value, &topo) == nil && len(topo) == len(r.c.Nodes()) {
			r.log.Add(r.clock.Now(), "failsafe_mode on; failsafe key names %d nodes", len(topo))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the failsafe key does not name every node within %s (now %v)", undoTimeout, topo)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
