package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

// restartCallTimeout is the default bound of POST /restart: the agent
// answers when PostgreSQL is back, within restapi.DefaultRestartTimeout.
const restartCallTimeout = restapi.DefaultRestartTimeout + 10*time.Second

// restartOpts are restart's flags.
type restartOpts struct {
	pending        bool
	role           string
	pgVersion      string
	scheduled      string
	restartTimeout time.Duration
	force          bool
}

func newRestartCmd(s *settings) *cobra.Command {
	o := &restartOpts{}
	cmd := &cobra.Command{
		Use:   "restart [member…]",
		Short: "Restart PostgreSQL on members (all by default), one after the other, now or at a time",
		Long: `Restart PostgreSQL on the named members (all members by default), one at a
time, through each member's POST /restart; the agent restarts it in its
current role, keeping the lease on the leader. Filters make the agent skip
a member: --pending (only with settings pending a restart), --role,
--pg-version (only if the running server is older). --scheduled runs it
later (ISO 8601; without a zone, local time); with --force an existing
scheduled restart is replaced. Each call is bounded by --timeout
(default 130s for restart).`,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, s, args) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.pending, "pending", false, "restart only members with settings pending a restart")
	f.StringVar(&o.role, "role", "any", "restart only the leader (primary/master/leader), only replicas (replica), or any")
	f.StringVar(&o.pgVersion, "pg-version", "", "restart only if the running PostgreSQL is older than this version (e.g. 15.4)")
	f.StringVar(&o.scheduled, "scheduled", "", `when to restart: an ISO 8601 time, or "now"`)
	f.DurationVar(&o.restartTimeout, "restart-timeout", 0, "ask the agent to give up on a restart that takes longer")
	f.BoolVar(&o.force, "force", false, "do not ask for confirmation; replace an existing scheduled restart")
	return cmd
}

func (o *restartOpts) run(cmd *cobra.Command, s *settings, args []string) error {
	body, role, err := o.body()
	if err != nil {
		return err
	}
	m := memberCommand{action: "restart", force: o.force, timeout: s.callTimeout(cmd, restartCallTimeout+o.restartTimeout),
		pick: func(c *dcs.Cluster, names []string) ([]string, error) {
			if names = filterRole(c, names, role); len(names) == 0 {
				return nil, fmt.Errorf("no member of cluster %s has role %s", s.scope, o.role)
			}
			return names, nil
		},
		one: func(c *dcs.Cluster, name string, api *apiClient) bool {
			return o.restartOne(cmd, api, name, c.Members[name], body)
		},
	}
	if _, ok := body["schedule"]; ok {
		m.ask = "schedule a restart of"
	}
	return m.run(cmd, s, args)
}

// body builds POST /restart's body from the flags; role is the cluster
// role to select ("" for any).
func (o *restartOpts) body() (map[string]any, string, error) {
	body := map[string]any{}
	role := ""
	switch strings.ToLower(o.role) {
	case "", "any":
	case "leader", "primary", "master":
		role, body["role"] = "leader", "primary"
	case "replica":
		role, body["role"] = "replica", "replica"
	default:
		return nil, "", usagef("--role %q: want primary, replica or any", o.role)
	}
	if o.pending {
		body["restart_pending"] = true
	}
	if o.pgVersion != "" {
		body["postgres_version"] = o.pgVersion
	}
	if o.restartTimeout < 0 {
		return nil, "", usagef("--restart-timeout %s: must be positive", o.restartTimeout)
	}
	if o.restartTimeout > 0 {
		body["timeout"] = o.restartTimeout.Seconds()
	}
	if o.scheduled != "" && !strings.EqualFold(o.scheduled, "now") {
		at, err := scheduleTime(o.scheduled)
		if err != nil {
			return nil, "", err
		}
		body["schedule"] = at.Format(time.RFC3339)
	}
	return body, role, nil
}

// scheduleTime reads --scheduled leniently; without a zone it is local
// time, as patronictl assumes.
func scheduleTime(value string) (time.Time, error) {
	at, hasZone, err := restapi.ParseTimestamp(value)
	if err != nil {
		return time.Time{}, usagef("--scheduled %q: not an ISO 8601 time (e.g. 2030-01-01T03:00 or 2030-01-01T03:00+02:00)", value)
	}
	if !hasZone {
		at = time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), at.Nanosecond(), time.Local)
	}
	return at, nil
}

// filterRole keeps the members of a cluster role ("leader", "replica" or
// "" for all), judged from the leader key.
func filterRole(c *dcs.Cluster, names []string, role string) []string {
	if role == "" {
		return names
	}
	var out []string
	for _, n := range names {
		if (n == c.LeaderName()) == (role == "leader") {
			out = append(out, n)
		}
	}
	return out
}

// restartOne restarts one member and prints the outcome as patronictl
// does; it reports success.
func (o *restartOpts) restartOne(cmd *cobra.Command, api *apiClient, name string, m dcs.Member, body map[string]any) bool {
	out := cmd.OutOrStdout()
	ctx := cmd.Context()
	if _, scheduling := body["schedule"]; scheduling && o.force && len(m.ScheduledRestart) > 0 {
		resp, err := api.call(ctx, http.MethodDelete, "/restart", nil)
		if err != nil || (resp.status != http.StatusOK && resp.status != http.StatusNotFound) {
			fmt.Fprintf(out, "Failed: could not remove the scheduled restart of member %s: %s\n", name, callFailure(resp, err))
			return false
		}
	}
	resp, err := api.call(ctx, http.MethodPost, "/restart", body)
	switch {
	case err != nil:
		fmt.Fprintf(out, "Failed: restart for member %s: %v\n", name, err)
		return false
	case resp.status == http.StatusOK:
		fmt.Fprintf(out, "Success: restart on member %s\n", name)
	case resp.status == http.StatusAccepted:
		fmt.Fprintf(out, "Success: restart scheduled on member %s\n", name)
	case resp.status == http.StatusConflict:
		fmt.Fprintf(out, "Failed: another restart is already scheduled on member %s (--force replaces it)\n", name)
		return false
	default:
		fmt.Fprintf(out, "Failed: restart for member %s, status code=%d, (%s)\n", name, resp.status, answerText(resp.status, resp.body))
		return false
	}
	return true
}

// callFailure describes a failed or refused call.
func callFailure(resp apiResponse, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("status code=%d, (%s)", resp.status, answerText(resp.status, resp.body))
}

func newReloadCmd(s *settings) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "reload [member…]",
		Short: "Make members (all by default) rewrite PostgreSQL's configuration and reload it (regent.yml is not re-read: restart the agent for that)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return memberCommand{action: "reload", force: force, timeout: s.timeout,
				one: func(_ *dcs.Cluster, name string, api *apiClient) bool { return reloadOne(cmd, api, name) },
			}.run(cmd, s, args)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

// reloadOne reloads one member and prints the outcome as patronictl does;
// it reports success.
func reloadOne(cmd *cobra.Command, api *apiClient, name string) bool {
	out := cmd.OutOrStdout()
	resp, err := api.call(cmd.Context(), http.MethodPost, "/reload", nil)
	switch {
	case err == nil && resp.status == http.StatusOK:
		fmt.Fprintf(out, "No changes to apply on member %s\n", name)
	case err == nil && resp.status == http.StatusAccepted:
		fmt.Fprintf(out, "Reload request received for member %s and will be processed within one HA cycle\n", name)
	default:
		fmt.Fprintf(out, "Failed: reload for member %s, %s\n", name, callFailure(resp, err))
		return false
	}
	return true
}

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
	return memberCommand{action: "reinitialize", force: o.force, timeout: s.timeout,
		one: func(_ *dcs.Cluster, name string, api *apiClient) bool { return o.reinitOne(cmd, s, api, name) },
	}.run(cmd, s, args)
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
