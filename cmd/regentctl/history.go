package main

import (
	"fmt"
	"io"

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
}

func newHistoryCmd(s *settings) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the timeline history: TL, LSN, reason, timestamp, new leader",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			return printHistory(cmd.OutOrStdout(), c.History, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	return cmd
}

func printHistory(w io.Writer, history []dcs.HistoryEntry, output string) error {
	rows := make([]historyRow, 0, len(history))
	for _, h := range history {
		rows = append(rows, historyRow{h.Timeline, h.SwitchLSN, h.Reason, h.PromotedAt, h.NewLeader})
	}
	switch output {
	case "json":
		return printJSON(w, rows)
	case "yaml":
		return printYAML(w, rows)
	}
	t := &clusterlist.Table{Header: []string{"TL", "LSN", "Reason", "Timestamp", "New Leader"}, Right: map[int]bool{0: true, 1: true}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{fmt.Sprint(r.Timeline), fmt.Sprint(r.LSN), r.Reason, r.Timestamp, r.NewLeader})
	}
	return t.Render(w)
}
