package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// The REST API credentials of these tests.
const (
	apiUser     = "operator"
	apiPassword = "op-s3cret"
)

func restAuthConfig(_ string, cfg map[string]any) {
	restapiSection(cfg)["authentication"] = map[string]any{"username": apiUser, "password": apiPassword}
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

func bodyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// waitConfReload waits until n's pg_conf_load_time() differs from before.
func waitConfReload(t *testing.T, n *testcluster.Node, before string) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, n.Name+" reloaded its configuration (pg_conf_load_time changed)", func(ctx context.Context) error {
		now, err := queryString(ctx, n, "SELECT pg_conf_load_time()::text")
		if err != nil {
			return err
		}
		if now == before {
			return fmt.Errorf("pg_conf_load_time still %s", now)
		}
		return nil
	})
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

// waitReplicasVia waits until every node but leader runs as a replica
// (GET /patroni through api).
func waitReplicasVia(t *testing.T, c *testcluster.Cluster, api restAPI, leader *testcluster.Node) {
	t.Helper()
	for _, n := range c.Others(leader.Name) {
		testcluster.Poll(t, bootstrapTimeout, n.Name+" running as a replica (GET /patroni over "+api.scheme+")", func(ctx context.Context) error {
			st, err := api.status(ctx, n)
			if err != nil {
				return err
			}
			if st["role"] != "replica" || st["state"] != "running" {
				return fmt.Errorf("role=%v state=%v", st["role"], st["state"])
			}
			return nil
		})
	}
}
