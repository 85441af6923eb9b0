package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/regent-ha/regent/internal/progress"
)

// CreateReplica makes the empty data directory a replica of from (nil
// when the cluster has no leader) with the configured methods in order
// (ReplicaMethods), falling back to the next when one fails, as Patroni's
// create_replica does. A user-defined method runs as the PostgreSQL user
// with the replication password in PGPASSWORD; it must leave a data
// directory (PG_VERSION) behind. The new replica gets Regent's standby
// configuration. When every method failed the data directory is emptied
// again and the error names each method's failure.
//
// It blocks for as long as the copy takes (bounded by ctx): callers run it
// beside the HA loop.
func (i *Instance) CreateReplica(ctx context.Context, from *Upstream) error {
	empty, err := i.dirEmpty()
	if err != nil {
		return fmt.Errorf("create replica: %w", err)
	}
	if !empty {
		return fmt.Errorf("create replica: data dir %s is not empty (wipe it first)", i.cfg.DataDir)
	}
	methods := i.cfg.ReplicaMethods(from != nil && from.Host != "")
	if from != nil && len(from.Methods) > 0 {
		methods = slices.DeleteFunc(slices.Clone(from.Methods), func(m string) bool { return !slices.Contains(methods, m) })
		if len(methods) == 0 {
			return fmt.Errorf("create replica: none of standby_cluster.create_replica_methods %v is usable here (postgres.create_replica_methods: %v)",
				from.Methods, i.cfg.ReplicaMethods(from.Host != ""))
		}
	}
	if len(methods) == 0 {
		return errors.New("create replica: there is no leader and no method in postgres.create_replica_methods works without one (no_leader)")
	}
	defer i.progress.Store(nil)
	var errs []error
	for _, m := range methods {
		i.progress.Store(&progress.Progress{Work: "creating replica", Method: m})
		i.progressStart = time.Now()
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		start := time.Now()
		err := i.tryMethod(ctx, m, from)
		if err == nil {
			i.log.Info("replica created", "method", m, "duration", time.Since(start).Round(time.Millisecond))
			return nil
		}
		i.log.Error("replica creation method failed", "method", m, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	if werr := i.removeContents(); werr != nil { // it was empty: all ours
		errs = append(errs, fmt.Errorf("remove the failed copy: %w", werr))
	}
	return fmt.Errorf("create replica: every method failed: %w", errors.Join(errs...))
}

// tryMethod runs one method on a data directory holding at most what an
// earlier method of this CreateReplica left behind.
func (i *Instance) tryMethod(ctx context.Context, method string, from *Upstream) error {
	if method == MethodBasebackup {
		if err := i.removeContents(); err != nil {
			return err
		}
		return i.Clone(ctx, *from)
	}
	inv := i.cfg.methodInvocation(method, i.scope, i.replicaConnString(from))
	if !inv.KeepData {
		if err := i.removeContents(); err != nil {
			return err
		}
	}
	if err := i.ensureDataDir(); err != nil {
		return err
	}
	i.log.Info("creating the replica with a method", "method", method, "command", inv.Command)
	// sh runs the command words; the arguments follow as "$@", unquoted by
	// nobody, so a value with spaces stays one argument.
	cmd := i.commandPath(ctx, []string{"PGPASSWORD=" + i.cfg.Replication.Password.Reveal()},
		"/bin/sh", append([]string{"-c", inv.Command + ` "$@"`, "sh"}, inv.Args...)...)
	if _, err := i.runCmd(ctx, cmd, method, nil); err != nil {
		return err
	}
	if empty, err := i.DataDirEmpty(); err != nil || empty {
		return fmt.Errorf("%s succeeded but left no PostgreSQL data directory (no PG_VERSION)", method)
	}
	return i.afterCopy(from)
}

// replicaConnString is Patroni's --connstring: the leader as the
// replication user, without the password (it is in PGPASSWORD).
func (i *Instance) replicaConnString(from *Upstream) string {
	if from == nil {
		return ""
	}
	return connString("dbname", "postgres", "user", i.cfg.Replication.Username,
		"host", from.Host, "port", strconv.Itoa(from.Port))
}

// Progress is the progress of the replica being created, or nil when
// none is. Safe to call concurrently with CreateReplica.
func (i *Instance) Progress() *progress.Progress {
	return i.progress.Load()
}

// basebackupProgress matches pg_basebackup --progress lines:
// "12345/67890 kB (18%), 0/1 tablespace".
var basebackupProgress = regexp.MustCompile(`^\s*(\d+)/(\d+) kB \(\d+%\)`)

// noteBasebackupProgress records a --progress line of pg_basebackup.
func (i *Instance) noteBasebackupProgress(line string) {
	m := basebackupProgress.FindStringSubmatch(line)
	if m == nil {
		return
	}
	done, _ := strconv.ParseInt(m[1], 10, 64)
	total, _ := strconv.ParseInt(m[2], 10, 64)
	p := &progress.Progress{Work: "creating replica", Method: MethodBasebackup, DoneBytes: done << 10, TotalBytes: total << 10}
	if elapsed := time.Since(i.progressStart).Seconds(); done > 0 && elapsed >= 1 {
		p.SecondsLeft = int64(float64(total-done) / (float64(done) / elapsed))
	}
	i.progress.Store(p)
}
