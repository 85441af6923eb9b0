package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/clusterlist"
)

// decision is what the table shows of one entry of GET /decisions.
type decision struct {
	At     time.Time `json:"at"`
	Member string    `json:"member"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
}

func newDecisionsCmd(s *settings) *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "Show the agents' recent automatic decisions (failovers, fencing, stand-downs) and why",
		Long: `Show Regent's decision log, newest first, from any member's GET /decisions
(the leader's first). -o json prints the full records: candidates with
their LSNs and eligibility, timings, fencing.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: must be 0 (all) or more", limit)
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := s.callLeader(cmd.Context(), c, http.MethodGet, "/decisions", nil)
			if err != nil {
				return err
			}
			if resp.status != http.StatusOK {
				return fmt.Errorf("GET %s/decisions: %w", resp.base, decodeError(resp.status, resp.body))
			}
			return printDecisions(cmd.OutOrStdout(), resp.body, output, limit)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show the newest N decisions (0: all)")
	return cmd
}

func printDecisions(w io.Writer, body []byte, output string, limit int) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return fmt.Errorf("unreadable decision log: %w", err)
	}
	if limit > 0 && len(raw) > limit {
		raw = raw[:limit]
	}
	if output == "json" {
		if raw == nil {
			raw = []json.RawMessage{}
		}
		return printJSON(w, raw)
	}
	t := &clusterlist.Table{Header: []string{"At", "Member", "Kind", "Reason"}}
	for _, r := range raw {
		var d decision
		if err := json.Unmarshal(r, &d); err != nil {
			return fmt.Errorf("unreadable decision: %w", err)
		}
		at := ""
		if !d.At.IsZero() {
			at = d.At.Local().Format("2006-01-02 15:04:05")
		}
		t.Rows = append(t.Rows, []string{at, d.Member, d.Kind, oneLine(d.Reason)})
	}
	return t.Render(w)
}

// oneLine keeps a table row on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
