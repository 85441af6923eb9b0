package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

// The Agent is the REST API's Backend (/cluster, /history, /config,
// /decisions) and its Members (allowlist_include_members). Every read
// answers from the watch-fed cluster view: a client's request rate never
// becomes etcd load (STYLE habit 21).
var (
	_ restapi.Backend = (*Agent)(nil)
	_ restapi.Members = (*Agent)(nil)
)

// apiReads is the REST reads' state beside the loop's: the etcd revision
// of this agent's latest REST write (config, switchover), which a later
// read waits for, so a client reads its own writes from the view.
type apiReads struct {
	written atomic.Int64
}

// wrote records that a REST write reached etcd at revision rev.
func (r *apiReads) wrote(rev int64) {
	for {
		cur := r.written.Load()
		if rev <= cur || r.written.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// apiView returns the cluster view a REST read answers from: once it
// reflects this agent's latest REST write (waiting, bounded by ctx, for
// the watch to deliver it), and only while etcd has answered within a
// ttl; otherwise restapi.ErrViewStale with the view's age. It never reads
// etcd itself.
func (a *Agent) apiView(ctx context.Context) (*dcs.Cluster, error) {
	want := a.api.written.Load()
	v := a.dcs.View()
	if v == nil || v.Revision < want {
		changed, cancel := a.dcs.Subscribe()
		defer cancel()
		for v = a.dcs.View(); v == nil || v.Revision < want; v = a.dcs.View() {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for the cluster view to reach revision %d: %w", want, ctx.Err())
			case <-changed:
			}
		}
	}
	if age, ttl := a.now().Sub(a.dcs.LastContact()), a.limits.Load().ttl; age >= ttl {
		return nil, fmt.Errorf("%w for %s (ttl %s)", restapi.ErrViewStale, age.Truncate(time.Second), ttl)
	}
	return v, nil
}

// MemberHosts lists the host of every member's api_url in the view, for
// restapi.allowlist_include_members. It never blocks.
func (a *Agent) MemberHosts() []string {
	v := a.dcs.View()
	if v == nil {
		return nil
	}
	hosts := make([]string, 0, len(v.Members))
	for _, m := range v.Members {
		if u, err := url.Parse(m.APIURL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}

// Cluster builds GET /cluster from the view (patroni-compat.md §2.5).
func (a *Agent) Cluster(ctx context.Context) (restapi.ClusterDoc, error) {
	c, fs, err := a.failsafeView(ctx)
	if err != nil {
		return restapi.ClusterDoc{}, fmt.Errorf("read cluster: %w", err)
	}
	dyn, _ := config.ParseDynamic(configData(c))
	doc := ClusterDoc(c, dyn)
	if fs != nil {
		doc.FailsafeModeIsActive, doc.Failsafe = true, fs
	}
	return doc, nil
}

// ClusterDoc derives the /cluster document from a view: roles come from
// the keys (leader, sync), not from the members' own role field.
func ClusterDoc(c *dcs.Cluster, dyn config.Dynamic) restapi.ClusterDoc {
	doc := restapi.ClusterDoc{Members: []restapi.ClusterMember{}, Pause: dyn.Pause}
	leader := c.LeaderName()
	for _, name := range c.MemberNames() {
		m := c.Members[name]
		cm := restapi.ClusterMember{
			Name: name, State: m.State, APIURL: m.APIURL, Timeline: m.Timeline,
			PendingRestart: m.PendingRestart, ScheduledRestart: m.ScheduledRestart, Tags: m.Tags,
			ConfigError: m.ConfigError, Progress: m.Progress,
		}
		if leader == "" {
			cm.Decision = m.Decision
		}
		if host, port, err := parseConnURL(m.ConnURL); err == nil {
			cm.Host, cm.Port = host, port
		}
		switch {
		case name == leader && dyn.StandbyCluster.Active():
			cm.Role = "standby_leader" // Patroni's name in a standby cluster
		case name == leader:
			cm.Role = "leader"
		case c.Sync.Matches(name) && c.Sync.Leader != name:
			cm.Role = "sync_standby"
		default:
			cm.Role = "replica"
		}
		if name != leader {
			cm.Lag = lagOf(c, m)
		}
		doc.Members = append(doc.Members, cm)
	}
	if c.Failover.ScheduledAt != "" {
		doc.ScheduledSwitchover = &restapi.Scheduled{At: c.Failover.ScheduledAt, From: c.Failover.Leader, To: c.Failover.Member}
	}
	return doc
}

// lagOf is patronictl's rule: status.optime − xlog_location, clamped at 0,
// or "unknown" when the member reports no position.
func lagOf(c *dcs.Cluster, m dcs.Member) any {
	if m.XLogLocation == nil {
		return "unknown"
	}
	if c.Status.Optime > *m.XLogLocation {
		return c.Status.Optime - *m.XLogLocation
	}
	return 0
}

// History returns the history key's array.
func (a *Agent) History(ctx context.Context) (json.RawMessage, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, fmt.Errorf("read cluster: %w", err)
	}
	if c.History == nil {
		return json.RawMessage("[]"), nil
	}
	return json.Marshal(c.History)
}

// Config returns the raw config key and its mod revision; after this
// agent's own PATCH or PUT, the revision written or a later one.
func (a *Agent) Config(ctx context.Context) (json.RawMessage, int64, error) {
	c, err := a.apiView(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read cluster: %w", err)
	}
	if c.Config == nil {
		return nil, 0, restapi.ErrNotFound
	}
	return json.RawMessage(c.Config.Data), c.Config.ModRevision, nil
}

func configData(c *dcs.Cluster) []byte {
	if c.Config == nil {
		return nil
	}
	return c.Config.Data
}
