package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the operator tests.
const (
	// ctlBound bounds one quick regentctl run (etcd read plus REST calls).
	ctlBound = 30 * time.Second
	// restartBound bounds `regentctl restart` of a whole cluster.
	restartBound = 2 * time.Minute
	// configApplyWait: every agent applies a config change within a few
	// loop_waits (1 s here).
	configApplyWait = 10 * time.Second
)

// TestOperatorConfigTTL: PATCH /config {"ttl": 20} moves every agent to a
// lease granted with the new TTL (member keys and the leader key, which
// shares its leader's lease) within a few ticks, without a failover;
// invalid values are refused with a 4xx naming the key and never reach
// etcd.
func TestOperatorConfigTTL(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	api := plainAPI()
	ctx := t.Context()
	waitLeaseTTLs(t, c, leader.Name, int64(c.TTL()/time.Second), replicateTimeout)

	_, rev := configRevision(t, c)
	for _, bad := range []struct{ method, body, key string }{
		{http.MethodPatch, `{"ttl": "abc"}`, "ttl"},
		{http.MethodPatch, `{"loop_wait": 50}`, "loop_wait"},
		{http.MethodPut, `{"ttl": "abc", "loop_wait": 1, "retry_timeout": 3}`, "ttl"},
	} {
		code, body, err := api.do(ctx, leader, bad.method, "/config", []byte(bad.body), creds{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s /config %s → %d %s", bad.method, bad.body, code, compactBody(body))
		if code < 400 || code > 499 || !strings.Contains(string(body), bad.key) {
			t.Errorf("%s /config %s = %d %s, want a 4xx naming %q", bad.method, bad.body, code, compactBody(body), bad.key)
		}
	}
	if _, after := configRevision(t, c); after != rev {
		t.Errorf("the config key was written by a refused request: ModRevision %d → %d", rev, after)
	}

	patched := time.Now()
	code, body, err := api.do(ctx, leader, http.MethodPatch, "/config", []byte(`{"ttl": 20}`), creds{})
	if err != nil || code != http.StatusOK {
		t.Fatalf("PATCH /config {\"ttl\": 20} = %d %s (err %v)", code, compactBody(body), err)
	}
	if cfg, _ := configRevision(t, c); str(cfg["ttl"]) != "20" || str(cfg["loop_wait"]) != "1" {
		t.Errorf("config key after the PATCH: %v, want ttl 20 and the other keys kept", cfg)
	}
	waitLeaseTTLs(t, c, leader.Name, 20, configApplyWait)
	t.Logf("every key on a lease granted with ttl 20 %.1fs after the PATCH", time.Since(patched).Seconds())
	if name, err := c.Leader(ctx); err != nil || name != leader.Name {
		t.Errorf("leader key after the ttl change: %q (err %v), want %s kept", name, err, leader.Name)
	}
}

// waitLeaseTTLs waits until every member key and the leader key are on
// leases granted with want seconds, the leader key on its holder's lease.
func waitLeaseTTLs(t *testing.T, c *testcluster.Cluster, leader string, want int64, timeout time.Duration) {
	t.Helper()
	testcluster.Poll(t, timeout, fmt.Sprintf("member and leader keys on leases granted with ttl %d", want), func(ctx context.Context) error {
		leases, err := keyLeases(ctx, c)
		if err != nil {
			return err
		}
		var errs []error
		for _, key := range append([]string{"leader"}, memberKeys(c)...) {
			l, ok := leases[key]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: absent or not on a lease", key))
			case l[1] != want:
				errs = append(errs, fmt.Errorf("%s: lease %x granted ttl %d", key, l[0], l[1]))
			}
		}
		if l, m := leases["leader"], leases["members/"+leader]; l[0] != m[0] {
			errs = append(errs, fmt.Errorf("leader key on lease %x, but its holder's member key on %x", l[0], m[0]))
		}
		return errors.Join(errs...)
	})
}

func memberKeys(c *testcluster.Cluster) []string {
	var keys []string
	for _, n := range c.Nodes() {
		keys = append(keys, "members/"+n.Name)
	}
	return keys
}

// TestOperatorPendingRestart: a max_connections change in the dynamic
// config (PATCH /config) marks every member pending_restart (member keys
// and GET /patroni), and `regentctl restart --pending --force` over the
// whole cluster restarts each one and clears it: first raising the value,
// then lowering it. max_connections is not in regent.yml here, so no local
// value competes; bootstrap.dcs sets work_mem, which every member must run
// with from the start.
func TestOperatorPendingRestart(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{
		DCS: map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "5MB"}}},
		ExtraConfig: func(_ string, cfg map[string]any) {
			pg, _ := cfg["postgres"].(map[string]any)
			params, _ := pg["parameters"].(map[string]any)
			delete(params, "max_connections")
		},
	})
	leader := c.WaitHealthy(t, bootstrapTimeout)
	// Not fatal: the restarts below are worth running anyway.
	if err := testcluster.Eventually(t.Context(), configApplyWait, settingOn(c.Nodes(), "work_mem", "5MB")); err != nil {
		t.Errorf("bootstrap.dcs postgresql.parameters not applied: %v", err)
	}
	if v := pgText(t, leader, "SHOW max_connections"); v == "200" {
		t.Fatalf("max_connections already 200")
	}
	t.Log("raise max_connections to 200")
	restartPending(t, c, leader, 200, 1)
	// Lowering: a replica may restart before it replays the primary's
	// parameter change, so PostgreSQL refuses its new, lower value. Patroni
	// then starts it with the value in pg_control and leaves it
	// pending_restart; a second restart of those members finishes the job.
	t.Log("lower max_connections to 40")
	restartPending(t, c, leader, 40, 2)
}

// TestOperatorPendingRestartOverLocal is the same with the harness's
// regent.yml, whose postgres.parameters set max_connections 30 on every
// node. Patroni ignores local values of max_connections (and of the other
// parameters that must match on primary and replicas): the dynamic
// config's value applies, so PATCH /config must still mark every member
// pending_restart and the restart must bring 40.
func TestOperatorPendingRestartOverLocal(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	waitSetting(t, c.Nodes(), "max_connections", "30", replicateTimeout)
	patchConfig(t, leader, map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"max_connections": 40}}})
	if err := testcluster.Eventually(t.Context(), configApplyWait, pendingRestartOn(c, c.Nodes(), true)); err != nil {
		for _, n := range c.Nodes() {
			t.Logf("%s's postgresql.conf:\n%s", n.Name, confLines(n, "max_connections"))
		}
		t.Fatalf("max_connections 40 in the dynamic config did not make every member pending_restart (the local postgres.parameters value took precedence?): %v", err)
	}
	restartPending(t, c, leader, 40, 1)
}

// restartPending PATCHes max_connections to value, waits for
// pending_restart everywhere and runs `regentctl restart --pending
// --force`, over the cluster and then, up to rounds-1 times, over the
// members still pending; each run must succeed and leave every member
// running. It ends with value in force everywhere, no pending_restart and
// the leader unchanged.
func restartPending(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, value, rounds int) {
	t.Helper()
	patchConfig(t, leader, map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"max_connections": value}}})
	patched := time.Now()
	waitPendingRestart(t, c, c.Nodes(), true, configApplyWait)
	t.Logf("pending_restart on every member %.1fs after the PATCH", time.Since(patched).Seconds())

	before := postmasters(t, c)
	var members []string // all
	for round := 1; ; round++ {
		r := regentctl(t, c, restartBound, append([]string{"restart", "--pending", "--force"}, members...)...)
		if r.code != 0 {
			t.Errorf("round %d: %s: want exit status 0", round, r)
		}
		if l := c.WaitHealthy(t, rejoinTimeout); l != leader {
			t.Fatalf("leader changed from %s to %s: a restart must keep the leader", leader.Name, l.Name)
		}
		if round == rounds {
			break
		}
		// A replica restarted before it replayed the primary's change keeps
		// the primary's old value and turns pending_restart again once it
		// has: wait for either outcome before deciding on another round.
		_ = testcluster.Eventually(t.Context(), configApplyWait, func(ctx context.Context) error {
			members = pendingMembers(t, c)
			for _, n := range c.Nodes() {
				if !slices.Contains(members, n.Name) && settingOn([]*testcluster.Node{n}, "max_connections", fmt.Sprint(value))(ctx) != nil {
					return fmt.Errorf("%s neither at %d nor pending_restart yet", n.Name, value)
				}
			}
			return nil
		})
		if len(members) == 0 {
			break
		}
		t.Logf("round %d left %v pending_restart", round, members)
	}
	waitSetting(t, c.Nodes(), "max_connections", fmt.Sprint(value), replicateTimeout)
	waitPendingRestart(t, c, c.Nodes(), false, configApplyWait)
	after := postmasters(t, c)
	for _, n := range c.Nodes() {
		if before[n.Name] == after[n.Name] {
			t.Errorf("%s: postmaster unchanged (%s): not restarted", n.Name, after[n.Name])
		}
	}
}

// pendingMembers returns the members whose key shows pending_restart.
func pendingMembers(t *testing.T, c *testcluster.Cluster) []string {
	t.Helper()
	var out []string
	for _, n := range c.Nodes() {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		v, err := memberField(ctx, c, n.Name, "pending_restart")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if v == "true" {
			out = append(out, n.Name)
		}
	}
	return out
}

// TestOperatorPause: in maintenance mode (`regentctl pause --wait`) a dead
// PostgreSQL on the primary causes no failover and is not restarted;
// `regentctl resume --wait` brings automatic behaviour back: a writable
// primary within ttl + 10 s.
func TestOperatorPause(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{})
	mustSucceed(t, regentctl(t, c, ctlBound, "pause", "--wait"))
	testcluster.Poll(t, configApplyWait, "pause in every member key and GET /patroni", func(ctx context.Context) error {
		return checkPause(ctx, c, "true")
	})

	before := readLeaderKey(t, c)
	old.KillPostgres(t)
	var released time.Duration
	killed := time.Now()
	holdsFor(t, c.TTL()+rtoSlack, "paused: no failover and no restart after "+old.Name+"'s PostgreSQL died", func(ctx context.Context) error {
		k, err := leaderKey(ctx, c)
		switch {
		case err != nil:
			return err
		case k.Holder == "" && released == 0:
			released = time.Since(killed)
		case k.Holder != "" && k != before:
			return fmt.Errorf("leader key %+v, was %+v", k, before)
		}
		if old.PostgresRunning() {
			return fmt.Errorf("%s's PostgreSQL runs again", old.Name)
		}
		for _, n := range c.Others(old.Name) {
			rec, err := n.QueryInt(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END")
			if err != nil {
				return err
			}
			if rec == 0 {
				return fmt.Errorf("%s was promoted", n.Name)
			}
		}
		return nil
	})
	if released > 0 {
		t.Logf("%s released the leader key %.1fs after its PostgreSQL died (paused lock holder without a running primary, patroni-compat.md §3.9); nobody took it", old.Name, released.Seconds())
	} else {
		t.Logf("the leader key stayed %+v", before)
	}

	resumed := time.Now()
	mustSucceed(t, regentctl(t, c, ctlBound, "resume", "--wait"))
	winner, wrote := waitFirstWrite(t, c.Nodes(), failoverWait, "CREATE TABLE IF NOT EXISTS e2e_resume (id int)")
	took := wrote.Sub(resumed)
	t.Logf("after resume: %s accepts writes %.1fs later (restarted in place: %t)", winner.Name, took.Seconds(), winner == old)
	if bound := c.TTL() + 10*time.Second; took > bound {
		t.Errorf("no writable primary within ttl + 10 s = %s of resume: took %s", bound, took.Round(time.Millisecond))
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
	testcluster.Poll(t, configApplyWait, "no pause in any member key or GET /patroni", func(ctx context.Context) error {
		return checkPause(ctx, c, "")
	})
}

// checkPause checks every member's key and GET /patroni "pause".
func checkPause(ctx context.Context, c *testcluster.Cluster, want string) error {
	return fieldOn(ctx, c, c.Nodes(), "pause", want)
}

// regentctl's own commands ----------------------------------------------

// TestOperatorRegentctl: `regentctl list -o json` parses into rows with
// name/role/state, and `regentctl edit-config -s … --force` changes the
// config key.
func TestOperatorRegentctl(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{})
	waitListed(t, c, leader)

	_, rev := configRevision(t, c)
	mustSucceed(t, regentctl(t, c, ctlBound, "edit-config", "-s", "maximum_lag_on_failover=2097152", "--force"))
	cfg, after := configRevision(t, c)
	if str(cfg["maximum_lag_on_failover"]) != "2097152" || str(cfg["ttl"]) != "10" || after == rev {
		t.Errorf("config key after edit-config: %v (ModRevision %d → %d), want maximum_lag_on_failover 2097152 and ttl kept", cfg, rev, after)
	}
	r := regentctl(t, c, ctlBound, "show-config")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "maximum_lag_on_failover: 2097152") {
		t.Errorf("show-config does not show the new value")
	}
}

// TestOperatorRegentctlUnreachableEtcd: regentctl pointed at an etcd that
// is not there (nothing listening) or that never answers (a listener that
// accepts and stays silent) fails within its --timeout (+ 2 s).
func TestOperatorRegentctlUnreachableEtcd(t *testing.T) {
	const timeout = 3 * time.Second
	bin := regentctlBinary(t)
	closedAddr := freeAddr(t)
	silent := silentListener(t)
	for _, ep := range []struct{ what, addr string }{{"nothing listening", closedAddr}, {"silent listener", silent}} {
		for _, cmd := range [][]string{{"list"}, {"pause", "--wait"}} {
			args := append([]string{"--etcd", "http://" + ep.addr, "--scope", "e2e", "--timeout", timeout.String()}, cmd...)
			r := runTool(t, timeout+20*time.Second, bin, args...)
			switch {
			case r.code == -1:
				t.Errorf("%s, %v: still running after %s", ep.what, cmd, r.took.Round(time.Millisecond))
			case r.code == 0:
				t.Errorf("%s, %v: exit 0, want a failure", ep.what, cmd)
			case r.took > timeout+2*time.Second:
				t.Errorf("%s, %v: failed after %s, want within --timeout %s + 2 s", ep.what, cmd, r.took.Round(time.Millisecond), timeout)
			}
		}
	}
}

// TestOperatorRoleChangeCallback: in a failover where both agents live
// (the primary's host stalls, then resumes), on_role_change runs on the
// new primary with "on_role_change primary <scope>" and on the old one,
// once it rejoins, with "on_role_change replica <scope>"; the replica that
// stayed a replica runs nothing.
func TestOperatorRoleChangeCallback(t *testing.T) {
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: roleChangeConfig("10s")})
	writeRoleChangeScripts(t, c, false)

	old.Freeze(t)
	winner := waitNewLeader(t, c, old.Name, failoverWait)
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	old.Thaw(t)
	waitStreamingFrom(t, old, winner, rejoinTimeout)
	waitCalls(t, old, configApplyWait, "on_role_change replica "+c.Scope())
	for _, n := range c.Others(old.Name) {
		if n == winner {
			continue
		}
		if calls, err := readCalls(filepath.Join(n.Dir, roleChangeCalls)); err != nil || len(calls) > 0 {
			t.Errorf("%s stayed a replica but its on_role_change ran: %+v (err %v)", n.Name, calls, err)
		}
	}
	// No further runs once the cluster settled.
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	waitCalls(t, old, configApplyWait, "on_role_change replica "+c.Scope())
}

// TestOperatorCallbackTimeout: an on_role_change that never returns is
// killed at callbacks.timeout (2 s) with its whole process group (the
// agent logs "callback killed at its timeout"; neither the script nor its
// sleep is left), and the failover it was started by completes.
func TestOperatorCallbackTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	c, old := startHealthy(t, testcluster.Options{ExtraConfig: roleChangeConfig(timeout.String())})
	writeRoleChangeScripts(t, c, true)
	logs := map[string]*testcluster.LogCapture{}
	for _, n := range c.Others(old.Name) {
		logs[n.Name] = n.CaptureLog(t)
	}

	killed := time.Now()
	old.Kill(t)
	winner, wrote := waitFirstWrite(t, c.Others(old.Name), failoverWait, "CREATE TABLE IF NOT EXISTS e2e_callback (id int)")
	t.Logf("failover: %s writable %.1fs after the kill", winner.Name, wrote.Sub(killed).Seconds())
	waitCalls(t, winner, configApplyWait, "on_role_change primary "+c.Scope())
	run := waitHangRun(t, winner)
	line := logs[winner.Name].Wait(t, timeout+configApplyWait, "callback killed at its timeout", func(l string) bool {
		return strings.Contains(l, "callback killed at its timeout") && strings.Contains(l, "action=on_role_change")
	})
	t.Logf("%s: %s", winner.Name, line)
	var gone time.Time
	testcluster.Poll(t, configApplyWait, "the callback's script and sleep gone", func(context.Context) error {
		if liveProcess(run.script, roleChangeScript) || liveProcess(run.sleep, "sleep 86399") {
			return fmt.Errorf("script pid %d or sleep pid %d still alive", run.script, run.sleep)
		}
		gone = time.Now()
		return nil
	})
	// The script notes its start a moment after the agent started it: on
	// a loaded machine it may look shorter than the timeout, never near 0.
	if ran := gone.Sub(run.started); ran < timeout/2 || ran > timeout+3*time.Second {
		t.Errorf("the hanging callback ran %s before being killed, want its timeout %s (+ ≤ 3 s)", ran.Round(time.Millisecond), timeout)
	} else {
		t.Logf("the hanging callback ran %s before being killed", ran.Round(time.Millisecond))
	}
	testcluster.Poll(t, replicateTimeout, "exactly one leader: "+winner.Name, func(ctx context.Context) error {
		return checkOneLeader(ctx, c, winner)
	})
	for _, n := range c.Others(old.Name) {
		if n != winner {
			waitStreamingFrom(t, n, winner, rejoinTimeout)
		}
	}
}

// TestOperatorRESTAuth: with restapi.authentication on every node, writes
// without credentials or with wrong ones get 401 and change nothing, the
// right ones work, and health checks and reads stay open; regentctl needs
// --user/--password for a write.
func TestOperatorRESTAuth(t *testing.T) {
	c, leader := startHealthy(t, testcluster.Options{ExtraConfig: restAuthConfig})
	replica := c.Others(leader.Name)[0]
	checkAuth(t, c, plainAPI(), leader, replica)

	loaded := pgText(t, replica, "SELECT pg_conf_load_time()::text")
	if r := regentctl(t, c, ctlBound, "reload", replica.Name, "--force"); r.code == 0 {
		t.Errorf("regentctl reload without credentials: exit 0, want a refusal")
	}
	mustSucceed(t, regentctl(t, c, ctlBound, "--user", apiUser, "--password", apiPassword, "reload", replica.Name, "--force"))
	waitConfReload(t, replica, loaded)
}

// checkAuth checks the access rules of the write endpoints and of the
// open ones on leader and replica, through api.
func checkAuth(t *testing.T, c *testcluster.Cluster, api restAPI, leader, replica *testcluster.Node) {
	t.Helper()
	ctx := t.Context()
	_, rev := configRevision(t, c)
	patch := `{"maximum_lag_on_failover": 2097152}`
	writes := []struct{ method, path, body string }{
		{http.MethodPost, "/reload", ""}, {http.MethodPatch, "/config", patch},
		{http.MethodPost, "/restart", "{}"}, {http.MethodDelete, "/switchover", ""},
	}
	for i, cr := range []creds{{}, {apiUser, "wrong"}, {"admin", apiPassword}} {
		// One client address per credential set: fewer wrong passwords
		// from each than the failed-login throttle allows (429 after 5).
		from := api.from(fmt.Sprintf("127.0.0.%d", 10+i))
		for _, w := range writes {
			code, body, err := from.do(ctx, leader, w.method, w.path, bodyBytes(w.body), cr)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s on %s with credentials %q: %d %s, want 401", w.method, w.path, leader.Name, cr, code, compactBody(body))
			}
		}
	}
	if _, after := configRevision(t, c); after != rev {
		t.Errorf("the config key changed (ModRevision %d → %d) though every PATCH was refused", rev, after)
	}
	right := creds{apiUser, apiPassword}
	if code, body, err := api.do(ctx, leader, http.MethodPost, "/reload", nil, right); err != nil || code != http.StatusAccepted {
		t.Errorf("POST /reload with the right credentials = %d %s (err %v), want 202", code, compactBody(body), err)
	}
	if code, body, err := api.do(ctx, leader, http.MethodPatch, "/config", []byte(patch), right); err != nil || code != http.StatusOK {
		t.Errorf("PATCH /config with the right credentials = %d %s (err %v), want 200", code, compactBody(body), err)
	}
	if cfg, _ := configRevision(t, c); str(cfg["maximum_lag_on_failover"]) != "2097152" {
		t.Errorf("config key after the authenticated PATCH: %v", cfg)
	}
	for _, open := range []struct {
		n            *testcluster.Node
		method, path string
	}{
		{leader, http.MethodGet, "/primary"}, {leader, http.MethodOptions, "/"}, {leader, http.MethodHead, "/leader"},
		{replica, http.MethodGet, "/replica"}, {replica, http.MethodGet, "/patroni"}, {replica, http.MethodGet, "/cluster"},
		{replica, http.MethodGet, "/config"},
	} {
		if code, body, err := api.do(ctx, open.n, open.method, open.path, nil, creds{}); err != nil || code != http.StatusOK {
			t.Errorf("%s %s on %s without credentials = %d %s (err %v), want 200", open.method, open.path, open.n.Name, code, compactBody(body), err)
		}
	}
}

// TestOperatorRESTTLS: every agent serves its API over https with a
// certificate from a test CA (restapi certfile/keyfile/cafile) and with
// authentication. Member keys advertise https; the access rules hold over
// https; regentctl works with --cacert and credentials (list, reload,
// pause/resume) and fails without the CA; after the primary dies the
// cluster elects a new one, the winner having reached its peer over https.
func TestOperatorRESTTLS(t *testing.T) {
	pki := newPKI(t)
	c := testcluster.New(t, testcluster.Options{ExtraConfig: func(node string, cfg map[string]any) {
		restAuthConfig(node, cfg)
		r := restapiSection(cfg)
		r["certfile"], r["keyfile"], r["cafile"] = pki.Cert, pki.Key, pki.CA
	}})
	api := tlsAPI(pki.Pool)
	old := waitLeaderVia(t, c, api.api, "", bootstrapTimeout)
	waitReplicasVia(t, c, api, old)
	replica := c.Others(old.Name)[0]
	ctx := t.Context()
	for _, n := range c.Nodes() {
		want := fmt.Sprintf("https://127.0.0.1:%d/patroni", n.APIPort)
		if got, err := memberField(ctx, c, n.Name, "api_url"); err != nil || got != want {
			t.Errorf("%s: api_url %q (err %v), want %q", n.Name, got, err, want)
		}
	}
	if code, _, err := plainAPI().do(ctx, old, http.MethodGet, "/patroni", nil, creds{}); err == nil && code == http.StatusOK {
		t.Errorf("%s answers plain http GET /patroni with 200", old.Name)
	}
	checkAuth(t, c, api, old, replica)
	checkRegentctlTLS(t, c, pki, replica)

	killed := time.Now()
	old.Kill(t)
	winner := waitLeaderVia(t, c, api.api, old.Name, failoverWait)
	t.Logf("failover over https: %s leads %.1fs after %s died", winner.Name, time.Since(killed).Seconds(), old.Name)
	d := awaitDecisionVia(t, api.api(winner), replicateTimeout, "failover", winner.Name, killed, nil)
	t.Logf("failover decision: %s", d)
	checkFailoverRecord(t, d, old.Name, c.Others(old.Name))
}

// checkRegentctlTLS runs regentctl against the https agents.
func checkRegentctlTLS(t *testing.T, c *testcluster.Cluster, pki testPKI, replica *testcluster.Node) {
	t.Helper()
	tlsFlags := []string{"--cacert", pki.CA, "--user", apiUser, "--password", apiPassword}
	ctl := func(args ...string) ctlResult {
		return regentctl(t, c, ctlBound, append(append([]string(nil), tlsFlags...), args...)...)
	}
	r := ctl("list")
	mustSucceed(t, r)
	for _, n := range c.Nodes() {
		if !strings.Contains(r.stdout, n.Name) {
			t.Errorf("regentctl list does not show %s", n.Name)
		}
	}
	loaded := pgText(t, replica, "SELECT pg_conf_load_time()::text")
	if r := regentctl(t, c, ctlBound, "--user", apiUser, "--password", apiPassword, "reload", replica.Name, "--force"); r.code == 0 {
		t.Errorf("regentctl reload without --cacert: exit 0, want a certificate verification failure")
	}
	mustSucceed(t, ctl("reload", replica.Name, "--force"))
	waitConfReload(t, replica, loaded)
	mustSucceed(t, ctl("pause", "--wait"))
	if cfg, _ := configRevision(t, c); str(cfg["pause"]) != "true" {
		t.Errorf("config key after regentctl pause: %v", cfg)
	}
	mustSucceed(t, ctl("resume", "--wait"))
	if cfg, _ := configRevision(t, c); cfg["pause"] != nil {
		t.Errorf("config key after regentctl resume: %v, want no pause", cfg)
	}
}
