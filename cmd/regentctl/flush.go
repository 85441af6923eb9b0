package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

func newFlushCmd(s *settings) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "flush <cluster> restart|switchover [member…]",
		Short: "Cancel a scheduled restart (of members, all by default) or the scheduled switchover",
		Long: `Cancel what was scheduled, as patronictl flush: "restart" sends DELETE
/restart to each named member (all by default) that has a scheduled
restart; "switchover" sends DELETE /switchover to the leader (then the
other members) when a switchover is scheduled. Both ask for confirmation
unless --force; without a terminal on stdin --force is required, and a
refusal changes nothing.`,
		Args:              cobra.MinimumNArgs(2),
		PersistentPreRunE: clusterArg(s),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, members := strings.ToLower(args[1]), args[2:]
			switch target {
			case "restart":
				return flushRestart(cmd, s, force, members)
			case "switchover":
				if len(members) > 0 {
					return usagef("flush switchover takes no member names (got %s)", strings.Join(members, ", "))
				}
				return flushSwitchover(cmd, s, force)
			}
			return usagef("flush %q: want restart or switchover", args[1])
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

// flushRestart cancels the selected members' scheduled restarts.
func flushRestart(cmd *cobra.Command, s *settings, force bool, members []string) error {
	return memberCommand{action: "flush the scheduled restart of", force: force, timeout: s.timeout,
		one: func(c *dcs.Cluster, name string, api *apiClient) bool {
			out := cmd.OutOrStdout()
			if len(c.Members[name].ScheduledRestart) == 0 {
				fmt.Fprintf(out, "No scheduled restart for member %s\n", name)
				return true
			}
			resp, err := api.call(cmd.Context(), http.MethodDelete, "/restart", nil)
			if err != nil || resp.status != http.StatusOK {
				fmt.Fprintf(out, "Failed: flush scheduled restart for member %s: %s\n", name, callFailure(resp, err))
				return false
			}
			fmt.Fprintf(out, "Success: flush scheduled restart for member %s\n", name)
			return true
		},
	}.run(cmd, s, members)
}

// flushSwitchover cancels the scheduled switchover through the members'
// DELETE /switchover, the leader's first.
func flushSwitchover(cmd *cobra.Command, s *settings, force bool) error {
	c, err := s.cluster(cmd.Context())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if c.Failover.ScheduledAt == "" {
		fmt.Fprintln(out, "No pending scheduled switchover")
		return nil
	}
	if err := confirm(cmd, s, force, fmt.Sprintf("Are you sure you want to cancel the switchover scheduled at %s?", c.Failover.ScheduledAt)); err != nil {
		return err
	}
	resp, err := s.callLeader(cmd.Context(), c, http.MethodDelete, "/switchover", nil)
	switch {
	case err != nil:
		return fmt.Errorf("cancel the scheduled switchover: %w", err)
	case resp.status == http.StatusOK:
		fmt.Fprintf(out, "Success: %s\n", strings.TrimSpace(string(resp.body)))
		return nil
	}
	return fmt.Errorf("cancel the scheduled switchover: %s", callFailure(resp, nil))
}
