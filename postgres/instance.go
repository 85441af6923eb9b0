package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/progress"
)

// ErrNotRunning means PostgreSQL does not accept connections (Status), or
// has no live postmaster (PostmasterPID).
var ErrNotRunning = errors.New("postgres is not running")

// Options configure an Instance.
type Options struct {
	Config Config
	// Name is the member name: application_name, cluster_name, slot name.
	Name   string
	Logger *slog.Logger
	// SysProcAttr, when set, is applied to every PostgreSQL binary started
	// (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata). Tests
	// running as root set the postgres credentials here; files Regent writes
	// into the data directory are then owned by Credential's uid/gid.
	SysProcAttr *syscall.SysProcAttr
	// NoSync passes --no-sync to initdb, pg_basebackup and pg_rewind: much
	// faster, and unsafe if the host crashes. For tests only.
	NoSync bool
	// InitDBOptions are extra initdb options (bootstrap.initdb).
	InitDBOptions InitDBOptions
	// Scope is the cluster name, passed to replica creation methods.
	Scope string
	// NoStream (the nostream tag) makes a replica restore WAL from the
	// archive only: its recovery block has no primary_conninfo.
	NoStream bool
}

// Instance is the local PostgreSQL. It is meant for one goroutine (the HA
// loop); Status (and the read-only helpers) may be called concurrently with
// it. Every blocking method is bounded by its ctx.
type Instance struct {
	cfg     Config
	name    string
	log     *slog.Logger
	sysAttr *syscall.SysProcAttr
	scope   string
	initdb  InitDBOptions
	// noStream: see Options.NoStream.
	noStream bool
	// uid and gid own the files Regent writes; -1 keeps the process's own.
	uid, gid int
	// home is the HOME given to child processes run under another user.
	home   string
	noSync bool

	// dynamic are parameters from the cluster's dynamic configuration,
	// rendered between Regent's defaults and Config.Parameters.
	dynamic map[string]any
	// recovery is the recovery block last written; syncNames the managed
	// synchronous_standby_names (nil: not written).
	recovery      recovery
	recoveryKnown bool
	floor         map[string]int64 // see SetStandbyFloor
	syncNames     *string

	// progress of a replica being created (nil when none): written by
	// CreateReplica, read by the loop's publish concurrently.
	progress atomic.Pointer[progress.Progress]
	// progressStart is when the running method started: written by
	// CreateReplica before it starts the method, read by the method's
	// output handler (which the method's start happens before).
	progressStart time.Time

	connMu sync.Mutex // guards conn
	conn   *pgx.Conn
}

// New checks the options (the config gets its defaults and must validate)
// and returns an Instance. It starts nothing and connects to nothing.
func New(opts Options) (*Instance, error) {
	cfg := opts.Config
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.Name == "" || strings.ContainsAny(opts.Name, "\x00\r\n/") {
		return nil, fmt.Errorf("postgres: member name %q must be non-empty without '/' or line breaks", opts.Name)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	i := &Instance{cfg: cfg, name: opts.Name, log: log, sysAttr: opts.SysProcAttr, uid: -1, gid: -1, noSync: opts.NoSync,
		scope: opts.Scope, noStream: opts.NoStream, initdb: opts.InitDBOptions}
	if c := opts.SysProcAttr; c != nil && c.Credential != nil {
		i.uid, i.gid = int(c.Credential.Uid), int(c.Credential.Gid)
		if u, err := user.LookupId(strconv.Itoa(i.uid)); err == nil {
			i.home = u.HomeDir
		}
	}
	for _, w := range cfg.HBAWarnings() {
		log.Warn("pg_hba: a configured line may lock Regent out", "warning", w)
	}
	return i, nil
}

// syncArgs are the extra arguments for tools that fsync what they wrote.
func (i *Instance) syncArgs(args ...string) []string {
	if i.noSync {
		return append(args, "--no-sync")
	}
	return args
}

// Config returns the effective configuration (with defaults).
func (i *Instance) Config() Config { return i.cfg }

// Close closes the persistent connection, if any. Having no ctx, it closes
// the socket, which the server takes as a quiet end of session.
func (i *Instance) Close() {
	i.connMu.Lock()
	defer i.connMu.Unlock()
	if i.conn != nil {
		_ = i.conn.PgConn().Conn().Close()
		i.conn = nil
	}
}

// SetDynamicParameters sets GUCs from the cluster's dynamic configuration.
// They are rendered after Regent's defaults and before Config.Parameters
// (the local file wins) by the next InitDB, Clone, Rewind or Configure*.
// A parameter PostgreSQL or Regent would refuse does not take the others
// down with it: the valid ones apply, a refused one keeps the value it had
// (or stays unset), and the error names each refused parameter.
func (i *Instance) SetDynamicParameters(params map[string]any) error {
	var err error
	i.dynamic, err = MergeDynamicParameters(i.dynamic, params)
	return err
}

// MergeDynamicParameters is SetDynamicParameters' rule as a pure function:
// the parameters to run with when the cluster asks for params while cur
// run, and an error naming each refused one (which keeps its cur value).
func MergeDynamicParameters(cur, params map[string]any) (map[string]any, error) {
	next := make(map[string]any, len(params))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if err := CheckSetting(name, params[name]); err != nil {
			errs = append(errs, fmt.Errorf("postgresql.parameters.%s: %w", name, err))
			if old, ok := cur[name]; ok {
				next[name] = old
			}
			continue
		}
		next[name] = params[name]
	}
	return next, errors.Join(errs...)
}

// DataDirEmpty reports whether data_dir is absent or holds no cluster
// (no PG_VERSION file).
func (i *Instance) DataDirEmpty() (bool, error) {
	_, err := os.Stat(filepath.Join(i.cfg.DataDir, "PG_VERSION"))
	found, err := present(err, "check data dir")
	if err != nil {
		return false, err
	}
	return !found, nil
}

// PostmasterPID returns the PID in the first line of postmaster.pid when
// that process is alive. A missing file or a dead process is ErrNotRunning.
func (i *Instance) PostmasterPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(i.cfg.DataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no postmaster.pid: %w", ErrNotRunning)
	}
	if err != nil {
		return 0, fmt.Errorf("read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid: bad pid %q", first)
	}
	if !i.postmasterAlive(pid) {
		return 0, fmt.Errorf("stale postmaster.pid (pid %d): %w", pid, ErrNotRunning)
	}
	return pid, nil
}

// ConnString returns a superuser DSN for the local server, for tests and
// tools. It contains the superuser password: never log it.
func (i *Instance) ConnString() string {
	host, port := splitHostPort(i.cfg.Listen)
	return connString(
		"host", localDialHost(host),
		"port", strconv.Itoa(port),
		"user", i.cfg.Superuser.Username,
		"password", i.cfg.Superuser.Password.Reveal(),
		"dbname", "postgres",
		"sslmode", "disable",
		"application_name", "regent",
		"connect_timeout", "3",
	)
}

// localDialHost maps a wildcard listen host to loopback.
func localDialHost(host string) string {
	switch host {
	case "", "*", "0.0.0.0", "::":
		return "127.0.0.1"
	}
	return host
}
