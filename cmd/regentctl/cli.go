package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	errorPrefix = "regentctl: "
)

// usageError marks a mistake in the command line itself (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef is a usageError from a format.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode prints err and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, errorPrefix+err.Error())
	var ue usageError
	// cobra reports unknown commands and wrong argument counts as plain errors.
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") ||
		strings.Contains(err.Error(), " arg(s), received ") || strings.HasPrefix(err.Error(), "requires at least ") {
		return exitUsage
	}
	return exitFailed
}

// confirm asks question on a terminal unless force; without a terminal on
// stdin, --force is required (a script never waits on a prompt).
func confirm(cmd *cobra.Command, s *settings, force bool, question string) error {
	if force {
		return nil
	}
	in := cmd.InOrStdin()
	if !s.tty(in) {
		return errors.New("refusing to go on without confirmation: stdin is not a terminal; pass --force")
	}
	yes, err := askYes(in, cmd.OutOrStdout(), question)
	if err == nil && !yes {
		err = errors.New("aborted: not confirmed")
	}
	return err
}

// askYes prints question with a [y/N] prompt and reads one line of
// answer: y or yes (any case) is a yes, anything else, or none, a no.
func askYes(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// selectMembers returns the named members (all of them when names is
// empty), sorted, checking that each exists and has a usable api_url.
func selectMembers(c *dcs.Cluster, scope string, names []string) ([]string, map[string]string, error) {
	if len(names) == 0 {
		names = c.MemberNames()
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	bases := make(map[string]string, len(names))
	for _, n := range names {
		m, ok := c.Members[n]
		if !ok {
			return nil, nil, fmt.Errorf("member %s is not in cluster %s (members: %s)", n, scope, strings.Join(c.MemberNames(), ", "))
		}
		b, err := apiBase(m.APIURL)
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", n, err)
		}
		bases[n] = b
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("cluster %s has no members", scope)
	}
	return names, bases, nil
}

// memberCommand is a command sent to members one after the other
// (restart, reload, reinit): the named members, all by default, after one
// confirmation. A failure on one member does not stop the others.
type memberCommand struct {
	action  string        // "reload": "Are you sure you want to reload members …?", "reload failed on …"
	ask     string        // the confirmation's verb when it differs from action
	force   bool          // no confirmation
	timeout time.Duration // bound of each member's call
	// pick narrows the selected members (nil keeps them all).
	pick func(c *dcs.Cluster, names []string) ([]string, error)
	// one runs the command on one member and reports success.
	one func(c *dcs.Cluster, name string, api *apiClient) bool
}

func (m memberCommand) run(cmd *cobra.Command, s *settings, args []string) error {
	c, err := s.cluster(cmd.Context())
	if err != nil {
		return err
	}
	names, bases, err := selectMembers(c, s.scope, args)
	if err != nil {
		return err
	}
	if m.pick != nil {
		if names, err = m.pick(c, names); err != nil {
			return err
		}
	}
	ask := cmp.Or(m.ask, m.action)
	if err := confirm(cmd, s, m.force, fmt.Sprintf("Are you sure you want to %s members %s?", ask, strings.Join(names, ", "))); err != nil {
		return err
	}
	failed := 0
	for _, name := range names {
		if !m.one(c, name, s.rest.apiClient([]string{bases[name]}, m.timeout)) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s failed on %d of %d members", m.action, failed, len(names))
	}
	return nil
}

// leaderFirst returns a client for the cluster's members' APIs, the
// leader's first, failing when no member has a usable api_url.
func (s *settings) leaderFirst(c *dcs.Cluster, timeout time.Duration) (*apiClient, error) {
	leader, bases := memberAPIs(c)
	if len(bases) == 0 {
		return nil, fmt.Errorf("no member of cluster %s has a usable api_url", s.scope)
	}
	api := s.rest.apiClient(bases, timeout)
	api.leader = leader
	return api, nil
}

// callLeader sends one request to the leader's API, or to another
// member's when the leader cannot be reached (leaderFirst).
func (s *settings) callLeader(ctx context.Context, c *dcs.Cluster, method, path string, body any) (apiResponse, error) {
	api, err := s.leaderFirst(c, s.timeout)
	if err != nil {
		return apiResponse{}, err
	}
	return api.call(ctx, method, path, body)
}

// answerText is an agent's answer for the operator: the JSON error's
// message, or the plain-text body, bounded.
func answerText(status int, body []byte) string {
	return decodeError(status, body).body.Error
}
