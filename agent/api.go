package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

// The Agent is the REST API's Backend: fresh etcd reads for /cluster,
// /history and /config.
var _ restapi.Backend = (*Agent)(nil)

// Cluster builds GET /cluster from a fresh read (patroni-compat.md §2.5).
func (a *Agent) Cluster(ctx context.Context) (restapi.ClusterDoc, error) {
	c, err := a.dcs.Load(ctx)
	if err != nil {
		return restapi.ClusterDoc{}, fmt.Errorf("read cluster: %w", err)
	}
	dyn, _ := config.ParseDynamic(configData(c))
	return ClusterDoc(c, dyn), nil
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
		}
		if leader == "" {
			cm.Decision = m.Decision
		}
		if host, port, err := parseConnURL(m.ConnURL); err == nil {
			cm.Host, cm.Port = host, port
		}
		switch {
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
	c, err := a.dcs.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("read cluster: %w", err)
	}
	if c.History == nil {
		return json.RawMessage("[]"), nil
	}
	return json.Marshal(c.History)
}

// Config returns the raw config key and its mod revision.
func (a *Agent) Config(ctx context.Context) (json.RawMessage, int64, error) {
	c, err := a.dcs.Load(ctx)
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
