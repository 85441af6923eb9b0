package genconfig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/testcluster"
)

// pgCmdTimeout bounds initdb and pg_ctl (start waits for the server).
const pgCmdTimeout = 2 * time.Minute

// foreignServer is a PostgreSQL set up the way an operator would, not by
// Regent: initdb, settings in postgresql.conf and on the command line, an
// extra pg_hba.conf rule. Its cleanup stops it.
type foreignServer struct {
	dataDir string
	port    int
	binDir  string
}

func startForeignServer(t *testing.T) foreignServer {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test with real PostgreSQL; not run with -short")
	}
	bin, err := testcluster.PGBinDir()
	if err != nil {
		t.Fatalf("PostgreSQL binaries not found: %v", err)
	}
	osUser, err := testcluster.LookupOSUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pg")
	if err := osUser.MkdirOwned(dir); err != nil {
		t.Fatal(err)
	}
	if err := testcluster.OpenPath(dir); err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	cred := osUser.Credential()
	s := foreignServer{dataDir: filepath.Join(dir, "data"), port: port, binDir: bin}
	runPG(t, cred, filepath.Join(bin, "initdb"), "-D", s.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8")
	appendFile(t, filepath.Join(s.dataDir, "postgresql.conf"), `
work_mem = '8MB'
shared_buffers = '16MB'
fsync = off
max_connections = 30
cluster_name = 'mig-test'
archive_mode = on
archive_command = '/bin/true %p %f'
`)
	appendFile(t, filepath.Join(s.dataDir, "pg_hba.conf"), "host all all 10.1.0.0/16 scram-sha-256\n")
	runPG(t, cred, filepath.Join(bin, "pg_ctl"), "start", "-w", "-D", s.dataDir, "-l", filepath.Join(dir, "server.log"),
		"-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", port, dir))
	t.Cleanup(func() {
		runPG(t, cred, filepath.Join(bin, "pg_ctl"), "stop", "-m", "immediate", "-D", s.dataDir)
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "server.log")); err == nil {
				t.Logf("server.log:\n%s", log)
			}
		}
	})
	return s
}

func (s foreignServer) dsn(user string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres", s.port, user)
}

func runPG(t *testing.T, cred *syscall.Credential, prog string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), pgCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGeneratedConfigDescribesTheRunningServer: the file generated from a
// running server loads (config.Load: every key and rule regent validate
// checks) and carries the server's data directory, binaries, listen
// address, cluster name, parameters (commands locally, the rest
// cluster-wide) and pg_hba.conf rules.
func TestGeneratedConfigDescribesTheRunningServer(t *testing.T) {
	s := startForeignServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	src, err := Inspect(ctx, s.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(Options{Name: "pg9", Etcd: []string{"http://127.0.0.1:2379"}, ConnectHost: "10.0.0.19"}, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated:\n%s", out)
	path := filepath.Join(t.TempDir(), "regent.yml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"PGSUPERPASS", "PGREPLPASS", "RESTAPI_PASSWORD"} {
		t.Setenv(k, "placeholder")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the generated file does not load: %v", err)
	}
	pg := cfg.Postgres
	for key, c := range map[string][2]string{
		"scope":                    {cfg.Scope, "mig-test"},
		"name":                     {cfg.Name, "pg9"},
		"postgres.data_dir":        {pg.DataDir, s.dataDir},
		"postgres.bin_dir":         {pg.BinDir, s.binDir},
		"postgres.listen":          {pg.Listen, fmt.Sprintf("127.0.0.1:%d", s.port)},
		"postgres.connect_address": {pg.ConnectAddress, fmt.Sprintf("10.0.0.19:%d", s.port)},
		"postgres.superuser":       {pg.Superuser.Username, "postgres"},
		"archive_command (local)":  {fmt.Sprint(pg.Parameters["archive_command"]), "/bin/true %p %f"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", key, c[0], c[1])
		}
	}
	dyn, err := cfg.BootstrapDynamic()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"work_mem": "8MB", "shared_buffers": "16MB", "fsync": "off", "max_connections": "30"} {
		if got := fmt.Sprint(dyn.PostgresParameters[name]); got != want {
			t.Errorf("bootstrap.dcs postgresql.parameters.%s = %q, want %q", name, got, want)
		}
	}
	for _, local := range []string{"listen_addresses", "port", "data_directory", "hba_file"} {
		if _, ok := pg.Parameters[local]; ok {
			t.Errorf("postgres.parameters carries %s, which the file says elsewhere", local)
		}
	}
	if !slices.Contains(pg.PgHBA, "host all all 10.1.0.0 255.255.0.0 scram-sha-256") {
		t.Errorf("postgres.pg_hba = %q, want the server's rule for 10.1.0.0/16", pg.PgHBA)
	}
	if w := pg.HBAWarnings(); len(w) > 0 {
		t.Errorf("the generated pg_hba draws warnings: %q", w)
	}
}

func TestInspectRefusesANonSuperuser(t *testing.T) {
	s := startForeignServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	src, err := Inspect(ctx, s.dsn("postgres"))
	if err != nil || src == nil {
		t.Fatal(err)
	}
	conn := connect(t, ctx, s.dsn("postgres"))
	if _, err := conn.Exec(ctx, "CREATE ROLE plain LOGIN"); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(ctx, s.dsn("plain"))
	if err == nil || !strings.Contains(err.Error(), "not a superuser") {
		t.Fatalf("Inspect as a plain role = %v, want a 'not a superuser' error", err)
	}
}

func connect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	return conn
}
