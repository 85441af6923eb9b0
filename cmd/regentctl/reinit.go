package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const (
	// defaultReinitWait bounds --wait: a re-clone copies the whole data
	// directory, which takes as long as the database is large.
	defaultReinitWait = 30 * time.Minute
	// reinitGrace is how long --wait waits to see the member leave
	// "running" (the agent publishes "creating replica" right after
	// answering); a member still running after it never started over.
	reinitGrace = 10 * time.Second
)

// reinitBody is POST /reinitialize's body.
type reinitBody struct {
	Force bool `json:"force"`
}

// reinitOpts are reinit's flags.
type reinitOpts struct {
	force, wait bool
	waitFor     time.Duration
}

func newReinitCmd(s *settings) *cobra.Command {
	o := &reinitOpts{}
	cmd := &cobra.Command{
		Use:   "reinit <member>…",
		Short: "Wipe replicas' data directories and clone them again from the leader",
		Long: `Wipe the named replicas' data directories and clone them again from the
leader (POST /reinitialize; the agent refuses on the leader). --force skips
the confirmation and asks the agent to go on even if another action is in
progress. --wait polls each member's GET /patroni until it runs again.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s needs at least one member", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, s, args) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.force, "force", false, "do not ask for confirmation; go on even if another action is in progress")
	f.BoolVar(&o.wait, "wait", false, "wait until each member runs again")
	f.DurationVar(&o.waitFor, "wait-timeout", defaultReinitWait, "give up waiting after this long")
	return cmd
}

func (o *reinitOpts) run(cmd *cobra.Command, s *settings, args []string) error {
	c, err := s.cluster(cmd.Context())
	if err != nil {
		return err
	}
	names, bases, err := selectMembers(c, s.scope, args)
	if err != nil {
		return err
	}
	if err := confirm(cmd, s, o.force, "Are you sure you want to reinitialize members "+strings.Join(names, ", ")+"?"); err != nil {
		return err
	}
	failed := 0
	for _, name := range names {
		if !o.reinitOne(cmd, s, s.rest.apiClient([]string{bases[name]}, s.timeout), name) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("reinitialize failed on %d of %d members", failed, len(names))
	}
	return nil
}

// reinitOne reinitializes one member (and waits for it with --wait); it
// reports success.
func (o *reinitOpts) reinitOne(cmd *cobra.Command, s *settings, api *apiClient, name string) bool {
	out := cmd.OutOrStdout()
	resp, err := api.call(cmd.Context(), http.MethodPost, "/reinitialize", reinitBody{Force: o.force})
	if err != nil || resp.status != http.StatusOK {
		fmt.Fprintf(out, "Failed: reinitialize for member %s, %s\n", name, callFailure(resp, err))
		return false
	}
	fmt.Fprintf(out, "Success: reinitialize for member %s\n", name)
	if !o.wait {
		return true
	}
	fmt.Fprintf(out, "Waiting for reinitialize to complete on: %s\n", name)
	if err := waitRunning(cmd.Context(), s, api, o.waitFor); err != nil {
		fmt.Fprintf(out, "Failed: reinitialize of member %s: %v\n", name, err)
		return false
	}
	fmt.Fprintf(out, "Reinitialize is completed on: %s\n", name)
	return true
}

// waitRunning polls the member's state until it runs again after having
// left "running" (or stays running through reinitGrace), for at most
// bound. A state ending in "failed" ends the wait with an error.
func waitRunning(parent context.Context, s *settings, api *apiClient, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, bound)
	defer cancel()
	start, left, state := time.Now(), false, ""
	var lastErr error
	for {
		resp, err := api.call(ctx, http.MethodGet, "/patroni", nil)
		lastErr = err
		if err == nil {
			var st struct {
				State string `json:"state"`
			}
			if json.Unmarshal(resp.body, &st) == nil && st.State != "" {
				state = st.State
				switch {
				case strings.HasSuffix(state, "failed"):
					return fmt.Errorf("state %q", state)
				case state != "running":
					left = true
				case left || time.Since(start) > reinitGrace:
					return nil
				}
			}
		}
		if !sleepCtx(ctx, s.pollEvery()) {
			break
		}
	}
	if err := parent.Err(); err != nil {
		return err
	}
	if state == "" && lastErr != nil {
		return fmt.Errorf("no answer within %s: %w", bound, lastErr)
	}
	return fmt.Errorf("still %q after %s", state, bound)
}
