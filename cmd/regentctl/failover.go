package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

// failoverCallTimeout is the default bound of POST /failover: the agent
// answers once the new leader is known, after up to 2·max(10 s,
// loop_wait) (patroni-compat.md §2.6 step 8).
const failoverCallTimeout = 60 * time.Second

// failoverBody is patronictl's POST /failover body: the current leader
// (null without one) and the candidate.
type failoverBody struct {
	Leader    *string `json:"leader"`
	Candidate string  `json:"candidate"`
	// AssumeOldPrimaryDown is Regent's extension for maintenance mode.
	AssumeOldPrimaryDown bool `json:"assume_old_primary_down,omitempty"`
}

func newFailoverCmd(s *settings) *cobra.Command {
	var candidate string
	var force, assumeDown bool
	cmd := &cobra.Command{
		Use:   "failover --candidate <member>",
		Short: "Promote a named replica now, as patronictl failover does (POST /failover)",
		Long: `Promote --candidate through Patroni's POST /failover, sent to the leader
(to the candidate when the cluster has no leader), and print the agent's
answer. Unlike "switchover", it works without a healthy leader. Each call
is bounded by --timeout (default 60s for failover).

In maintenance mode with no leader, the candidate promotes only once the
former primary is confirmed stopped (its agent reports PostgreSQL down, or
fence.command succeeded against it): an agent stopped while paused leaves
PostgreSQL writable. --assume-old-primary-down vouches that you stopped it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if candidate == "" {
				return usagef("--candidate is required: a failover goes to a named member")
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			api, body, err := failoverTarget(s, cmd, c, candidate)
			if err != nil {
				return err
			}
			body.AssumeOldPrimaryDown = assumeDown
			question := fmt.Sprintf("Fail over cluster %s to %s, demoting the current leader %s?", s.scope, candidate, orDefault(api.leader, "(none)"))
			if err := confirm(cmd, s, force, question); err != nil {
				return err
			}
			resp, err := api.call(cmd.Context(), http.MethodPost, "/failover", body)
			if err != nil {
				return fmt.Errorf("failover: %w", err)
			}
			text := answerText(resp.status, resp.body)
			if resp.status != http.StatusOK && resp.status != http.StatusAccepted {
				return fmt.Errorf("failover failed, details: %d, %s", resp.status, text)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", time.Now().Format("2006-01-02 15:04:05.000000"), text)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&candidate, "candidate", "", "the member to promote (required)")
	f.BoolVar(&force, "force", false, "do not ask for confirmation")
	f.BoolVar(&assumeDown, "assume-old-primary-down", false,
		"paused, leaderless cluster: promote although nobody confirmed the former primary stopped (you vouch that it cannot accept writes)")
	return cmd
}

// failoverTarget checks the candidate and returns the client (the
// leader's API first, or the candidate's without a leader) and the body.
func failoverTarget(s *settings, cmd *cobra.Command, c *dcs.Cluster, candidate string) (*apiClient, failoverBody, error) {
	m, ok := c.Members[candidate]
	switch {
	case !ok:
		return nil, failoverBody{}, fmt.Errorf("member %s is not in cluster %s (members: %s)", candidate, s.scope, strings.Join(c.MemberNames(), ", "))
	case candidate == c.LeaderName():
		return nil, failoverBody{}, fmt.Errorf("%s is already the leader", candidate)
	case m.NoFailover():
		return nil, failoverBody{}, fmt.Errorf("member %s is tagged nofailover", candidate)
	}
	timeout := s.callTimeout(cmd, failoverCallTimeout)
	leader, bases := memberAPIs(c)
	body := failoverBody{Candidate: candidate}
	if leader != "" {
		body.Leader = &leader
		if len(bases) == 0 || bases[0] != mustBase(c.Members[leader].APIURL) {
			return nil, body, fmt.Errorf("leader %s has no usable api_url in its member key", leader)
		}
	} else {
		base, err := apiBase(m.APIURL)
		if err != nil {
			return nil, body, fmt.Errorf("member %s: %w", candidate, err)
		}
		bases = []string{base} // no leader: only the candidate can act on it
	}
	api := s.rest.apiClient(bases, timeout)
	api.leader = leader
	return api, body, nil
}
