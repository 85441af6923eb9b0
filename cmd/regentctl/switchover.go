package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
	"github.com/regent-ha/regent/switchover"
)

// switchoverCallTimeout is the default bound of each REST call of the
// switchover commands (unless --timeout is given): PATCH /switchover runs
// the pre-flight checks, which the agent bounds at 10 s; a shorter client
// bound could give up on a switchover that then starts anyway.
const switchoverCallTimeout = 30 * time.Second

// spinEvery is the redraw interval of a running stage on a terminal.
const spinEvery = 100 * time.Millisecond

// switchoverCmd holds the switchover commands' flags and surroundings;
// tests replace load, the terminal checks and the timings.
type switchoverCmd struct {
	s      *settings
	load   func(ctx context.Context) (*dcs.Cluster, error)
	isTTY  func(v any) bool // for the command's stdin or stdout
	width  func(v any) int
	stages []string
	now    func() time.Time
	// callTimeout bounds each call unless --timeout is set; idle and
	// budget are the stream's dead-connection and reconnect bounds.
	callTimeout, idle, budget, spin time.Duration

	to, reason  string
	dryRun, yes bool
	swTimeout   time.Duration
}

func newSwitchoverCmd(s *settings) *cobra.Command {
	o := &switchoverCmd{
		s: s, load: s.cluster, isTTY: fileIsTTY, width: fileWidth, stages: switchover.StageNames(), now: time.Now,
		callTimeout: switchoverCallTimeout, idle: streamIdle, budget: reconnectBudget, spin: spinEvery,
	}
	return o.command()
}

func (o *switchoverCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "switchover",
		Short: "Switch the primary over to a replica and follow its stages live",
		Long: `Switch the primary over to another member (--to, or the best candidate)
through Regent's staged switchover, and render its stages as they run.
In a standby cluster it moves the standby leader's role instead: the
candidate takes the leader key and stays in recovery, following the
remote cluster; nothing is promoted.
Each REST call is bounded by --timeout (default 30s for switchover commands).
Exits 0 when the switchover completed, non-zero when it was refused,
failed or aborted.`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "member to promote (default: the best candidate)")
	f.StringVar(&o.reason, "reason", "", "why, kept in the switchover record")
	f.BoolVar(&o.dryRun, "dry-run", false, "only run the pre-flight checks and print each candidate's verdict")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.DurationVar(&o.swTimeout, "switchover-timeout", 0, "bound of QUIESCE_WRITES and WAIT_FOR_REPLICATION_CATCHUP (default: the cluster's switchover_timeout)")
	cmd.AddCommand(o.watchCommand(), o.abortCommand())
	return cmd
}

func (o *switchoverCmd) watchCommand() *cobra.Command {
	return o.idCommand("watch <id>", "Re-attach to a switchover and follow its stages to the end", o.follow)
}

func (o *switchoverCmd) abortCommand() *cobra.Command {
	return o.idCommand("abort <id>", "Ask a running switchover to stop (possible before PROMOTE_STANDBY only)", o.abort)
}

// idCommand is a subcommand on one running switchover, named by its id,
// that talks to any member's API.
func (o *switchoverCmd) idCommand(use, short string, run func(*cobra.Command, *apiClient, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := o.client(cmd, false)
			if err != nil {
				return err
			}
			return run(cmd, api, args[0])
		},
	}
}

// abort asks the members to stop switchover id.
func (o *switchoverCmd) abort(cmd *cobra.Command, api *apiClient, id string) error {
	resp, err := api.call(cmd.Context(), http.MethodDelete, "/switchover/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	if resp.status != http.StatusAccepted {
		return fmt.Errorf("abort switchover %s: %w", id, decodeError(resp.status, resp.body))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Abort requested for switchover %s; follow it with: regentctl switchover watch %s\n", id, id)
	return nil
}

// client reads the cluster and returns a client for its members' APIs,
// the leader first; needLeader refuses a cluster without one.
func (o *switchoverCmd) client(cmd *cobra.Command, needLeader bool) (*apiClient, error) {
	c, err := o.load(cmd.Context())
	if err != nil {
		return nil, err
	}
	leader, bases := memberAPIs(c)
	switch {
	case needLeader && leader == "":
		return nil, fmt.Errorf("cluster %s has no leader", o.s.scope)
	case needLeader && (len(bases) == 0 || bases[0] != mustBase(c.Members[leader].APIURL)):
		return nil, fmt.Errorf("leader %s has no usable api_url in its member key", leader)
	case len(bases) == 0:
		return nil, fmt.Errorf("no member of cluster %s has a usable api_url", o.s.scope)
	}
	if needLeader && o.to != "" {
		if _, ok := c.Members[o.to]; !ok {
			return nil, fmt.Errorf("member %s is not in cluster %s (members: %s)", o.to, o.s.scope, strings.Join(c.MemberNames(), ", "))
		}
		if o.to == leader {
			return nil, fmt.Errorf("%s is already the leader", o.to)
		}
	}
	timeout := o.callTimeout
	if f := cmd.Flags().Lookup("timeout"); f != nil && f.Changed {
		timeout = o.s.timeout
	}
	api := o.s.rest.apiClient(bases, timeout)
	api.leader = leader
	return api, nil
}

func mustBase(apiURL string) string {
	b, _ := apiBase(apiURL) // "" when unusable
	return b
}

// run starts a switchover (or a dry run) and follows it.
func (o *switchoverCmd) run(cmd *cobra.Command, _ []string) error {
	api, err := o.client(cmd, true)
	if err != nil {
		return err
	}
	if !o.dryRun && !o.yes {
		if err := o.confirm(cmd, api.leader); err != nil {
			return err
		}
	}
	req := restapi.SwitchoverRequest{To: o.to, Reason: o.reason, DryRun: o.dryRun, Timeout: restapi.Duration(o.swTimeout)}
	resp, err := api.call(cmd.Context(), http.MethodPatch, "/switchover", req)
	if err != nil {
		return err
	}
	var started restapi.SwitchoverStarted
	ok := resp.status == http.StatusAccepted || (o.dryRun && resp.status == http.StatusOK)
	if !ok {
		return o.refused(cmd, decodeError(resp.status, resp.body))
	}
	if err := json.Unmarshal(resp.body, &started); err != nil {
		return fmt.Errorf("unreadable answer from %s: %w", resp.base, err)
	}
	if o.dryRun {
		return printVerdicts(cmd.OutOrStdout(), api.leader, started)
	}
	if started.ID == "" {
		return fmt.Errorf("%s accepted the switchover without naming it", resp.base)
	}
	to := started.To
	if to == "" {
		to = orDefault(o.to, "the best candidate")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Switchover %s started: %s → %s\n", started.ID, api.leader, to)
	return o.follow(cmd, api, started.ID)
}

// confirm asks on a terminal; without one, --yes is required.
func (o *switchoverCmd) confirm(cmd *cobra.Command, leader string) error {
	in := cmd.InOrStdin()
	if !o.isTTY(in) {
		return errors.New("refusing to switch over without confirmation: stdin is not a terminal; pass --yes")
	}
	yes, err := askYes(in, cmd.OutOrStdout(), fmt.Sprintf("Switch over from %s to %s?", leader, orDefault(o.to, "the best candidate")))
	if err == nil && !yes {
		err = errors.New("switchover not confirmed")
	}
	return err
}

// refused explains a 4xx/5xx answer to PATCH /switchover.
func (o *switchoverCmd) refused(cmd *cobra.Command, e *apiError) error {
	switch e.status {
	case http.StatusConflict:
		if e.body.ID != "" {
			return fmt.Errorf("switchover %s is already running: %w; follow it with: regentctl switchover watch %s", e.body.ID, e, e.body.ID)
		}
	case http.StatusPreconditionFailed:
		w := cmd.ErrOrStderr()
		for _, v := range e.body.Rejected {
			fmt.Fprintf(w, "  %s: %s\n", v.Member, strings.Join(v.Reasons, "; "))
		}
		if len(e.body.Rejected) == 0 {
			for _, r := range e.body.Reasons {
				fmt.Fprintf(w, "  %s\n", r)
			}
		}
		return fmt.Errorf("no candidate qualifies: %w", e)
	}
	return fmt.Errorf("switchover refused: %w", e)
}

// printVerdicts renders a dry run.
func printVerdicts(w io.Writer, leader string, st restapi.SwitchoverStarted) error {
	from := orDefault(st.From, leader)
	if st.To != "" {
		fmt.Fprintf(w, "Dry run: a switchover from %s to %s is possible.\n", from, st.To)
	} else {
		fmt.Fprintf(w, "Dry run: no candidate qualifies for a switchover from %s.\n", from)
	}
	for _, v := range st.Candidates {
		verdict := "ok"
		if !v.OK {
			verdict = "rejected"
		}
		if len(v.Reasons) > 0 {
			verdict += ": " + strings.Join(v.Reasons, "; ")
		}
		fmt.Fprintf(w, "  %-16s %s\n", v.Member, verdict)
	}
	if st.To == "" {
		return errors.New("dry run: no candidate qualifies")
	}
	return nil
}

// follow renders the switchover's stages until it ends; the error is nil
// only when it completed.
func (o *switchoverCmd) follow(cmd *cobra.Command, api *apiClient, id string) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	out := cmd.OutOrStdout()
	tty := o.isTTY(out)
	tl := newTimeline(out, tty, o.width(out), o.now, o.stages)
	events, notes := make(chan stageEvent), make(chan string)
	w := &watcher{api: api, id: id, idle: o.idle, budget: o.budget, now: o.now,
		onEvent: func(e stageEvent) { sendCtx(ctx, events, e) },
		onNote:  func(n string) { sendCtx(ctx, notes, n) },
	}
	type result struct {
		end endEvent
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := w.run(ctx)
		done <- result{end, err}
	}()
	var tick <-chan time.Time
	if tty {
		t := time.NewTicker(o.spin)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case e := <-events:
			tl.event(e)
		case n := <-notes:
			tl.note(n)
		case <-tick:
			tl.tick()
		case r := <-done:
			if r.err != nil {
				return fmt.Errorf("%w; the switchover goes on without us: re-attach with: regentctl switchover watch %s", r.err, id)
			}
			tl.end(r.end)
			return outcome(out, id, r.end)
		}
	}
}

// outcome is the exit status of a finished switchover.
func outcome(w io.Writer, id string, end endEvent) error {
	switch end.State {
	case "completed":
		fmt.Fprintf(w, "Switchover %s completed.\n", id)
		return nil
	case "failed":
		if end.Failure != nil && end.Failure.Reason != "" {
			return fmt.Errorf("switchover %s failed: %s", id, end.Failure.Reason)
		}
		return fmt.Errorf("switchover %s failed", id)
	case "aborted":
		return fmt.Errorf("switchover %s was aborted", id)
	}
	return fmt.Errorf("switchover %s ended in state %q", id, end.State)
}

// sendCtx sends v unless ctx ends first.
func sendCtx[T any](ctx context.Context, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-ctx.Done():
	}
}

// orDefault returns a, or b when a is empty.
func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fileIsTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && isTerminal(f)
}

func fileWidth(v any) int {
	if f, ok := v.(*os.File); ok {
		return termWidth(f)
	}
	return 80
}
