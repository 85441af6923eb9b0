package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

func newShowConfigCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "show-config",
		Short: "Print the cluster's dynamic configuration (the config key) as YAML",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := clusterConfig(s, c)
			if err != nil {
				return err
			}
			text, err := configYAML(cfg)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
}

// clusterConfig decodes the config key, which must exist.
func clusterConfig(s *settings, c *dcs.Cluster) (map[string]any, error) {
	if c.Config == nil {
		return nil, fmt.Errorf("cluster %s has no config key (not bootstrapped yet?)", s.scope)
	}
	return decodeConfig(c.Config.Data)
}

// editConfig holds edit-config's flags.
type editConfig struct {
	s        *settings
	sets     []string
	pgParams []string
	force    bool
}

func newEditConfigCmd(s *settings) *cobra.Command {
	e := &editConfig{s: s}
	cmd := &cobra.Command{
		Use:   "edit-config",
		Short: "Change the dynamic configuration in $EDITOR, or with -s/-p, after showing the diff",
		Long: `Change the cluster's dynamic configuration. Without -s or -p, the config
opens as YAML in $EDITOR (else $VISUAL, else vi). The change is shown as a
unified diff and applied after confirmation (--force skips it) through the
leader's PATCH /config, so the agent validates it: a refusal prints the
agent's reason and exits non-zero. Only the keys that changed are sent,
with the revision that was read (If-Match): if someone else changed the
config meanwhile, nothing is written and edit-config exits non-zero; run
it again to see their change.

  -s ttl=30 -s maximum_lag_on_failover=1048576  values are YAML scalars
  -s synchronous_mode=null                      null (or nothing) deletes
  -p max_connections=200                        = -s postgresql.parameters.max_connections=200`,
		Args: noArgs,
		RunE: e.run,
	}
	f := cmd.Flags()
	f.StringArrayVarP(&e.sets, "set", "s", nil, "set key=value (dotted keys; repeatable)")
	f.StringArrayVarP(&e.pgParams, "pg", "p", nil, "set a PostgreSQL parameter: guc=value (repeatable)")
	f.BoolVar(&e.force, "force", false, "apply without asking")
	return cmd
}

func (e *editConfig) run(cmd *cobra.Command, _ []string) error {
	var settings []setting
	for _, p := range e.sets {
		st, err := parseSetting(p)
		if err != nil {
			return err
		}
		settings = append(settings, st)
	}
	for _, p := range e.pgParams {
		st, err := parseSetting("postgresql.parameters." + p)
		if err != nil {
			return err
		}
		settings = append(settings, st)
	}
	c, err := e.s.cluster(cmd.Context())
	if err != nil {
		return err
	}
	before, err := clusterConfig(e.s, c)
	if err != nil {
		return err
	}
	after, err := e.edited(cmd, before, settings)
	if err != nil {
		return err
	}
	return e.apply(cmd, c, before, after)
}

// edited returns the new document: the settings applied, or the editor's
// result.
func (e *editConfig) edited(cmd *cobra.Command, before map[string]any, settings []setting) (map[string]any, error) {
	if len(settings) == 0 {
		text, err := configYAML(before)
		if err != nil {
			return nil, err
		}
		out, err := runEditor(cmd, text)
		if err != nil {
			return nil, err
		}
		return parseConfigYAML(out)
	}
	after := before
	for _, st := range settings {
		after = st.apply(after)
	}
	// Round-trip so YAML's int and JSON's int64 compare equal.
	text, err := configYAML(after)
	if err != nil {
		return nil, err
	}
	return parseConfigYAML(text)
}

// apply shows the diff, confirms and sends the merge patch.
func (e *editConfig) apply(cmd *cobra.Command, c *dcs.Cluster, before, after map[string]any) error {
	out := cmd.OutOrStdout()
	beforeText, err := configYAML(before)
	if err != nil {
		return err
	}
	afterText, err := configYAML(after)
	if err != nil {
		return err
	}
	diff := unifiedDiff("config (etcd)", "config (edited)", beforeText, afterText)
	patch := mergePatch(before, after)
	if diff == "" || len(patch) == 0 {
		fmt.Fprintln(out, "Not changed")
		return nil
	}
	fmt.Fprint(out, diff)
	if err := confirm(cmd, e.s, e.force, "Apply these changes?"); err != nil {
		return err
	}
	if err := e.send(cmd, c, patch); err != nil {
		return err
	}
	fmt.Fprintln(out, "Configuration changed")
	return nil
}

// errConfigChanged: the config key changed between the read and the write.
var errConfigChanged = errors.New("configuration not changed: it was changed by someone else since it was read")

// send PATCHes /config on the leader with If-Match: the revision that was
// read and shown, so a change made meanwhile by someone else is refused
// (412) instead of overwritten.
func (e *editConfig) send(cmd *cobra.Command, c *dcs.Cluster, patch map[string]any) error {
	api, err := e.s.leaderFirst(c, e.s.timeout)
	if err != nil {
		return err
	}
	read := c.Config.ModRevision
	var header http.Header
	if read > 0 { // 0: a view without revisions; nothing to guard with
		header = http.Header{"If-Match": {`"` + strconv.FormatInt(read, 10) + `"`}}
	}
	resp, err := api.callWithHeader(cmd.Context(), http.MethodPatch, "/config", patch, header)
	switch {
	case err != nil:
		return err
	case resp.status == http.StatusPreconditionFailed && read > 0:
		now := "unknown"
		if rev, ok := etagRevision(resp.header.Get("ETag")); ok {
			now = strconv.FormatInt(rev, 10)
		}
		return fmt.Errorf("%w (revision %d, now %s); run edit-config again", errConfigChanged, read, now)
	case resp.status != http.StatusOK:
		return fmt.Errorf("configuration not changed: %s refused it: %w", resp.base, decodeError(resp.status, resp.body))
	}
	return nil
}

// etagRevision reads a config revision from an ETag ("123").
func etagRevision(etag string) (int64, bool) {
	rev, err := strconv.ParseInt(strings.Trim(etag, `"`), 10, 64)
	return rev, err == nil && rev > 0
}

// runEditor opens text in $EDITOR (else $VISUAL, else vi) and returns the
// saved result. It waits for the operator: only the command's context
// (Ctrl-C) bounds it.
func runEditor(cmd *cobra.Command, text string) (string, error) {
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = os.Getenv("VISUAL")
	}
	if editor == "" {
		editor = "vi"
	}
	f, err := os.CreateTemp("", "regent-config-*.yaml")
	if err != nil {
		return "", fmt.Errorf("temporary file for the editor: %w", err)
	}
	path := f.Name()
	defer func() {
		// A copy of the cluster's config left in the temporary directory
		// is worth a line on stderr.
		if err := os.Remove(path); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%swarning: %v\n", errorPrefix, err)
		}
	}()
	if _, err := f.WriteString(text); err != nil {
		return "", fmt.Errorf("temporary file for the editor: %w", errors.Join(err, f.Close()))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("temporary file for the editor: %w", err)
	}
	if err := editFile(cmd.Context(), cmd, editor, path); err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the edited config: %w", err)
	}
	return string(data), nil
}

// editFile runs the editor command line (it may carry arguments, as in
// EDITOR="code --wait") on path, attached to the command's terminal.
func editFile(ctx context.Context, cmd *cobra.Command, editor, path string) error {
	ed := exec.CommandContext(ctx, "/bin/sh", "-c", editor+` "$1"`, "sh", path)
	ed.Stdin, ed.Stdout, ed.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := ed.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("editor %q exited with status %d; nothing applied", editor, exit.ExitCode())
		}
		return fmt.Errorf("run editor %q: %w", editor, err)
	}
	return nil
}
