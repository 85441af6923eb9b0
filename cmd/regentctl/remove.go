package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

// awareText is what `remove` asks the operator to type, as patronictl.
const awareText = "Yes I am aware"

// clusterArg makes a command's first argument name the cluster (Patroni's
// `patronictl remove <cluster>`): it sets the scope when none is given,
// and must match the scope when one is (exit 2 otherwise).
func clusterArg(s *settings) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 || args[0] == "" {
			return usagef("%s: name the cluster: %s", cmd.Name(), cmd.Use)
		}
		if s.scope == "" {
			s.scope = args[0]
		}
		if err := s.resolve(cmd); err != nil {
			return err
		}
		if args[0] != s.scope {
			return usagef("cluster %q is not the cluster selected by --scope, $REGENT_SCOPE or -c (%q)", args[0], s.scope)
		}
		return nil
	}
}

func newRemoveCmd(s *settings) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove <cluster>",
		Short: "Wipe a cluster's state in etcd (every key under its prefix), after typed confirmation",
		Long: `Delete every key of the cluster in etcd: initialize, config, leader,
members, history, status, sync, failover, failsafe and Regent's
switchover and decision records and fast-failover suspicions (Patroni's
patronictl remove). PostgreSQL and its data
are not touched.

Without --force it asks, as patronictl does, for the cluster name, then
for the words "` + awareText + `", then, when the cluster has a leader,
for the leader's name; the answers are read from stdin, so they can be
piped. Any other answer, or none, changes nothing.

Meant for a cluster whose agents are stopped. On a running cluster the
leader loses its key, stops accepting writes and steps down at once (a
failover); the agents then elect a leader again, which writes the
initialize key back. The config key is not written back: each agent keeps
the configuration it last applied until one is set again (edit-config).`,
		Args:              cobra.ExactArgs(1),
		PersistentPreRunE: clusterArg(s),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Cluster %s: leader %s, members %s\n", s.scope, orNone(c.LeaderName()), orNone(strings.Join(c.MemberNames(), ", ")))
			if !force {
				if err := confirmRemove(cmd.InOrStdin(), out, s.scope, c.LeaderName()); err != nil {
					return err
				}
			}
			n, err := s.wipe(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Removed %d keys of cluster %s\n", n, s.scope)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask: the cluster name given as the argument is the confirmation")
	return cmd
}

// confirmRemove asks patronictl's three questions; any wrong or missing
// answer is a refusal.
func confirmRemove(in io.Reader, out io.Writer, cluster, leader string) error {
	r := bufio.NewReader(in)
	ask := func(prompt, want, refusal string) error {
		fmt.Fprintf(out, "%s: ", prompt)
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the answer: %w", err)
		}
		if strings.TrimSpace(line) != want {
			fmt.Fprintln(out)
			return fmt.Errorf("aborted, nothing removed: %s", refusal)
		}
		return nil
	}
	if err := ask("Please confirm the cluster name to remove", cluster, "the cluster names do not match"); err != nil {
		return err
	}
	if err := ask(fmt.Sprintf("You are about to remove all information in etcd for %s, please type: %q", cluster, awareText),
		awareText, fmt.Sprintf("you did not exactly type %q", awareText)); err != nil {
		return err
	}
	if leader != "" {
		return ask("This cluster currently is healthy. Please specify the leader name to continue", leader,
			"you did not specify the current leader of the cluster")
	}
	return nil
}

// wipe deletes the cluster's keys, bounded by --timeout.
func (s *settings) wipe(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.wiper != nil {
		return s.wiper(ctx)
	}
	client, err := dcs.Connect(ctx, s.etcd, dcs.NewKeys(s.namespace, s.scope), slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, fmt.Errorf("connect to etcd %s: %w", strings.Join(s.etcd.Endpoints, ","), err)
	}
	defer func() { _ = client.Close() }()
	n, err := client.DeleteCluster(ctx)
	if err != nil {
		return 0, fmt.Errorf("remove cluster %s: %w", s.scope, err)
	}
	return n, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
