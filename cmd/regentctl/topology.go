package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/clusterlist"
)

func newTopologyCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "topology",
		Short: "Show the members as a tree by their replicatefrom tags, as patronictl topology does",
		Long: `Show the members as patronictl's topology does: the leader first, each
replica under the member its replicatefrom tag names (the leader when the
tag is absent, names no other replica, or makes a loop). The tree shows the
tag only: Regent does not set up cascading replication, and every replica
streams from the leader.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			return printTopology(cmd.OutOrStdout(), s.scope, c)
		},
	}
}

// topologyOrder returns the members depth-first from the leader, each
// with its depth. A replica's parent is its replicatefrom member when that
// is another non-leader member; else the leader. Members a loop of
// replicatefrom tags cuts off are placed under the leader.
func topologyOrder(c *dcs.Cluster) (names []string, depth map[string]int) {
	leader := c.LeaderName()
	if _, ok := c.Members[leader]; !ok {
		leader = ""
	}
	children := map[string][]string{}
	for _, name := range c.MemberNames() {
		if name == leader {
			continue
		}
		p := parentOf(c, name, leader)
		children[p] = append(children[p], name)
	}
	depth = map[string]int{}
	var visit func(name string, d int)
	visit = func(name string, d int) {
		if _, seen := depth[name]; seen {
			return
		}
		depth[name] = d
		names = append(names, name)
		for _, ch := range children[name] {
			visit(ch, d+1)
		}
	}
	if leader != "" {
		visit(leader, 0)
	} else {
		for _, ch := range children[""] {
			visit(ch, 0)
		}
	}
	top := 0 // where members cut off by a loop go: under the leader
	if leader != "" {
		top = 1
	}
	for _, name := range c.MemberNames() {
		if _, seen := depth[name]; !seen {
			visit(name, top)
		}
	}
	return names, depth
}

// parentOf is a replica's upstream: its replicatefrom tag when it names
// another non-leader member, else the leader ("" when there is none).
func parentOf(c *dcs.Cluster, name, leader string) string {
	p, _ := c.Members[name].Tags["replicatefrom"].(string)
	if _, ok := c.Members[p]; ok && p != name && p != leader {
		return p
	}
	return leader
}

// printTopology renders the list table with the members in tree order.
func printTopology(w io.Writer, scope string, c *dcs.Cluster) error {
	rows := clusterlist.Rows(c)
	byName := make(map[string]clusterlist.Row, len(rows))
	for _, r := range rows {
		byName[r.Member] = r
	}
	names, depth := topologyOrder(c)
	t := clusterlist.MemberTable(fmt.Sprintf(" Cluster: %s ", scope))
	for _, n := range names {
		cells := byName[n].Cells()
		cells[0] = n
		if d := depth[n]; d > 0 {
			cells[0] = strings.Repeat("  ", d-1) + "+ " + n
		}
		t.Rows = append(t.Rows, cells)
	}
	if err := t.Render(w); err != nil {
		return err
	}
	return clusterNotes(w, c, time.Now())
}
