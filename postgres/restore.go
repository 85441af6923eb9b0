package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// BootstrapMethod is a custom bootstrap method, Patroni's bootstrap.<name>
// section (bootstrap.method names it): a command that puts a data
// directory in place — typically a restore from a backup — and the
// recovery settings it is started with.
//
//	pitr:
//	  command: pgbackrest --stanza=main --delta restore
//	  no_params: true
//	  recovery_conf:
//	    restore_command: pgbackrest --stanza=main archive-get %f "%p"
//	    recovery_target_time: "2026-12-06 04:00:00+00"
//	    recovery_target_action: promote
type BootstrapMethod struct {
	Command string `yaml:"command"`
	// KeepExistingRecoveryConf keeps the recovery signal files the command
	// left when RecoveryConf is empty; otherwise they are removed and the
	// copy starts as a primary.
	KeepExistingRecoveryConf bool `yaml:"keep_existing_recovery_conf"`
	// NoParams passes neither --scope and --datadir nor Options.
	NoParams bool `yaml:"no_params"`
	// RecoveryConf holds the settings of the archive recovery (recovery.signal).
	RecoveryConf map[string]string `yaml:"recovery_conf"`
	// Options are the section's other keys, passed as --key=value.
	Options map[string]string `yaml:",inline"`
}

// bootstrapRecoveryKeys are the settings recovery_conf may hold.
var bootstrapRecoveryKeys = []string{
	"restore_command", "recovery_end_command", "archive_cleanup_command",
	"recovery_target", "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
	"recovery_target_xid", "recovery_target_inclusive", "recovery_target_timeline", "recovery_target_action",
}

// Validate checks the section; key is its dotted name ("bootstrap.pitr").
func (m BootstrapMethod) Validate(key string) []error {
	var errs []error
	if m.Command == "" {
		errs = append(errs, fmt.Errorf("%s.command: required", key))
	}
	for _, k := range slices.Sorted(maps.Keys(m.RecoveryConf)) {
		v := m.RecoveryConf[k]
		switch {
		case !slices.Contains(bootstrapRecoveryKeys, k):
			errs = append(errs, fmt.Errorf("%s.recovery_conf.%s: unknown key (one of %v)", key, k, bootstrapRecoveryKeys))
		case k == "recovery_target_action" && v != "promote" && v != "pause":
			// shutdown would stop PostgreSQL at the target with nobody to
			// start it: the bootstrap would wait in vain.
			errs = append(errs, fmt.Errorf("%s.recovery_conf.recovery_target_action: %q must be promote or pause", key, v))
		default:
			if _, err := quoteGUCString(v); err != nil {
				errs = append(errs, fmt.Errorf("%s.recovery_conf.%s: %w", key, k, err))
			}
		}
	}
	return errs
}

// invocation is the command line as Patroni's _custom_bootstrap builds
// it: the command, then unless no_params --scope, --datadir and the
// section's other keys.
func (m BootstrapMethod) invocation(scope, dataDir string) MethodInvocation {
	inv := MethodInvocation{Command: m.Command}
	if m.NoParams {
		return inv
	}
	inv.Args = []string{"--scope=" + scope, "--datadir=" + dataDir}
	for _, k := range slices.Sorted(maps.Keys(m.Options)) {
		inv.Args = append(inv.Args, "--"+k+"="+m.Options[k])
	}
	return inv
}

// restorePoll is how often BootstrapFromBackup checks the recovery.
const restorePoll = 500 * time.Millisecond

// BootstrapFromBackup creates the cluster's first primary from a backup
// with a custom bootstrap method: the command fills the empty data
// directory, Regent's configuration is written with m's recovery
// settings (recovery.signal), PostgreSQL starts and recovers — to the
// recovery target, if one is set — and is promoted when it pauses there
// (recovery_target_action: pause, PostgreSQL's default) or promotes
// itself. It then restarts once with Regent's primary configuration, so
// no recovery setting is left pending. It returns with PostgreSQL running
// as a primary; on failure PostgreSQL may still run (the caller stops it
// and wipes the data directory).
//
// It blocks for the whole restore and recovery (bounded by ctx): callers
// run it beside the HA loop.
func (i *Instance) BootstrapFromBackup(ctx context.Context, name string, m BootstrapMethod) error {
	if empty, err := i.dirEmpty(); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	} else if !empty {
		return fmt.Errorf("bootstrap %s: data dir %s is not empty", name, i.cfg.DataDir)
	}
	if err := i.ensureDataDir(); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	inv := m.invocation(i.scope, i.cfg.DataDir)
	i.log.Info("running the custom bootstrap method", "method", name, "command", inv.Command)
	cmd := i.commandPath(ctx, nil, "/bin/sh", append([]string{"-c", inv.Command + ` "$@"`, "sh"}, inv.Args...)...)
	if _, err := i.runCmd(ctx, cmd, name, nil); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	if empty, err := i.DataDirEmpty(); err != nil || empty {
		return fmt.Errorf("bootstrap %s: the command left no PostgreSQL data directory (no PG_VERSION)", name)
	}
	if err := i.prepareRestored(m); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	if err := i.Start(ctx); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	if err := i.awaitRecoveryEnd(ctx); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	// The recovery settings leave the file: restart so none is pending.
	if _, err := i.ConfigurePrimary(); err != nil {
		return fmt.Errorf("bootstrap %s: %w", name, err)
	}
	if _, err := i.Stop(ctx, StopFast, i.cfg.StopTimeout); err != nil {
		return fmt.Errorf("bootstrap %s: restart: %w", name, err)
	}
	if err := i.Start(ctx); err != nil {
		return fmt.Errorf("bootstrap %s: restart: %w", name, err)
	}
	i.log.Info("cluster restored from the custom bootstrap method", "method", name)
	return nil
}

// prepareRestored fixes up the restored data directory: owner and mode,
// the source's log file, Regent's postgresql.conf with m's recovery
// settings, pg_hba.conf (loopback until the agent writes the members),
// and the signal files.
func (i *Instance) prepareRestored(m BootstrapMethod) error {
	if err := i.ensureDataDir(); err != nil {
		return err
	}
	if _, err := removeFile(i.logFile()); err != nil {
		return err
	}
	if _, err := removeFile(filepath.Join(i.cfg.DataDir, standbyFile)); err != nil {
		return err
	}
	recoverySignal := filepath.Join(i.cfg.DataDir, "recovery.signal")
	switch {
	case len(m.RecoveryConf) > 0:
		if _, err := i.writeFileAtomic(recoverySignal, nil, 0o600); err != nil {
			return err
		}
	case !m.KeepExistingRecoveryConf:
		if _, err := removeFile(recoverySignal); err != nil {
			return err
		}
	}
	if _, err := i.writeConfigFiles(recovery{restore: m.RecoveryConf}); err != nil {
		return err
	}
	_, err := i.WriteHBA(nil)
	return err
}

// awaitRecoveryEnd waits until PostgreSQL is out of recovery, promoting
// it when it paused at its recovery target.
func (i *Instance) awaitRecoveryEnd(ctx context.Context) error {
	promoted := false
	for {
		st, err := i.Status(ctx)
		switch {
		case err == nil && !st.InRecovery:
			return nil
		case err == nil && st.ReplayPaused && !promoted:
			i.log.Info("recovery paused at its target; promoting", "lsn", st.ReplayLSN)
			if err := i.Promote(ctx); err != nil {
				return err
			}
			promoted = true
			continue
		}
		if _, perr := os.Stat(filepath.Join(i.cfg.DataDir, "postmaster.pid")); errors.Is(perr, os.ErrNotExist) {
			if err != nil {
				return fmt.Errorf("PostgreSQL stopped during recovery (see its log): %w", err)
			}
			return errors.New("PostgreSQL stopped during recovery (see its log)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recovery did not end: %w", ctx.Err())
		case <-time.After(restorePoll):
		}
	}
}
