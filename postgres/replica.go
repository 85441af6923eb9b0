package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Clone (the basebackup method) makes data_dir a copy of the upstream with pg_basebackup (-X stream,
// -c fast, then postgres.basebackup's options) as the replication user, the password passed in PGPASSWORD,
// never on the command line. data_dir must be empty or absent; it ends up
// 0700 and owned by the PostgreSQL user. Then Regent's configuration is
// written as a standby of from. On failure the partial contents are
// removed.
func (i *Instance) Clone(ctx context.Context, from Upstream) (err error) {
	empty, err := i.dirEmpty()
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if !empty {
		return fmt.Errorf("clone: data dir %s is not empty (wipe it first)", i.cfg.DataDir)
	}
	if err := i.ensureDataDir(); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	defer func() {
		if err != nil {
			if werr := i.removeContents(); werr != nil { // it was empty: all ours
				i.log.Error("could not remove a partial clone", "err", werr)
			}
		}
	}()
	i.log.Info("cloning from upstream", "member", from.Member, "host", from.Host, "port", from.Port)
	args := i.syncArgs("-h", from.Host, "-p", strconv.Itoa(from.Port), "-U", i.cfg.Replication.Username,
		"-D", i.cfg.DataDir, "-X", "stream", "-c", "fast", "-w")
	// --progress: each second a line "done/total kB (n%)" (noteBasebackupProgress).
	args = append(append(args, "--progress"), i.cfg.Basebackup...)
	cmd := i.command(ctx, []string{"PGPASSWORD=" + i.cfg.Replication.Password.Reveal()}, "pg_basebackup", args...)
	_, err = i.runCmd(ctx, cmd, "pg_basebackup", i.noteBasebackupProgress)
	if err != nil {
		return fmt.Errorf("clone from %s: %w", from.Member, err)
	}
	if err := i.afterCopy(&from); err != nil {
		return fmt.Errorf("clone from %s: %w", from.Member, err)
	}
	return nil
}

// dirEmpty reports whether data_dir is absent or has no entries.
func (i *Instance) dirEmpty() (bool, error) {
	entries, err := os.ReadDir(i.cfg.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read data dir: %w", err)
	}
	return len(entries) == 0, nil
}

// afterCopy fixes up a data dir copied from another member: mode and owner,
// the source's log file (not ours) removed, Regent's postgresql.conf for this
// member as a standby of up.
func (i *Instance) afterCopy(up *Upstream) error {
	// A restore tool may leave recovery.signal (archive recovery, then
	// promotion); a replica runs in standby mode only.
	if _, err := removeFile(filepath.Join(i.cfg.DataDir, "recovery.signal")); err != nil {
		return err
	}
	if err := i.ensureDataDir(); err != nil {
		return err
	}
	if _, err := removeFile(i.logFile()); err != nil {
		return err
	}
	_, err := i.ConfigureStandby(up)
	return err
}

// preservedFiles are restored after pg_rewind, which copies the source's.
var preservedFiles = []string{confFile, baseConfFile, hbaFile, "postgresql.auto.conf"}

// Rewind runs pg_rewind against the upstream (as superuser; the password in
// PGPASSWORD) to make the stopped local data dir follow its timeline.
// PostgreSQL ≥ 13's pg_rewind runs crash recovery itself when the target
// was not shut down cleanly. pg_rewind copies the source's configuration
// files; ours are restored afterwards, success or not, and the instance is
// configured as a standby of from. A failed rewind may leave the data dir
// unusable: the agent then re-clones.
func (i *Instance) Rewind(ctx context.Context, from Upstream) error {
	if pid, err := i.PostmasterPID(); err == nil {
		return fmt.Errorf("rewind: postmaster %d is running", pid)
	}
	saved, err := i.saveFiles(preservedFiles)
	if err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	if err := i.ensureDataDir(); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	source := connString(
		"host", from.Host,
		"port", strconv.Itoa(from.Port),
		"user", i.cfg.Superuser.Username,
		"dbname", "postgres",
		"connect_timeout", "5",
	)
	i.log.Info("rewinding to upstream", "member", from.Member, "host", from.Host, "port", from.Port)
	_, runErr := i.run(ctx, []string{"PGPASSWORD=" + i.cfg.Superuser.Password.Reveal()}, "pg_rewind", i.syncArgs(
		"--target-pgdata="+i.cfg.DataDir, "--source-server="+source)...)
	if err := i.restoreFiles(saved); err != nil {
		return errors.Join(runErr, fmt.Errorf("rewind: restore configuration: %w", err))
	}
	if runErr != nil {
		return fmt.Errorf("rewind from %s: %w", from.Member, runErr)
	}
	if err := i.afterCopy(&from); err != nil {
		return fmt.Errorf("rewind from %s: %w", from.Member, err)
	}
	return nil
}

// saveFiles reads the named data dir files that exist.
func (i *Instance) saveFiles(names []string) (map[string][]byte, error) {
	saved := map[string][]byte{}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(i.cfg.DataDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", name, err)
		}
		saved[name] = data
	}
	return saved, nil
}

// restoreFiles writes saved files back atomically.
func (i *Instance) restoreFiles(saved map[string][]byte) error {
	var errs []error
	for name, data := range saved {
		if _, err := i.writeFileAtomic(filepath.Join(i.cfg.DataDir, name), data, 0o600); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
