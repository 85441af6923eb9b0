package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

// Failsafe mode (Patroni's failsafe_mode; DESIGN §10, docs/architecture.md
// "Failsafe mode"). When the leader's renewal fails for a reason that says
// nothing about the leader key (dcs.ErrorClass.Outage), the leader asks
// every member of the topology frozen at the last successful etcd read,
// concurrently, whether it may go on (POST /failsafe). Only when every one
// of them answers in time does the deadline move, exactly as a renewal
// would (leadership.failsafeRenewed, send time read before the calls).
// Each member that answered refuses to race for the leader key or promote
// for a ttl after the call (Snapshot.FailsafeHold, decide's
// failsafeBlock), so while the leader's deadline lasts nobody else can
// become primary — even a member that reaches etcd and sees the key
// expire. A member the topology does not hold cannot race either: with
// failsafe_mode on, a member the /failsafe key does not name never races.
//
// How it keeps the safety rule (DESIGN §9): PostgreSQL still accepts writes
// only until the deadline; the deadline moves only on an acknowledgement
// (etcd's, or every member's) sent after the send time it is computed
// from; the watchdog is pinged by the same rule as on a renewal. The one
// exception to "a leader that lost its lease never re-creates the key" is
// regainAfterFailsafe: only while the deadline of a failsafe episode lasts,
// only by a create-if-absent, and so never over another member's key.

// failsafeProbe bounds every etcd call of a leader in failsafe mode whose
// last renewal met an outage: a tick must not wait retry_timeout on each
// of its etcd calls, or the next failsafe round would come after the
// deadline. A healthy etcd answers in milliseconds, so the renewal that
// finds it back is not delayed.
const failsafeProbe = 500 * time.Millisecond

// FailsafeCaller makes a leader's failsafe calls.
type FailsafeCaller interface {
	// CallFailsafe posts body to every member's POST /failsafe
	// concurrently (apiURLs: member name → api_url) and returns, once all
	// answered or ctx ended, nil for each member that accepted (200
	// "Accepted", Patroni's answer) and the reason for each other one.
	CallFailsafe(ctx context.Context, apiURLs map[string]string, body []byte) map[string]error
}

// failsafeRequest is POST /failsafe's body: Patroni's fields (name,
// conn_url, api_url), plus Regent's ttl in seconds, which a Regent member
// holds for at least (Patroni ignores unknown fields).
type failsafeRequest struct {
	Name    string `json:"name"`
	ConnURL string `json:"conn_url,omitempty"`
	APIURL  string `json:"api_url,omitempty"`
	TTL     int64  `json:"ttl,omitempty"`
}

// failsafeState is the agent's failsafe bookkeeping; hold, active and
// primary are shared with the REST goroutines.
type failsafeState struct {
	// hold is the last failsafe call this member accepted.
	hold atomic.Pointer[FailsafeHold]
	// primary: this member's PostgreSQL runs as a primary, or it holds
	// the leader key (as last published); it then refuses failsafe calls,
	// as Patroni does for a running primary.
	primary atomic.Bool
	// active is this member's failsafe status as last published (nil
	// when failsafe is not active here), for GET /cluster.
	active atomic.Pointer[restapi.FailsafeStatus]
	// etcdErr is the class of the last etcd failure of a renewal
	// (ErrClassNone after a success); loop-owned.
	etcdErr dcs.ErrorClass
}

// noteEtcdError records the class of a renewal's outcome (nil: success)
// and republishes the bounds, which depend on it (failsafeProbe).
func (a *Agent) noteEtcdError(err error) dcs.ErrorClass {
	class := dcs.ErrClassNone
	if err != nil {
		class = a.dcs.Classify(err)
	}
	if class != a.fs.etcdErr {
		if class == dcs.ErrClassNone {
			a.log.Info("etcd answers again", "etcd_error", a.fs.etcdErr.String())
		}
		a.fs.etcdErr = class
		a.publishLimits()
	}
	return class
}

// failsafeProbing: this leader bridges an etcd outage in failsafe mode, so
// its etcd calls are bounded by failsafeProbe.
func (a *Agent) failsafeProbing() bool {
	return a.lease.leading && a.dyn.FailsafeMode && a.fs.etcdErr.Outage()
}

// failsafeTopology is the members a failsafe round must reach (name →
// api_url, self excluded): the /failsafe key's and the view's. The view is
// the watch cache, which only a successful etcd read updates, so this is
// the member list frozen at the last successful read (Patroni's rule).
// Only a /failsafe key that names this leader allows failsafe at all (nil
// otherwise): every member outside it is then barred from racing
// (failsafeBlock), so the leader need not reach it. A member with no
// api_url stays in (with ""): it cannot be asked, so no round succeeds
// while it is there.
func failsafeTopology(v *dcs.Cluster, self string, on bool) map[string]string {
	if v == nil || !on {
		return nil
	}
	key, ok := v.Failsafe()
	if !ok {
		return nil
	}
	if _, named := key[self]; !named {
		return nil
	}
	t := make(map[string]string, len(key)+len(v.Members))
	for name, url := range key {
		t[name] = url
	}
	for name, m := range v.Members {
		if url, ok := t[name]; !ok || url == "" {
			t[name] = m.APIURL
		}
	}
	delete(t, self)
	return t
}

// failsafeRound runs when the leader's renewal failed with an outage
// (class): with failsafe_mode on, it calls every member of the frozen
// topology and moves the deadline only if all of them accepted within the
// deadline (or retry_timeout, whichever comes first). With no other member
// (a one-member cluster) it succeeds without a call, as Patroni's does:
// any other member would be outside the /failsafe key and barred from
// racing. Otherwise the leader fences at its deadline, as without
// failsafe.
func (a *Agent) failsafeRound(ctx context.Context, class dcs.ErrorClass) {
	if !a.dyn.FailsafeMode || !a.lease.leading || !class.Outage() {
		return
	}
	topology := failsafeTopology(a.dcs.View(), a.name, true)
	if topology == nil {
		a.log.Warn("failsafe: no topology (the /failsafe key did not name this leader at the last renewal); fencing at the deadline",
			"etcd_error", class.String(), "fence_in", a.lease.deadline().Sub(a.now()).Round(time.Millisecond))
		return
	}
	if a.failsafe == nil {
		return
	}
	body, _ := json.Marshal(failsafeRequest{Name: a.name, ConnURL: a.connURL(), APIURL: a.cfg.RestAPI.APIURL(),
		TTL: int64((a.dyn.TTL + time.Second - 1) / time.Second)})
	// The send time precedes every call: each member holds from when it
	// received the call, later than this.
	sent := a.now()
	var refused []string
	if len(topology) > 0 {
		rctx, cancel := a.ioContext(ctx)
		answers := a.failsafe.CallFailsafe(rctx, topology, body)
		cancel()
		refused = failsafeRefusals(topology, answers)
	}
	if len(refused) > 0 {
		a.log.Warn("failsafe: not every member accepted; fencing at the deadline unless etcd or the members answer in time",
			"etcd_error", class.String(), "refused", strings.Join(refused, "; "),
			"fence_in", a.lease.deadline().Sub(a.now()).Round(time.Millisecond))
		return
	}
	if !a.lease.inFailsafe() {
		a.log.Warn("failsafe mode active: etcd cannot be asked, every member confirmed this leader; staying primary",
			"etcd_error", class.String(), "members", len(topology))
	}
	next, extended := a.lease.failsafeRenewed(sent)
	a.setLease(next)
	if extended && !a.dyn.Pause {
		a.pingWatchdog()
	}
}

// failsafeRefusals lists, sorted, every member of topology that did not
// accept (no answer counts as a refusal).
func failsafeRefusals(topology map[string]string, answers map[string]error) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(topology)) {
		err, answered := answers[name]
		switch {
		case !answered:
			out = append(out, name+": no answer")
		case err != nil:
			out = append(out, fmt.Sprintf("%s: %v", name, err))
		}
	}
	return out
}

// regainAfterFailsafe runs when etcd answers again during a failsafe
// episode but the leader key is no longer on our lease: etcd expired the
// session lease during the outage (lease 0 or ErrLeaseLost), or the key is
// absent. This leader never stopped being the only one allowed to write:
// every member acknowledged it within a ttl and refuses to race until
// then, and a member outside the topology never races. So, still before
// the deadline (every call is bounded by it), it takes the key again, only
// if absent (AcquireLeader: create-if-absent) on a lease it grants when it
// has none. If another member holds the key it has lost, and is demoted
// as any leader without the key. Without this, a 60 s etcd outage at ttl
// 10 would always end in a demotion, which is what failsafe exists to
// avoid.
func (a *Agent) regainAfterFailsafe(ctx context.Context) {
	sent := a.now()
	if a.dcs.Lease() == 0 {
		if _, err := a.dcs.GrantLease(ctx, a.dyn.TTL); err != nil {
			a.log.Warn("failsafe: cannot grant a session lease to take the leader key again", "err", err)
			a.failsafeRound(ctx, a.noteEtcdError(err))
			return
		}
		a.memberWritten = memberRecord{} // the member key must be re-put on the new lease
	}
	won, err := a.dcs.AcquireLeader(ctx, a.name)
	switch {
	case err != nil:
		a.log.Warn("failsafe: cannot take the leader key again", "err", err)
		a.failsafeRound(ctx, a.noteEtcdError(err))
	case !won:
		a.noteEtcdError(nil)
		a.loseLeadership("after the failsafe episode another member holds the leader key")
	default:
		a.noteEtcdError(nil)
		a.lastKeepAlive = sent
		a.log.Info("failsafe episode over: the leader key was taken again (etcd had expired it during the outage)",
			"failsafe_for", sent.Sub(a.lease.failsafeSince).Round(time.Millisecond))
		next, extended := a.lease.regained(sent, a.dyn.TTL)
		a.setLease(next)
		if extended && !a.dyn.Pause {
			a.pingWatchdog()
		}
	}
}

// syncFailsafeKey keeps the /failsafe key (member name → api_url, this
// leader included) equal to the members etcd knows while failsafe_mode is
// on, and deletes it when off, as Patroni's leader does: the members then
// agree on the topology the leader checks. Written guarded by the leader
// key, only when it differs from the view.
func (a *Agent) syncFailsafeKey(ctx context.Context, v *dcs.Cluster) {
	if v == nil {
		return
	}
	cur, present := v.Failsafe()
	_, exists := v.Extra["failsafe"]
	key := a.dcs.Keys().Failsafe()
	if !a.dyn.FailsafeMode {
		if exists {
			if err := a.dcs.DeleteAsLeader(ctx, a.name, key, 0); err != nil {
				a.log.Warn("cannot delete the failsafe key", "err", err)
			}
		}
		return
	}
	want := map[string]string{a.name: a.cfg.RestAPI.APIURL()}
	for name, m := range v.Members {
		if name != a.name && m.APIURL != "" {
			want[name] = m.APIURL
		}
	}
	if present && maps.Equal(cur, want) {
		return
	}
	data, _ := json.Marshal(want)
	if err := a.dcs.PutAsLeader(ctx, a.name, key, data); err != nil {
		a.log.Warn("cannot write the failsafe key", "err", err)
	}
}

// connURL is this member's conn_url, as in its member key.
func (a *Agent) connURL() string {
	return fmt.Sprintf("postgres://%s/postgres", a.cfg.Postgres.ConnectAddress)
}

// AcceptFailsafe answers a leader's POST /failsafe (Patroni's codes and
// texts): 200 "Accepted" after recording the hold; 502 when failsafe_mode
// is off here; 500 "Running as a leader" when this member's PostgreSQL
// runs as a primary or it holds the leader key itself; 400 for a body without a name, or naming this member.
// Safe for concurrent use: it reads only published values.
func (a *Agent) AcceptFailsafe(_ context.Context, body []byte) (int, string) {
	lim := a.limits.Load()
	if !lim.failsafeMode {
		return http.StatusBadGateway, "failsafe_mode is off"
	}
	var req failsafeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, "invalid JSON body: " + err.Error()
	}
	switch {
	case req.Name == "":
		return http.StatusBadRequest, "name: required"
	case req.Name == a.name:
		return http.StatusBadRequest, "name: names this member itself"
	case a.fs.primary.Load():
		return http.StatusInternalServerError, "Running as a leader"
	}
	ttl := max(lim.ttl, time.Duration(req.TTL)*time.Second)
	now := a.now()
	h := &FailsafeHold{Leader: req.Name, At: now, TTL: ttl, Since: now, SinceWall: time.Now().UTC().Truncate(time.Second)}
	if prev := a.fs.hold.Load(); prev != nil && prev.Leader == req.Name && prev.Active(now) {
		h.Since, h.SinceWall = prev.Since, prev.SinceWall
	} else {
		a.log.Warn("failsafe: the leader reached me without etcd; not racing or promoting while this holds",
			"leader", req.Name, "hold", ttl)
	}
	a.fs.hold.Store(h)
	return http.StatusOK, "Accepted"
}

// failsafeHold returns the last accepted failsafe call (zero when none).
func (a *Agent) failsafeHold() FailsafeHold {
	if h := a.fs.hold.Load(); h != nil {
		return *h
	}
	return FailsafeHold{}
}

// FailsafeTopology answers GET /failsafe: the /failsafe key from the
// cluster view (Patroni answers it from its DCS cache too).
func (a *Agent) FailsafeTopology(ctx context.Context) (map[string]string, error) {
	v, _, err := a.failsafeView(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := v.Failsafe()
	if !ok {
		return nil, fmt.Errorf("%w: no failsafe key (failsafe_mode is off, or no leader wrote it yet)", restapi.ErrNotFound)
	}
	return m, nil
}

// failsafeStatus is this member's active failsafe episode as of now (nil
// when none): a leader whose deadline rests on failsafe rounds, or a member
// holding a leader's failsafe call (Patroni reports both as
// failsafe_mode_is_active).
func (a *Agent) failsafeStatus(now time.Time) *restapi.FailsafeStatus {
	switch h := a.failsafeHold(); {
	case a.lease.inFailsafe():
		since := a.lease.failsafeSince
		return &restapi.FailsafeStatus{Leader: a.name, Since: wallTime(since, now), AgeMs: now.Sub(since).Milliseconds()}
	case h.Active(now):
		return &restapi.FailsafeStatus{Leader: h.Leader, Since: wallTime(h.Since, now), AgeMs: now.Sub(h.Since).Milliseconds()}
	}
	return nil
}

// wallTime is the wall-clock time of the monotonic reading t (now is a
// reading of the same clock): what an operator can compare.
func wallTime(t, now time.Time) time.Time {
	return time.Now().Add(-now.Sub(t)).Round(time.Millisecond).UTC()
}

// memberFailsafe is the member key's failsafe field while a hold is
// active (nil otherwise), so regentctl list shows it from etcd.
func (a *Agent) memberFailsafe(now time.Time) *dcs.MemberFailsafe {
	h := a.failsafeHold()
	if !h.Active(now) {
		return nil
	}
	return &dcs.MemberFailsafe{Leader: h.Leader, Since: h.SinceWall.Format(time.RFC3339)}
}

// failsafeView is apiView, except that while failsafe mode is active here
// (fs, as last published) a stale view is served: etcd is then expected
// to be out of reach, and the last view is what this member acts on.
func (a *Agent) failsafeView(ctx context.Context) (*dcs.Cluster, *restapi.FailsafeStatus, error) {
	v, err := a.apiView(ctx)
	fs := a.fs.active.Load()
	if fs != nil && errors.Is(err, restapi.ErrViewStale) {
		if last := a.dcs.View(); last != nil {
			return last, fs, nil
		}
	}
	return v, fs, err
}
