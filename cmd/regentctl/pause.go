package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

// defaultPauseWait bounds --wait: every member writes its key within one
// HA cycle (loop_wait) of seeing the config change.
const defaultPauseWait = 30 * time.Second

// pauseBody is PATCH /config's body: {"pause": true} or {"pause": null}
// (null deletes the key).
type pauseBody struct {
	Pause *bool `json:"pause"`
}

func newPauseCmd(s *settings, pause bool) *cobra.Command {
	var wait bool
	var waitFor time.Duration
	verb, state := "pause", "paused"
	short := "Put the cluster in maintenance mode: the agents stop acting on PostgreSQL"
	if !pause {
		verb, state = "resume", "unpaused"
		short = "Leave maintenance mode: the agents manage PostgreSQL again"
	}
	cmd := &cobra.Command{
		Use:   verb,
		Short: short,
		Long: short + `.
It sends PATCH /config to the leader (another member if the leader cannot
be reached). --wait then polls the member keys until every member reports
the new state, for at most --wait-timeout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			if c.Config == nil {
				return fmt.Errorf("cluster %s has no config key", s.scope)
			}
			if configPaused(c) == pause {
				return fmt.Errorf("cluster %s is already %s", s.scope, state)
			}
			if err := setPause(cmd, s, c, pause); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if wait {
				fmt.Fprintf(out, "Waiting for cluster %s to become %s ...\n", s.scope, state)
				if err := waitPause(cmd.Context(), s, pause, waitFor); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "Success: cluster management is %s\n", state)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait", false, "wait until every member reports the change")
	f.DurationVar(&waitFor, "wait-timeout", defaultPauseWait, "give up waiting after this long")
	return cmd
}

// setPause sends the PATCH /config.
func setPause(cmd *cobra.Command, s *settings, c *dcs.Cluster, pause bool) error {
	body := pauseBody{}
	if pause {
		body.Pause = &pause
	}
	return patchConfig(cmd, s, c, body)
}

// waitPause polls the member keys until every member's pause flag is
// want, for at most bound.
func waitPause(parent context.Context, s *settings, want bool, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, bound)
	defer cancel()
	var lagging []string
	var lastErr error
	for {
		c, err := s.cluster(ctx)
		if lastErr = err; err == nil {
			lagging = lagging[:0]
			for _, name := range c.MemberNames() {
				if c.Members[name].Pause != want {
					lagging = append(lagging, name)
				}
			}
			if len(lagging) == 0 {
				return nil
			}
		}
		if !sleepCtx(ctx, s.pollEvery()) {
			break
		}
	}
	if err := parent.Err(); err != nil {
		return err // Ctrl-C
	}
	what := "do not report pause yet"
	if !want {
		what = "still report pause"
	}
	if len(lagging) > 0 {
		return fmt.Errorf("the config changed, but after %s %s %s", bound, strings.Join(lagging, ", "), what)
	}
	return fmt.Errorf("the config changed, but the members could not be read within %s: %w", bound, lastErr)
}
