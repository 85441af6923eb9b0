package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regent-ha/regent/internal/testcluster"
)

// debianHBA are the lines of Debian's stock pg_hba.conf an operator keeps:
// peer for the postgres OS user on the socket, trust on loopback.
var debianHBA = []string{"local all postgres peer", "host all all 127.0.0.1/32 trust"}

// TestHBAConfiguredLinesKeepTheirMeaning (issue #16, must-show 5): with
// `local all postgres peer` and `host all all 127.0.0.1/32 trust` in
// regent.yml, psql as the postgres OS user gets in over the socket without
// a password, and TCP connections as the superuser get in without one: the
// configured lines come before Regent's own. Replication still works, and
// still needs the replication password: Regent's lines serve it.
func TestHBAConfiguredLinesKeepTheirMeaning(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Nodes: 2, ExtraConfig: func(_ string, cfg map[string]any) {
		cfg["postgres"].(map[string]any)["pg_hba"] = debianHBA
	}})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	replica := c.Others(leader.Name)[0]

	for _, n := range []*testcluster.Node{leader, replica} {
		// The socket is in /tmp (Regent's unix_socket_directories).
		r := pgTool(t, true, "psql", "-h", "/tmp", "-p", strconv.Itoa(n.PGPort), "-U", "postgres", "-d", "postgres",
			"-w", "-Atc", "SELECT current_user || ' ' || (inet_client_addr() IS NULL)")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "postgres true" {
			t.Errorf("%s: psql over the socket as the postgres OS user without a password: %s", n.Name, r)
		}
		r = pgTool(t, false, "psql", "-h", "127.0.0.1", "-p", strconv.Itoa(n.PGPort), "-U", "postgres", "-d", "postgres",
			"-w", "-Atc", "SELECT current_user || ' ' || host(inet_client_addr())")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "postgres 127.0.0.1" {
			t.Errorf("%s: psql over TCP as the superuser without a password: %s", n.Name, r)
		}
	}

	// Replication: a write on the leader reaches the replica.
	ctx := t.Context()
	if err := leader.Exec(ctx, "CREATE TABLE hba_probe (id int); INSERT INTO hba_probe VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitRows(t, []*testcluster.Node{replica}, 1, "SELECT count(*) FROM hba_probe")

	// A replication connection still needs the password (Regent's
	// scram-sha-256 line, not the configured trust line, takes it).
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=replication replication=true sslmode=disable connect_timeout=5",
		leader.PGPort, testcluster.ReplicationName)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if conn, err := pgconn.Connect(cctx, dsn+" password=wrong"); err == nil {
		conn.Close(cctx)
		t.Errorf("a replication connection with a wrong password was accepted")
	}
	conn, err := pgconn.Connect(cctx, dsn+" password="+testcluster.ReplicationPassword)
	if err != nil {
		t.Fatalf("a replication connection with the password: %v", err)
	}
	conn.Close(cctx)
}

// pgTool runs a PostgreSQL client program from the cluster's bin
// directory, as the postgres OS user when asPostgres, with no password
// from the environment or a ~/.pgpass.
func pgTool(t *testing.T, asPostgres bool, name string, args ...string) ctlResult {
	t.Helper()
	binDir, err := testcluster.PGBinDir()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return runToolWith(t, 30*time.Second, func(cmd *exec.Cmd) {
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "PGPASSFILE=/dev/null", "LC_ALL=C"}
		if asPostgres {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresOSUser(t)}
		}
	}, filepath.Join(binDir, name), args...)
}

// postgresOSUser is the postgres OS account; the tests run as root (the
// agents run as postgres), which peer authentication needs as well.
func postgresOSUser(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test runs a client as the postgres OS user: run the e2e tests as root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
