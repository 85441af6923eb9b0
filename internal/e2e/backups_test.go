package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// backrest is a pgBackRest repository on the local filesystem shared by a
// test cluster's nodes: one config file per node (its pg1-path and port),
// archive_command pushing every node's WAL to it, and replicas created
// from it first (create_replica_methods: [pgbackrest, basebackup]) with
// restore_command reading it.
type backrest struct {
	t      *testing.T
	repo   string // repo1-path
	dir    string // config files, logs, locks
	stanza string
}

// newBackrest prepares the directories (the repository itself is created
// by create; until then it is missing and pgbackrest fails).
func newBackrest(t *testing.T, stanza string) *backrest {
	t.Helper()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		t.Fatalf("pgbackrest is not installed (apt-get install pgbackrest; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	// The postgres user must reach it: the test's temporary directories
	// are 0700 root (the cluster's own are opened the same way).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	b := &backrest{t: t, dir: dir, repo: filepath.Join(dir, "repo"), stanza: stanza}
	cred := postgresOSUser(t)
	for _, d := range []string{dir, filepath.Join(dir, "log"), filepath.Join(dir, "lock")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *backrest) conf(node string) string { return filepath.Join(b.dir, node+".conf") }

// configure is an ExtraConfig: it writes the node's pgBackRest config and
// sets archiving, the replica methods and restore_command.
func (b *backrest) configure(node string, cfg map[string]any) {
	pg := cfg["postgres"].(map[string]any)
	_, port, _ := strings.Cut(pg["listen"].(string), ":")
	conf := fmt.Sprintf("[global]\nrepo1-path=%s\nlog-path=%s/log\nlock-path=%s/lock\nstart-fast=y\ncompress-type=none\nlog-level-console=warn\nlog-level-file=info\n\n[%s]\npg1-path=%s\npg1-port=%s\npg1-socket-path=%s\n",
		b.repo, b.dir, b.dir, b.stanza, pg["data_dir"], port, b.dir)
	if err := os.WriteFile(b.conf(node), []byte(conf), 0o644); err != nil {
		b.t.Errorf("write %s: %v", b.conf(node), err)
	}
	base := fmt.Sprintf("pgbackrest --config=%s --stanza=%s", b.conf(node), b.stanza)
	params := pg["parameters"].(map[string]any)
	params["unix_socket_directories"] = b.dir // pgBackRest reaches PostgreSQL by its socket
	params["archive_mode"] = "on"
	params["archive_command"] = base + " archive-push %p"
	pg["create_replica_methods"] = []string{"pgbackrest", "basebackup"}
	pg["pgbackrest"] = map[string]any{"command": base + " --delta restore", "keep_data": true, "no_params": true}
	pg["recovery_conf"] = map[string]any{"restore_command": base + ` archive-get %f "%p"`}
}

// run runs pgbackrest as the postgres user with node's config.
func (b *backrest) run(node string, args ...string) ctlResult {
	b.t.Helper()
	args = append([]string{"--config=" + b.conf(node), "--stanza=" + b.stanza}, args...)
	return runToolWith(b.t, 3*time.Minute, func(cmd *exec.Cmd) {
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGPASSWORD=" + testcluster.SuperuserPassword}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresOSUser(b.t)}
	}, "/usr/bin/pgbackrest", args...)
}

// create makes the repository, its stanza and a full backup of leader.
func (b *backrest) create(leader string) {
	b.t.Helper()
	mustSucceed(b.t, b.run(leader, "stanza-create"))
	mustSucceed(b.t, b.run(leader, "--type=full", "backup"))
}

// methodLog waits for the agent's line saying which method created the
// replica, and returns it.
func methodLog(t *testing.T, lc *testcluster.LogCapture, method string, timeout time.Duration) string {
	t.Helper()
	return lc.Wait(t, timeout, "replica created with "+method, func(l string) bool {
		return strings.Contains(l, "replica created") && strings.Contains(l, "method="+method)
	})
}

// TestReplicaFromBackup (issue #20, must-show 1): with archive_command
// pushing to a pgBackRest repository and create_replica_methods:
// [pgbackrest, basebackup], a new replica is restored from the backup
// while the primary takes writes, then streams; with the repository
// missing it falls back to basebackup.
func TestReplicaFromBackup(t *testing.T) {
	b := newBackrest(t, "e2e")
	c := testcluster.New(t, testcluster.Options{Nodes: 2, ExtraConfig: b.configure})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	replica := c.Others(leader.Name)[0]
	b.create(leader.Name)

	t.Log("a new replica from the backup while the primary takes writes")
	mustExec(t, leader, fmt.Sprintf(createLoadTable, "t_writes"))
	w := startWriter(t, c, "t_writes")
	waitAcked(t, w, leader.Name, time.Time{}, 20, replicateTimeout)
	replica.StopAgent(t)
	emptyDirectory(t, replica.DataDir)
	lc := replica.CaptureLog(t)
	replica.Start(t)
	methodLog(t, lc, "pgbackrest", rejoinTimeout)
	c.WaitHealthy(t, rejoinTimeout)
	w.Stop()
	rows, err := leader.QueryInt(t.Context(), "SELECT count(*) FROM t_writes")
	if err != nil {
		t.Fatal(err)
	}
	waitCount(t, replica, "t_writes", rows)
	waitStreaming(t, leader, replica)

	t.Log("the repository missing: basebackup instead")
	if err := os.Rename(b.repo, b.repo+".away"); err != nil {
		t.Fatal(err)
	}
	replica.StopAgent(t)
	emptyDirectory(t, replica.DataDir)
	lc = replica.CaptureLog(t)
	replica.Start(t)
	methodLog(t, lc, "basebackup", rejoinTimeout)
	if failed := lc.Matching(func(l string) bool {
		return strings.Contains(l, "replica creation method failed") && strings.Contains(l, "method=pgbackrest")
	}); len(failed) == 0 {
		t.Error("no log line says the pgbackrest method failed before basebackup")
	}
	c.WaitHealthy(t, rejoinTimeout)
	waitStreaming(t, leader, replica)
}

// waitStreaming polls until the leader's pg_stat_replication shows
// replica streaming.
func waitStreaming(t *testing.T, leader, replica *testcluster.Node) {
	t.Helper()
	testcluster.Poll(t, rejoinTimeout, replica.Name+" streams from "+leader.Name, func(ctx context.Context) error {
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", replica.Name)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("not streaming")
		}
		return nil
	})
}

// TestReplicaCatchesUpFromArchive (issue #20, must-show 3): a replica
// stopped until the primary recycled the WAL it needs (no slot keeps it:
// with member_slots_ttl 0 the member slot goes with the member key;
// max_wal_size small, wal_keep_size 0) restores that WAL from the archive with
// restore_command and streams again, without a new copy.
func TestReplicaCatchesUpFromArchive(t *testing.T) {
	b := newBackrest(t, "e2e")
	// member_slots_ttl 0: the departed member's slot goes at once (by
	// default the primary keeps it for 30 minutes, holding the WAL).
	c := testcluster.New(t, testcluster.Options{Nodes: 2, ExtraConfig: b.configure,
		DCS:        map[string]any{"member_slots_ttl": 0},
		Parameters: map[string]any{"max_wal_size": "32MB", "min_wal_size": "32MB", "wal_keep_size": 0}})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	replica := c.Others(leader.Name)[0]
	b.create(leader.Name)
	systemID := controlSystemID(t, replica.DataDir)
	mustExec(t, leader, "CREATE TABLE t_archive (id bigint PRIMARY KEY, pad text)")
	mustExec(t, leader, "INSERT INTO t_archive SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g")
	waitCount(t, replica, "t_archive", 1000)

	t.Log("the replica stops; the primary drops its slot and recycles the WAL it needs")
	replica.StopAgent(t)
	testcluster.Poll(t, rejoinTimeout, "the leader drops the stopped replica's slot", func(ctx context.Context) error {
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_replication_slots")
		if err != nil || n != 0 {
			return fmt.Errorf("%d slots (%w)", n, err)
		}
		return nil
	})
	var needed string
	if err := leader.DB(t, t.Context()).QueryRow(t.Context(), "SELECT pg_walfile_name(pg_current_wal_lsn())").Scan(&needed); err != nil {
		t.Fatal(err)
	}
	rows := int64(1000)
	testcluster.Poll(t, 2*time.Minute, "the primary removes WAL segment "+needed, func(ctx context.Context) error {
		rows += 1000
		for _, q := range []string{
			fmt.Sprintf("INSERT INTO t_archive SELECT g, repeat('x', 100) FROM generate_series(%d, %d) g", rows-999, rows),
			"SELECT pg_switch_wal()", "CHECKPOINT",
		} {
			if err := leader.Exec(ctx, q); err != nil {
				return err
			}
		}
		n, err := leader.QueryInt(ctx, "SELECT count(*) FROM pg_ls_waldir() WHERE name = $1", needed)
		if err != nil || n != 0 {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})

	t.Log("the replica starts again: archive, then streaming, no new copy")
	lc := replica.CaptureLog(t)
	replica.Start(t)
	waitCount(t, replica, "t_archive", rows)
	waitStreaming(t, leader, replica)
	if got := controlSystemID(t, replica.DataDir); got != systemID {
		t.Errorf("system identifier %s after the restart, want %s", got, systemID)
	}
	if copies := lc.Matching(func(l string) bool {
		return strings.Contains(l, "replica created") || strings.Contains(l, "cloning from upstream")
	}); len(copies) > 0 {
		t.Errorf("the replica was copied again: %q", copies)
	}
	pglog, err := os.ReadFile(filepath.Join(replica.DataDir, "log", "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pglog), `restored log file "`+needed+`" from archive`) {
		t.Errorf("the replica's log does not show %s restored from the archive", needed)
	}
}

// waitCount polls until n holds want rows in table.
func waitCount(t *testing.T, n *testcluster.Node, table string, want int64) {
	t.Helper()
	waitReading(t, rejoinTimeout, fmt.Sprintf("%s holds %d rows in %s", n.Name, want, table), "%d rows",
		func(ctx context.Context) (int64, error) { return n.QueryInt(ctx, "SELECT count(*) FROM "+table) },
		func(got int64) bool { return got == want })
}

// TestBootstrapToPointInTime (issue #20, must-show 2): a new cluster
// bootstrapped from a pgBackRest backup with bootstrap.method and
// recovery_target_time holds exactly the rows committed before that time,
// runs as the primary of its own cluster, and its initialize key holds
// its system identifier.
func TestBootstrapToPointInTime(t *testing.T) {
	b := newBackrest(t, "src")
	src := testcluster.New(t, testcluster.Options{Nodes: 1, Scope: "src", ExtraConfig: b.configure})
	leader := src.WaitHealthy(t, bootstrapTimeout)
	b.create(leader.Name)
	mustExec(t, leader, "CREATE TABLE t_pitr (id int PRIMARY KEY, batch int)")
	mustExec(t, leader, "INSERT INTO t_pitr SELECT g, 1 FROM generate_series(1, 100) g")
	mustExec(t, leader, "INSERT INTO t_pitr SELECT g, 2 FROM generate_series(101, 150) g")
	var target string
	// Taken after batch 2 committed and before batch 3 does.
	if err := leader.DB(t, t.Context()).QueryRow(t.Context(), "SELECT clock_timestamp()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	mustExec(t, leader, "INSERT INTO t_pitr SELECT g, 3 FROM generate_series(151, 170) g")
	mustSucceed(t, b.run(leader.Name, "check")) // switches WAL and waits until it is archived

	restore := fmt.Sprintf("pgbackrest --config=%s --stanza=src", b.conf(leader.Name))
	dst := testcluster.New(t, testcluster.Options{Nodes: 1, Scope: "restored", ExtraConfig: func(node string, cfg map[string]any) {
		dataDir := cfg["postgres"].(map[string]any)["data_dir"].(string)
		boot := cfg["bootstrap"].(map[string]any)
		boot["method"] = "pitr"
		boot["pitr"] = map[string]any{
			"command":   restore + " --pg1-path=" + dataDir + " --delta restore",
			"no_params": true,
			"recovery_conf": map[string]any{
				"restore_command":        restore + ` archive-get %f "%p"`,
				"recovery_target_time":   target,
				"recovery_target_action": "promote",
			},
		}
	}})
	restored := dst.WaitHealthy(t, bootstrapTimeout)
	for batch, want := range map[int]int64{1: 100, 2: 50, 3: 0} {
		got, err := restored.QueryInt(t.Context(), "SELECT count(*) FROM t_pitr WHERE batch = $1", batch)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("batch %d: %d rows in the restored cluster, want %d (target %s)", batch, got, want, target)
		}
	}
	mustExec(t, restored, "INSERT INTO t_pitr VALUES (1000, 4)") // a writable primary
	resp, err := dst.Etcd().Get(t.Context(), dst.Keys().Initialize())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("initialize key: %v %v", resp, err)
	}
	if got, want := string(resp.Kvs[0].Value), controlSystemID(t, restored.DataDir); got != want {
		t.Errorf("initialize = %q, want the restored system identifier %s", got, want)
	}
}

// TestCloneProgressInList (issue #20, must-show 6): while a replica of a
// database of more than 1 GB is created with pg_basebackup (throttled
// with postgres.basebackup max-rate so the copy lasts long enough to be
// watched), `regentctl list` shows its progress rising.
func TestCloneProgressInList(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Nodes: 2, ExtraConfig: func(node string, cfg map[string]any) {
		cfg["postgres"].(map[string]any)["basebackup"] = map[string]any{"max-rate": "40M"}
	}})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	replica := c.Others(leader.Name)[0]
	replica.StopAgent(t)
	// ~1.1 GB: 1M rows of ~1 kB (below the TOAST threshold: not compressed).
	mustExec(t, leader, "CREATE TABLE t_big AS SELECT g AS id, repeat(md5(g::text), 32) AS pad FROM generate_series(1, 1000000) g")
	size, err := leader.QueryInt(t.Context(), "SELECT pg_database_size('postgres')")
	if err != nil {
		t.Fatal(err)
	}
	if size < 1<<30 {
		t.Fatalf("database size %d bytes, want at least 1 GiB", size)
	}
	emptyDirectory(t, replica.DataDir)
	replica.Start(t)

	row := regexp.MustCompile(`\b` + replica.Name + `\b.*creating replica (\d+)%, [\d.]+ of [\d.]+ GB(, \d+ (min|s) left)? \(basebackup\)`)
	var seen []int
	testcluster.Poll(t, 2*time.Minute, "regentctl list showing "+replica.Name+"'s progress rising", func(ctx context.Context) error {
		r := regentctl(t, c, ctlBound, "list")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		m := row.FindStringSubmatch(r.stdout)
		if m == nil {
			return fmt.Errorf("no progress in:\n%s (seen %v)", r.stdout, seen)
		}
		pct, _ := strconv.Atoi(m[1])
		if n := len(seen); n == 0 || pct != seen[n-1] {
			seen = append(seen, pct)
		}
		if len(seen) < 3 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("progress went down: %v", seen)
		}
	}
	t.Logf("progress seen in regentctl list: %v%%", seen)
	c.WaitHealthy(t, 2*time.Minute)
}
