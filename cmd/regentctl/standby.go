package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
)

// defaultClusterRoleWait bounds the wait of promote-cluster and
// demote-cluster: a promotion takes one HA cycle; a demotion a stop and
// a pg_rewind (or a new copy: raise --wait-timeout for a large database).
const defaultClusterRoleWait = 2 * time.Minute

// standbyClusterOf reads the active standby_cluster of the config key
// (nil for a primary cluster).
func standbyClusterOf(c *dcs.Cluster) *config.StandbyCluster {
	if c.Config == nil {
		return nil
	}
	dyn, _ := config.ParseDynamic(c.Config.Data) // lenient, as the agents read it
	if !dyn.StandbyCluster.Active() {
		return nil
	}
	return dyn.StandbyCluster
}

func newPromoteClusterCmd(s *settings) *cobra.Command {
	var force bool
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "promote-cluster",
		Short: "Turn a standby cluster into a primary cluster: its standby leader promotes",
		Long: `Turn a standby cluster into a primary cluster (Patroni 4.1's patronictl
promote-cluster): standby_cluster is removed from the dynamic config with
PATCH /config, the standby leader promotes within one HA cycle, and the
other members follow it. Then it waits (at most --wait-timeout) until the
leader reports role primary. Asks for confirmation unless --force; the old
primary cluster must no longer take writes (docs/disaster-recovery.md).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			if standbyClusterOf(c) == nil {
				return fmt.Errorf("cluster %s is not a standby cluster", s.scope)
			}
			if err := confirm(cmd, s, force, fmt.Sprintf("Promote standby cluster %s to a primary cluster?", s.scope)); err != nil {
				return err
			}
			if err := patchConfig(cmd, s, c, map[string]any{"standby_cluster": nil}); err != nil {
				return err
			}
			return waitLeaderRole(cmd, s, "primary", "promoted", waitFor)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&waitFor, "wait-timeout", defaultClusterRoleWait, "give up waiting after this long")
	return cmd
}

func newDemoteClusterCmd(s *settings) *cobra.Command {
	var force bool
	var waitFor time.Duration
	var host, slot, restore string
	var port int
	cmd := &cobra.Command{
		Use:   "demote-cluster --host H [--port P] [--slot S] [--restore-command C]",
		Short: "Turn a primary cluster into a standby cluster of another",
		Long: `Turn a primary cluster into a standby cluster replicating from another
cluster's primary at --host/--port (Patroni 4.1's patronictl
demote-cluster): standby_cluster is set in the dynamic config with
PATCH /config; the leader stops, is rewound onto the remote's history
with pg_rewind (or cloned again when that fails) and runs in recovery as
the standby leader; the other members cascade from it. Then it waits (at
most --wait-timeout) until the leader reports role standby_leader.
Asks for confirmation unless --force: the cluster stops taking writes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host == "" && restore == "" {
				return usagef("--host (or --restore-command) is required")
			}
			sc := map[string]any{}
			for k, v := range map[string]string{"host": host, "primary_slot_name": slot, "restore_command": restore} {
				if v != "" {
					sc[k] = v
				}
			}
			if port != 0 {
				sc["port"] = port
			}
			patch := map[string]any{"standby_cluster": sc}
			if err := config.CheckKeys(patch); err != nil {
				return usageError{err} // the flags made the value
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			if standbyClusterOf(c) != nil {
				return fmt.Errorf("cluster %s is already a standby cluster (promote-cluster first, or edit-config)", s.scope)
			}
			if err := confirm(cmd, s, force, fmt.Sprintf("Demote cluster %s to a standby cluster of %s? It stops taking writes.", s.scope, host)); err != nil {
				return err
			}
			if err := patchConfig(cmd, s, c, patch); err != nil {
				return err
			}
			return waitLeaderRole(cmd, s, "standby_leader", "demoted", waitFor)
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "", "the remote primary's address (an address that follows its failovers: HAProxy, a VIP)")
	f.IntVar(&port, "port", 0, "the remote primary's port (default 5432)")
	f.StringVar(&slot, "slot", "", "primary_slot_name: a slot on the remote primary to stream through")
	f.StringVar(&slot, "primary-slot-name", "", "the same as --slot (patronictl's name)")
	f.StringVar(&restore, "restore-command", "", "restore_command fetching the remote cluster's archived WAL")
	f.BoolVar(&force, "force", false, "do not ask for confirmation")
	f.DurationVar(&waitFor, "wait-timeout", defaultClusterRoleWait, "give up waiting after this long")
	return cmd
}

// patchConfig sends PATCH /config with patch to the leader (another member
// when the leader cannot be reached).
func patchConfig(cmd *cobra.Command, s *settings, c *dcs.Cluster, patch any) error {
	resp, err := s.callLeader(cmd.Context(), c, http.MethodPatch, "/config", patch)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("failed: %s refused the change: %w", resp.base, decodeError(resp.status, resp.body))
	}
	return nil
}

// waitLeaderRole polls the member keys until the leader publishes role
// want, for at most bound.
func waitLeaderRole(cmd *cobra.Command, s *settings, want, done string, bound time.Duration) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Waiting for the leader of %s to become %s ...\n", s.scope, want)
	ctx, cancel := context.WithTimeout(cmd.Context(), bound)
	defer cancel()
	seen := "no leader"
	for {
		if c, err := s.cluster(ctx); err == nil && c.Leader != nil {
			m := c.Members[c.Leader.Name]
			if m.Role == want && m.State == "running" {
				fmt.Fprintf(out, "Success: cluster %s %s; %s is the %s\n", s.scope, done, c.Leader.Name, want)
				return nil
			}
			seen = fmt.Sprintf("leader %s is %s (%s)", c.Leader.Name, m.Role, m.State)
		}
		if !sleepCtx(ctx, s.pollEvery()) {
			break
		}
	}
	if err := cmd.Context().Err(); err != nil {
		return err
	}
	return fmt.Errorf("the config changed, but after %s %s", bound, seen)
}
