package clusterlist

import (
	"fmt"
	"io"
	"net/url"
	"slices"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/progress"
)

// Row is one member's line.
type Row struct {
	Member   string `json:"name"`
	Host     string `json:"host"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Timeline int    `json:"timeline,omitempty"`
	// LagMB is the lag in whole MiB behind the leader's last published
	// position; nil on the leader, -1 when unknown.
	LagMB *int64         `json:"lag_in_mb,omitempty"`
	Tags  map[string]any `json:"tags,omitempty"`
	// ConfigError is what the member cannot apply of the cluster config.
	ConfigError string `json:"config_error,omitempty"`
	// Progress of a replica being created; the table shows it as the state.
	Progress *progress.Progress `json:"progress,omitempty"`
}

// Rows derives the table from a view, sorted by member name.
func Rows(c *dcs.Cluster) []Row {
	leader := c.LeaderName()
	var rows []Row
	for _, name := range c.MemberNames() {
		m := c.Members[name]
		r := Row{Member: name, Host: host(m.ConnURL), State: m.State, Timeline: m.Timeline, Tags: m.Tags, ConfigError: m.ConfigError, Progress: m.Progress}
		switch {
		case name == leader && m.Role == "standby_leader":
			r.Role = "Standby Leader" // patronictl's name for a standby cluster's leader
		case name == leader:
			r.Role = "Leader"
		case c.Sync.Matches(name):
			r.Role = "Sync Standby"
		default:
			r.Role = "Replica"
		}
		if name != leader {
			lag := int64(-1)
			if m.XLogLocation != nil {
				lag = 0
				if c.Status.Optime > *m.XLogLocation {
					lag = int64((c.Status.Optime - *m.XLogLocation + (1 << 19)) >> 20)
				}
			}
			r.LagMB = &lag
		}
		rows = append(rows, r)
	}
	return rows
}

func host(connURL string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return connURL
	}
	return u.Host
}

// Render writes a boxed table like patronictl's. A "Config error" column
// is added when a member cannot apply the cluster config (as patronictl
// adds "Pending restart" only when a member has one).
func Render(w io.Writer, scope string, c *dcs.Cluster) error {
	title := fmt.Sprintf(" Cluster: %s ", scope)
	if c.Initialize != nil && *c.Initialize != "" {
		title = fmt.Sprintf(" Cluster: %s (%s) ", scope, *c.Initialize)
	}
	t := MemberTable(title)
	rows := Rows(c)
	withErrors := slices.ContainsFunc(rows, func(r Row) bool { return r.ConfigError != "" })
	if withErrors {
		t.Header = append(t.Header, "Config error")
	}
	for _, r := range rows {
		cells := r.Cells()
		if withErrors {
			cells = append(cells, r.ConfigError)
		}
		t.Rows = append(t.Rows, cells)
	}
	return t.Render(w)
}

// MemberTable is an empty member table titled title: the columns of
// Row.Cells, the timeline and the lag right-aligned.
func MemberTable(title string) *Table {
	return &Table{
		Title:  title,
		Header: []string{"Member", "Host", "Role", "State", "TL", "Lag in MB"},
		Right:  map[int]bool{4: true, 5: true},
	}
}

// Cells is the row as MemberTable's cells: member, host, role, state (the
// progress of a replica being created, when there is one),
// timeline ("" when unknown) and lag in MB ("" for the leader, "unknown"
// for a member that reports no WAL position).
func (r Row) Cells() []string {
	tl, lag := "", ""
	if r.Timeline > 0 {
		tl = fmt.Sprint(r.Timeline)
	}
	if r.LagMB != nil {
		lag = "unknown"
		if *r.LagMB >= 0 {
			lag = fmt.Sprint(*r.LagMB)
		}
	}
	state := r.State
	if r.Progress != nil {
		state = r.Progress.String() // "creating replica 37%, 12 of 32 GB, 4 min left (basebackup)"
	}
	return []string{r.Member, r.Host, r.Role, state, tl, lag}
}
