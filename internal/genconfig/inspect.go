package genconfig

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// parameterQuery reads the settings the server was configured with (a
// configuration file, its command line or environment), as Patroni's
// --generate-config does: not the built-in defaults, not read-only ones,
// not a recovery target (Regent refuses those).
const parameterQuery = `SELECT name, pg_catalog.current_setting(name) FROM pg_catalog.pg_settings
WHERE context <> 'internal'
  AND source IN ('configuration file', 'command line', 'environment variable')
  AND category <> 'Write-Ahead Log / Recovery Target'
  AND setting <> '(disabled)'
ORDER BY name`

// hbaQuery reads pg_hba.conf as the server parsed it, in order, so the
// rules come over even when the file is outside the data directory or not
// readable by the operator (Debian keeps it in /etc/postgresql).
const hbaQuery = `SELECT type, coalesce(database, '{}'), coalesce(user_name, '{}'), coalesce(address, ''),
  coalesce(netmask, ''), coalesce(auth_method, ''), coalesce(options, '{}')
FROM pg_catalog.pg_hba_file_rules WHERE error IS NULL ORDER BY line_number`

// representedElsewhere are settings the file carries in other keys
// (postgres.data_dir, postgres.listen) or that Regent writes itself
// (postgresql.conf and pg_hba.conf live in the data directory).
var representedElsewhere = map[string]bool{
	"data_directory": true, "port": true, "listen_addresses": true,
	"config_file": true, "hba_file": true, "ident_file": true,
}

// Inspect connects to the PostgreSQL of dsn (libpq keyword/value or URL;
// the PG* environment variables fill the rest, as for psql) as a
// superuser and reads what Render needs. It only reads.
func Inspect(ctx context.Context, dsn string) (*Source, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	src := &Source{Parameters: map[string]string{}}
	var superuser, port string
	if err := conn.QueryRow(ctx, `SELECT current_user, current_setting('is_superuser')`).Scan(&src.Superuser, &superuser); err != nil {
		return nil, fmt.Errorf("read the role: %w", err)
	}
	if superuser != "on" {
		return nil, fmt.Errorf("role %q is not a superuser: the data directory and the pg_hba.conf rules are readable by superusers only", src.Superuser)
	}
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('data_directory'),
		current_setting('port'), current_setting('listen_addresses'), current_setting('cluster_name')`).
		Scan(&src.ServerVersion, &src.DataDir, &port, &src.ListenAddresses, &src.ClusterName)
	if err != nil {
		return nil, fmt.Errorf("read the server's settings: %w", err)
	}
	if src.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	rows, err := conn.Query(ctx, parameterQuery)
	if err != nil {
		return nil, fmt.Errorf("read pg_settings: %w", err)
	}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		if !representedElsewhere[name] {
			src.Parameters[name] = value
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pg_settings: %w", err)
	}
	if src.HBA, err = readHBA(ctx, conn); err != nil {
		return nil, err
	}
	src.BinDir = binDir(src.DataDir)
	return src, nil
}

func readHBA(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, hbaQuery)
	if err != nil {
		return nil, fmt.Errorf("read pg_hba_file_rules: %w", err)
	}
	var lines []string
	var typ, addr, mask, method string
	var dbs, users, opts []string
	_, err = pgx.ForEachRow(rows, []any{&typ, &dbs, &users, &addr, &mask, &method, &opts}, func() error {
		lines = append(lines, hbaLine(typ, dbs, users, addr, mask, method, opts))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pg_hba_file_rules: %w", err)
	}
	return lines, nil
}

// hbaLine writes one pg_hba_file_rules row back as a pg_hba.conf line.
func hbaLine(typ string, dbs, users []string, addr, mask, method string, opts []string) string {
	f := []string{typ, hbaList(dbs), hbaList(users)}
	if typ != "local" {
		f = append(f, addr)
		if mask != "" {
			f = append(f, mask)
		}
	}
	f = append(f, method)
	for _, o := range opts {
		f = append(f, hbaWord(o))
	}
	return strings.Join(f, " ")
}

func hbaList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = hbaWord(s)
	}
	return strings.Join(out, ",")
}

// hbaWord quotes a word pg_hba.conf would otherwise split.
func hbaWord(s string) string {
	if s == "" || strings.ContainsAny(s, " \t,\"#") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// binDir is the directory of the running postmaster's executable: its pid
// is the first line of postmaster.pid, its executable /proc/PID/exe. It
// needs to run on the database host, as root or the server's OS user;
// "" otherwise (Render then asks for --bin-dir).
func binDir(dataDir string) string {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return ""
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return filepath.Dir(exe)
}
