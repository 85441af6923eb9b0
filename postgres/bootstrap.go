package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/atomicfile"
)

// InitDB creates a new cluster in data_dir: initdb with data checksums,
// the configured superuser and its password (from a 0600 temporary file,
// removed afterwards), UTF8 and scram-sha-256 authentication; then keeps
// initdb's postgresql.conf as postgresql.base.conf and writes Regent's
// postgresql.conf (as a primary) and pg_hba.conf (loopback only until the
// agent calls WriteHBA with the members). initdb takes its locale from the
// agent's environment. Options.InitDBOptions (bootstrap.initdb) follow
// Regent's own arguments.
func (i *Instance) InitDB(ctx context.Context) error {
	if err := i.ensureDataDir(); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	pwfile, err := i.tempSecretFile(i.cfg.Superuser.Password.Reveal() + "\n")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer i.removeSecretFile(pwfile)
	i.log.Info("running initdb", "data_dir", i.cfg.DataDir)
	args := i.syncArgs("-D", i.cfg.DataDir, "--data-checksums", "-U", i.cfg.Superuser.Username,
		"--pwfile", pwfile, "-E", "UTF8", "--auth=scram-sha-256")
	_, err = i.run(ctx, nil, "initdb", append(args, i.initdb...)...)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if _, err := i.ConfigurePrimary(); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if _, err := i.WriteHBA(nil); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return nil
}

// tempSecretFile writes content to a new 0600 file, readable by the
// PostgreSQL user, and returns its path. The caller removes it with
// removeSecretFile.
func (i *Instance) tempSecretFile(content string) (string, error) {
	name, err := atomicfile.Temp("", "regent-secret-*", []byte(content), 0o600, i.chown)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	return name, nil
}

// removeSecretFile removes a file from tempSecretFile. A failure leaves a
// password on disk: the operator must hear of it.
func (i *Instance) removeSecretFile(name string) {
	if _, err := removeFile(name); err != nil {
		i.log.Error("a file with a password could not be removed; remove it by hand", "path", name, "err", err)
	}
}

// SetupRoles, on a fresh primary, creates the replication role (LOGIN
// REPLICATION with the configured password), or brings an existing one to
// that state. Idempotent. Statement logging is switched off in the
// transaction so the password does not reach the server log.
func (i *Instance) SetupRoles(ctx context.Context) error {
	cr := i.cfg.Replication
	ident := pgx.Identifier{cr.Username}.Sanitize()
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, q := range []string{"SET LOCAL log_statement = 'none'", "SET LOCAL log_min_duration_statement = -1"} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", cr.Username).Scan(&exists); err != nil {
				return err
			}
			verb := "CREATE"
			if exists {
				verb = "ALTER"
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("%s ROLE %s WITH LOGIN REPLICATION PASSWORD %s",
				verb, ident, quoteLiteral(cr.Password.Reveal())))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("setup roles: %w", err)
	}
	i.log.Info("replication role ready", "role", cr.Username)
	return nil
}
