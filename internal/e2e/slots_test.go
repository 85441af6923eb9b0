package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/postgres"
)

// slotPassBound is how long a member may take to apply its slot plan
// after a change: the slot pass runs every 5 s and at every change.
const slotPassBound = 30 * time.Second

// TestIgnoredSlotSurvivesSwitchovers (issue #20, must-show 5): a physical
// slot made by hand and listed in ignore_slots survives a switchover away
// and back (on the old primary while it is a replica, and when it leads
// again); one not listed is dropped with a WARN naming it and the
// ignore_slots entry that would keep it.
func TestIgnoredSlotSurvivesSwitchovers(t *testing.T) {
	c, _ := startHealthy(t, testcluster.Options{Nodes: 2,
		DCS: map[string]any{"ignore_slots": []any{map[string]any{"name": "foreign_archiver", "type": "physical"}}}})
	first := waitHealthyForSwitchover(t, c)
	second := c.Others(first.Name)[0]
	logs := first.CaptureLog(t)

	mustExec(t, first, "SELECT pg_create_physical_replication_slot('foreign_archiver', true)")
	mustExec(t, first, "SELECT pg_create_physical_replication_slot('stray_archiver', true)")
	logs.Wait(t, slotPassBound, "a WARN naming stray_archiver and the entry that keeps it", func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "slot=stray_archiver") &&
			strings.Contains(l, `ignore_slots_entry="{\"name\": \"stray_archiver\", \"type\": \"physical\"}"`)
	})
	waitSlots(t, first, "stray_archiver dropped, foreign_archiver kept", func(have map[string]bool) bool {
		return !have["stray_archiver"] && have["foreign_archiver"]
	})

	// Away: first becomes a replica. Its slot pass drops the slot it kept
	// for second as a primary (a replica keeps no member slots); the
	// ignored one must still be there after that pass.
	mustSucceed(t, regentctl(t, c, switchoverBound, "switchover", "--to", second.Name, "-y"))
	waitStreamingFrom(t, first, second, switchoverBound)
	memberSlot := postgres.SlotName(second.Name)
	logs.Wait(t, slotPassBound, "the former primary dropping "+memberSlot+" as a replica", func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "slot="+memberSlot+" ")
	})
	waitSlots(t, first, "foreign_archiver kept on the replica", func(have map[string]bool) bool {
		return have["foreign_archiver"] && !have[memberSlot]
	})

	// And back: first leads again and keeps it.
	c.WaitHealthy(t, bootstrapTimeout)
	waitHealthyForSwitchover(t, c)
	mustSucceed(t, regentctl(t, c, switchoverBound, "switchover", "--to", first.Name, "-y"))
	waitStreamingFrom(t, second, first, switchoverBound)
	waitSlots(t, first, "the member slot back and foreign_archiver kept on the primary again", func(have map[string]bool) bool {
		return have["foreign_archiver"] && have[memberSlot] && !have["stray_archiver"]
	})
	if n := len(logs.Matching(func(l string) bool { return strings.Contains(l, "slot=foreign_archiver") })); n != 0 {
		t.Errorf("%d log lines about foreign_archiver, want none (it is ignored)", n)
	}
}

// switchoverBound bounds a regentctl switchover and the old primary
// streaming from the new one afterwards.
const switchoverBound = 90 * time.Second

// waitSlots polls n's pg_replication_slots until ok holds for the set of
// slot names.
func waitSlots(t *testing.T, n *testcluster.Node, what string, ok func(have map[string]bool) bool) {
	t.Helper()
	waitReading(t, slotPassBound, n.Name+": "+what, "slots %v",
		func(ctx context.Context) (map[string]bool, error) { return slotNames(ctx, n) }, ok)
}

func slotNames(ctx context.Context, n *testcluster.Node) (map[string]bool, error) {
	conn, err := n.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(ctx, conn)
	rows, err := conn.Query(ctx, "SELECT slot_name::text FROM pg_replication_slots")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		have[s] = true
	}
	return have, rows.Err()
}

// TestRegentctlRemoveAndFlush (issue #20, must-show 7): against a running
// cluster, flush cancels a scheduled restart and a scheduled switchover,
// remove wipes the cluster's keys; each refuses without confirmation and
// then changes nothing. After the wipe the agents elect a leader again and
// it writes the initialize key back.
func TestRegentctlRemoveAndFlush(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{Nodes: 2})
	replica := c.Others(leader.Name)[0]
	scope := c.Scope()
	sysid, err := c.Get(t.Context(), "initialize")
	if err != nil || len(sysid) == 0 {
		t.Fatalf("initialize key: %q, %v", sysid, err)
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	// query and dsn pick the member by role.
	q := queryWith(t, c, "query", "--role", "replica", "--command", "SELECT pg_is_in_recovery() AS standby, 42 AS n")
	if want := " standby | n\n---------+----\n t       | 42\n(1 row)\n"; q.code != 0 || q.stdout != want {
		t.Errorf("query on the replica: %s; want stdout %q", q, want)
	}
	if q := queryWith(t, c, "dsn", "--role", "leader"); q.code != 0 || q.stdout != fmt.Sprintf("host=127.0.0.1 port=%d\n", leader.PGPort) {
		t.Errorf("dsn of the leader: %s", q)
	}
	if q := queryWith(t, c, "query", "--member", leader.Name, "--command", "SELEC 1"); q.code != 1 || !strings.Contains(q.stderr, "syntax error") {
		t.Errorf("a bad statement: %s; want exit 1 with PostgreSQL's error", q)
	}

	// flush restart.
	mustSucceed(t, regentctl(t, c, ctlBound, "restart", replica.Name, "--scheduled", later, "--force"))
	scheduledRestart := func(ctx context.Context) (bool, error) {
		m, err := c.Member(ctx, replica.Name)
		return m["scheduled_restart"] != nil, err
	}
	waitFor(t, "the scheduled restart in "+replica.Name+"'s member key", func(ctx context.Context) (bool, error) { return scheduledRestart(ctx) })
	if r := regentctl(t, c, ctlBound, "flush", scope, "restart"); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("flush restart without confirmation: %s; want exit 1 asking for --force", r)
	}
	if on, err := scheduledRestart(t.Context()); err != nil || !on {
		t.Fatalf("the refused flush removed the scheduled restart (%v)", err)
	}
	r := regentctl(t, c, ctlBound, "flush", scope, "restart", "--force")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "Success: flush scheduled restart for member "+replica.Name) {
		t.Errorf("flush restart output: %q", r.stdout)
	}
	waitFor(t, "no scheduled restart on "+replica.Name, func(ctx context.Context) (bool, error) {
		on, err := scheduledRestart(ctx)
		return !on, err
	})

	// flush switchover.
	code, body, err := leader.Do(t.Context(), "POST", "/switchover",
		map[string]any{"leader": leader.Name, "candidate": replica.Name, "scheduled_at": later})
	if err != nil || code != 202 {
		t.Fatalf("schedule a switchover: %d %s %v", code, body, err)
	}
	failoverKey := func(ctx context.Context) (bool, error) {
		v, err := c.Get(ctx, "failover")
		return strings.Contains(string(v), "scheduled_at"), err
	}
	waitFor(t, "the scheduled switchover in the failover key", failoverKey)
	if r := regentctl(t, c, ctlBound, "flush", scope, "switchover"); r.code != 1 {
		t.Errorf("flush switchover without confirmation: %s; want exit 1", r)
	}
	if on, err := failoverKey(t.Context()); err != nil || !on {
		t.Fatalf("the refused flush cancelled the switchover (%v)", err)
	}
	if r := regentctl(t, c, ctlBound, "flush", scope, "reboot", "--force"); r.code != 2 {
		t.Errorf("flush with a bad target: %s; want exit 2", r)
	}
	mustSucceed(t, regentctl(t, c, ctlBound, "flush", scope, "switchover", "--force"))
	waitFor(t, "no scheduled switchover", func(ctx context.Context) (bool, error) {
		on, err := failoverKey(ctx)
		return !on, err
	})

	// remove: refused on wrong or missing answers, then done.
	for _, answers := range []string{"", scope + "\nYes I am aware\n" + replica.Name + "\n", "wrong\n"} {
		r := removeWith(t, c, answers)
		if r.code != 1 || !strings.Contains(r.stderr, "nothing removed") {
			t.Errorf("remove answered %q: %s; want exit 1, nothing removed", answers, r)
		}
		if v, err := c.Get(t.Context(), "initialize"); err != nil || string(v) != string(sysid) {
			t.Fatalf("after a refused remove the initialize key is %q (%v), want %q", v, err, sysid)
		}
	}
	if r := regentctl(t, c, ctlBound, "remove", "another", "--force"); r.code != 2 {
		t.Errorf("remove of another cluster than --scope: %s; want exit 2", r)
	}
	removedAt := time.Now()
	r = removeWith(t, c, scope+"\nYes I am aware\n"+leader.Name+"\n")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "Removed ") {
		t.Errorf("remove output: %q", r.stdout)
	}
	// The wipe is what remove did; the agents write keys again at once, so
	// the check is that the config key (no agent rewrites it) is gone.
	if v, err := c.Get(t.Context(), "config"); err != nil || v != nil {
		t.Errorf("config key after remove: %q (%v), want absent", v, err)
	}
	c.WaitHealthy(t, bootstrapTimeout)
	waitFor(t, "the initialize key written back by the leader", func(ctx context.Context) (bool, error) {
		v, err := c.Get(ctx, "initialize")
		return string(v) == string(sysid), err
	})
	t.Logf("cluster healthy with its initialize key back %s after remove", time.Since(removedAt).Round(time.Second))
}

// removeWith runs `regentctl remove <scope>` with answers piped to stdin.
func removeWith(t *testing.T, c *testcluster.Cluster, answers string) ctlResult {
	t.Helper()
	args := []string{"--etcd", strings.Join(c.EtcdEndpoints(), ","), "--scope", c.Scope(), "remove", c.Scope()}
	return runToolWith(t, ctlBound, func(cmd *exec.Cmd) { cmd.Stdin = strings.NewReader(answers) }, regentctlBinary(t), args...)
}

// queryWith runs regentctl with the superuser's password in $PGPASSWORD.
func queryWith(t *testing.T, c *testcluster.Cluster, args ...string) ctlResult {
	t.Helper()
	base := []string{"--etcd", strings.Join(c.EtcdEndpoints(), ","), "--scope", c.Scope()}
	return runToolWith(t, ctlBound, func(cmd *exec.Cmd) {
		cmd.Env = append(os.Environ(), "PGPASSWORD="+testcluster.SuperuserPassword, "PGUSER="+testcluster.SuperuserName)
	}, regentctlBinary(t), append(base, args...)...)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, what, func(ctx context.Context) error {
		ok, err := cond(ctx)
		if err == nil && !ok {
			err = fmt.Errorf("not yet")
		}
		return err
	})
}

// TestLogicalSlotSurvivesFailover (issue #20, must-show 4): a permanent
// logical slot is copied into the replica and advanced to the position
// the leader publishes; a pg_recvlogical consumer that confirmed up to
// some position continues, after the primary crashed, from the new
// primary with every later change once and none it had confirmed.
func TestLogicalSlotSurvivesFailover(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{Nodes: 2,
		Parameters: map[string]any{"wal_level": "logical"},
		DCS: map[string]any{"slots": map[string]any{
			"cdc": map[string]any{"type": "logical", "database": "postgres", "plugin": "test_decoding"}}}})
	replica := c.Others(leader.Name)[0]
	mustExec(t, leader, "CREATE TABLE cdc_t (id int PRIMARY KEY)")
	waitSlots(t, leader, "the permanent logical slot cdc", func(have map[string]bool) bool { return have["cdc"] })

	// The consumer confirms up to the first 50 rows. The slot, created at
	// the bootstrap, starts before the replica's oldest WAL (it was
	// cloned later): its copy waits until the consumer moves it past (the
	// checkpoint's running-xacts record lets restart_lsn move).
	mustExec(t, leader, "CHECKPOINT")
	mustExec(t, leader, "INSERT INTO cdc_t SELECT generate_series(1, 50)")
	got := recvLogical(t, leader, queryLSN(t, leader, "pg_current_wal_lsn()"))
	if want := idRange(1, 50); !slices.Equal(got, want) {
		t.Fatalf("first consumption: ids %v, want %v", got, want)
	}
	// The replica restarts once to load the copy of the slot's files.
	waitReading(t, slotCopyBound, replica.Name+" holding a copy of cdc", "slots %v",
		func(ctx context.Context) (map[string]bool, error) { return slotNames(ctx, replica) },
		func(have map[string]bool) bool { return have["cdc"] })
	confirmed := queryLSN(t, leader, "(SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc')")
	mustExec(t, leader, "INSERT INTO cdc_t SELECT generate_series(51, 100)")
	waitRows(t, []*testcluster.Node{replica}, 100, "SELECT count(*) FROM cdc_t")
	testcluster.Poll(t, slotPassBound, replica.Name+"'s cdc advanced to the consumer's confirmed position", func(ctx context.Context) error {
		pos, err := replica.QueryInt(ctx, lsnInt("(SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'cdc')"))
		if err == nil && pos != confirmed {
			err = fmt.Errorf("confirmed_flush_lsn %d, want %d", pos, confirmed)
		}
		return err
	})

	leader.Kill(t)
	next := waitNewLeader(t, c, leader.Name, failoverBound)
	mustExec(t, next, "INSERT INTO cdc_t SELECT generate_series(101, 150)")
	got = recvLogical(t, next, queryLSN(t, next, "pg_current_wal_lsn()"))
	if want := idRange(51, 150); !slices.Equal(got, want) {
		t.Fatalf("after the failover: ids %v, want %v (no change lost, none the consumer had confirmed again)", got, want)
	}
}

const (
	// slotCopyBound: a copy waits for the leader to publish the slot
	// (a slot pass, then the status key) and restarts the replica.
	slotCopyBound = 60 * time.Second
	failoverBound = 60 * time.Second
)

// recvLogical runs pg_recvlogical on slot cdc of n until endpos and
// returns the ids of the rows inserted into cdc_t, in order.
func recvLogical(t *testing.T, n *testcluster.Node, endpos int64) []int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "changes")
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=postgres", n.PGPort, testcluster.SuperuserName, testcluster.SuperuserPassword)
	r := runTool(t, failoverBound, filepath.Join(pgBinDir(), "pg_recvlogical"), "-d", dsn, "--slot", "cdc", "--start",
		"--no-loop", "--endpos", postgres.LSN(endpos).String(), "-o", "include-xids=0", "-f", out)
	if r.code != 0 {
		t.Fatalf("pg_recvlogical: %s", r)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, line := range strings.Split(string(data), "\n") {
		if _, v, ok := strings.Cut(line, "table public.cdc_t: INSERT: id[integer]:"); ok {
			id, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("change line %q: %v", line, err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

func idRange(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// pgBinDir is where the PostgreSQL 15 client programs are.
func pgBinDir() string {
	if d := os.Getenv("REGENT_PG_BIN_DIR"); d != "" {
		return d
	}
	return "/usr/lib/postgresql/15/bin"
}
