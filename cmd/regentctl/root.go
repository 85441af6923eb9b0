package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/buildinfo"
	"github.com/regent-ha/regent/restapi"
)

// settings are where regentctl finds the cluster: a regent.yml (-c), the
// REGENT_* environment, or flags, the later overriding the earlier.
type settings struct {
	configPath string
	endpoints  []string
	scope      string
	namespace  string
	timeout    time.Duration
	etcd       dcs.Config
	rest       restOptions

	// Test hooks; nil or zero means the real thing.
	loader func(ctx context.Context) (*dcs.Cluster, error) // s.load
	wiper  func(ctx context.Context) (int64, error)        // s.wipe's etcd delete
	isTTY  func(v any) bool                                // fileIsTTY
	poll   time.Duration                                   // the --wait polls' interval (1s)
}

// cluster reads the whole cluster once, bounded by --timeout.
func (s *settings) cluster(ctx context.Context) (*dcs.Cluster, error) {
	if s.loader != nil {
		return s.loader(ctx)
	}
	return s.load(ctx)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	return newRootWith(&settings{}, stdout, stderr)
}

// newRootWith builds the command tree around s (tests preset its hooks).
func newRootWith(s *settings, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "regentctl",
		Short:         "Operate Regent PostgreSQL clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return s.resolve(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.PersistentFlags()
	f.StringVarP(&s.configPath, "config", "c", os.Getenv("REGENT_CONFIG"), "regent.yml to read etcd, scope and namespace from ($REGENT_CONFIG)")
	f.StringSliceVar(&s.endpoints, "etcd", splitEnv("REGENT_ETCD"), "etcd endpoints ($REGENT_ETCD)")
	f.StringVar(&s.scope, "scope", os.Getenv("REGENT_SCOPE"), "cluster name ($REGENT_SCOPE)")
	f.StringVar(&s.namespace, "namespace", envOr("REGENT_NAMESPACE", ""), "etcd namespace, default /service/ ($REGENT_NAMESPACE)")
	f.DurationVar(&s.timeout, "timeout", 5*time.Second, "give up on etcd or an agent after this long")
	s.rest.addFlags(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newListCmd(s), newTopologyCmd(s), newHistoryCmd(s), newDecisionsCmd(s),
		newSwitchoverCmd(s), newFailoverCmd(s), newPauseCmd(s, true), newPauseCmd(s, false),
		newPromoteClusterCmd(s), newDemoteClusterCmd(s),
		newShowConfigCmd(s), newEditConfigCmd(s), newRestartCmd(s), newReloadCmd(s), newReinitCmd(s),
		newRemoveCmd(s), newFlushCmd(s), newQueryCmd(s), newDSNCmd(s), newVersionCmd())
	return root
}

func (s *settings) resolve(cmd *cobra.Command) error {
	if cmd.Name() == "version" || cmd.Name() == "completion" || (cmd.HasParent() && cmd.Parent().Name() == "completion") {
		return nil // nothing to connect to
	}
	var fileREST *restapi.Config
	if s.configPath != "" {
		cfg, err := config.Load(s.configPath)
		if err != nil {
			return fmt.Errorf("%s: %w", s.configPath, err)
		}
		s.etcd = cfg.Etcd
		fileREST = &cfg.RestAPI
		if !cmd.Flags().Changed("scope") && s.scope == "" {
			s.scope = cfg.Scope
		}
		if s.namespace == "" {
			s.namespace = cfg.Namespace
		}
	}
	if len(s.endpoints) > 0 {
		s.etcd.Endpoints = s.endpoints
	}
	if s.namespace == "" {
		s.namespace = "/service/"
	}
	s.etcd.SetDefaults()
	switch {
	case len(s.etcd.Endpoints) == 0:
		return errors.New("no etcd endpoints: use --etcd, $REGENT_ETCD or -c regent.yml")
	case s.scope == "":
		return errors.New("no cluster: use --scope, $REGENT_SCOPE or -c regent.yml")
	}
	if s.timeout <= 0 {
		return usageError{fmt.Errorf("--timeout %s: must be positive", s.timeout)}
	}
	s.etcd.DialTimeout = min(s.etcd.DialTimeout, s.timeout)
	if err := s.etcd.Validate(); err != nil {
		return err
	}
	return s.rest.resolve(cmd, fileREST)
}

// callTimeout bounds one REST call of a command whose agent side may take
// up to long (a restart, a failover): --timeout when given, else the
// larger of the two.
func (s *settings) callTimeout(cmd *cobra.Command, long time.Duration) time.Duration {
	if f := cmd.Flags().Lookup("timeout"); f != nil && f.Changed {
		return s.timeout
	}
	return max(s.timeout, long)
}

// pollEvery is the interval of the --wait polls.
func (s *settings) pollEvery() time.Duration {
	if s.poll > 0 {
		return s.poll
	}
	return time.Second
}

// tty reports whether v (the command's stdin or stdout) is a terminal.
func (s *settings) tty(v any) bool {
	if s.isTTY != nil {
		return s.isTTY(v)
	}
	return fileIsTTY(v)
}

// load reads the whole cluster once, bounded by --timeout.
func (s *settings) load(ctx context.Context) (*dcs.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	client, err := dcs.Connect(ctx, s.etcd, dcs.NewKeys(s.namespace, s.scope), slog.New(slog.DiscardHandler))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("connect to etcd %s: no answer within %s: %w", strings.Join(s.etcd.Endpoints, ","), s.timeout, err)
		}
		return nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(s.etcd.Endpoints, ","), err)
	}
	// A read-only client: once the cluster is read, a failed close loses
	// nothing.
	defer func() { _ = client.Close() }()
	c, err := client.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("read cluster %s from etcd %s within %s: %w", s.scope, strings.Join(s.etcd.Endpoints, ","), s.timeout, err)
	}
	return c, nil
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print regentctl's version, commit, build date and Go release",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), "regentctl ", buildinfo.Get())
			return nil
		},
	}
}

func splitEnv(name string) []string {
	v := os.Getenv(name)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
