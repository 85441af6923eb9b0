package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/clusterlist"
)

// historyRow is one timeline switch in -o json/yaml.
type historyRow struct {
	Timeline  int    `json:"timeline"`
	LSN       uint64 `json:"lsn"`
	Reason    string `json:"reason"`
	Timestamp string `json:"timestamp,omitempty"`
	NewLeader string `json:"new_leader,omitempty"`
	// Phases is the RTO budget of the failover that made this switch,
	// from the new leader's decision record (absent for a switchover, or
	// once the record was trimmed from the decision log).
	Phases []phase `json:"phases,omitempty"`
}

// phase is one entry of a failover record's timings.phases.
type phase struct {
	Phase string `json:"phase"`
	Ms    int64  `json:"ms"`
}

// failoverPhases maps "new leader/new timeline" to the phases of the
// failover decisions in the log (c.Extra decisions/…).
func failoverPhases(c *dcs.Cluster) map[string][]phase {
	out := map[string][]phase{}
	for key, v := range c.Extra {
		if !strings.HasPrefix(key, "decisions/") {
			continue
		}
		var d struct {
			Member  string `json:"member"`
			Kind    string `json:"kind"`
			Timings *struct {
				Timeline int     `json:"timeline"`
				Phases   []phase `json:"phases"`
			} `json:"timings"`
		}
		if json.Unmarshal(v.Data, &d) != nil || d.Kind != "failover" || d.Timings == nil || len(d.Timings.Phases) == 0 {
			continue
		}
		out[fmt.Sprintf("%s/%d", d.Member, d.Timings.Timeline)] = d.Timings.Phases
	}
	return out
}

func formatPhases(ps []phase) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, p.Phase+" "+(time.Duration(p.Ms)*time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

func newHistoryCmd(s *settings) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the timeline history: TL, LSN, reason, timestamp, new leader, failover phases",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			return printHistory(cmd.OutOrStdout(), c, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	return cmd
}

func printHistory(w io.Writer, c *dcs.Cluster, output string) error {
	phases := failoverPhases(c)
	rows := make([]historyRow, 0, len(c.History))
	for _, h := range c.History {
		// An entry names the timeline that ended; the new leader runs the next.
		rows = append(rows, historyRow{h.Timeline, h.SwitchLSN, h.Reason, h.PromotedAt, h.NewLeader,
			phases[fmt.Sprintf("%s/%d", h.NewLeader, h.Timeline+1)]})
	}
	switch output {
	case "json":
		return printJSON(w, rows)
	case "yaml":
		return printYAML(w, rows)
	}
	t := &clusterlist.Table{Header: []string{"TL", "LSN", "Reason", "Timestamp", "New Leader", "Failover Phases"}, Right: map[int]bool{0: true, 1: true}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{fmt.Sprint(r.Timeline), fmt.Sprint(r.LSN), r.Reason, r.Timestamp, r.NewLeader, formatPhases(r.Phases)})
	}
	return t.Render(w)
}
