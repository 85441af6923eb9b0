package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// configErrorBound is how soon after the edit a member that cannot apply
// it must show so: the config change wakes its loop at once, so one
// loop_wait (1 s here) plus scheduling slack on a shared test machine.
const configErrorBound = 3 * time.Second

// TestConfigValidation (#16, must-shows 2 and 3). A battery of dynamic
// config edits members would refuse or ignore each gets a 4xx naming the
// key, and etcd's config key is byte-identical (same mod revision)
// afterwards. Then an edit one member's safety_margin cannot accept: that
// member applies the rest (pause, a parameter), keeps its timings, and
// shows the reason in GET /patroni, regentctl list and /metrics within
// one loop, logging it once; a later config that applies clears it.
func TestConfigValidation(t *testing.T) {
	c, _ := startHealthy(t, testcluster.Options{Nodes: 2, ExtraConfig: func(node string, cfg map[string]any) {
		if node == "pg2" {
			// Patroni-style: a bare number is seconds. Margin 6 s accepts
			// ttl 10 but not ttl 7 (ttl − margin must exceed loop_wait).
			cfg["watchdog"] = map[string]any{"mode": "off", "safety_margin": 6}
		}
	}})
	pg1, pg2 := c.Node("pg1"), c.Node("pg2")
	checkBadEditsRefused(t, c, pg1)
	checkMemberShowsConfigError(t, c, pg1, pg2)
}

// rawConfig reads the config key's bytes and mod revision from etcd.
func rawConfig(t *testing.T, c *testcluster.Cluster) ([]byte, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := c.Etcd().Get(ctx, c.Keys().Config())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read the config key: %v (%d keys)", err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
}

func checkBadEditsRefused(t *testing.T, c *testcluster.Cluster, via *testcluster.Node) {
	api := plainAPI()
	before, rev := rawConfig(t, c)
	param := func(name, value string) string {
		return `{"postgresql": {"parameters": {"work_mem": "9MB", "` + name + `": ` + value + `}}}`
	}
	edits := []struct{ method, body, key string }{
		{http.MethodPatch, param("port", "5433"), "postgresql.parameters.port: set postgres.listen instead"},
		{http.MethodPatch, param("listen_addresses", `"*"`), "postgresql.parameters.listen_addresses:"},
		{http.MethodPatch, param("synchronous_standby_names", `"*"`), "postgresql.parameters.synchronous_standby_names: managed by Regent"},
		{http.MethodPatch, param("no_such_setting", "1"), "postgresql.parameters.no_such_setting: unknown setting"},
		{http.MethodPatch, param("max_connections", `"lots"`), "postgresql.parameters.max_connections:"},
		{http.MethodPatch, param("shared_buffers", `"-5"`), "postgresql.parameters.shared_buffers:"},
		{http.MethodPatch, param("wal_level", `"maximal"`), "postgresql.parameters.wal_level:"},
		{http.MethodPatch, `{"ttl": "NaN"}`, "ttl: NaN is not a number of seconds"},
		{http.MethodPatch, `{"switchover_timeout": "NaN"}`, "switchover_timeout: NaN is not a number of seconds"},
		{http.MethodPatch, `{"primary_start_timeout": -1}`, "primary_start_timeout:"},
		{http.MethodPatch, `{"switchover_timeout": 1e12}`, "switchover_timeout:"},
		{http.MethodPatch, `{"synchronous_node_count": "two"}`, "synchronous_node_count:"},
		{http.MethodPatch, `{"synchronous_mode": "quorom"}`, "synchronous_mode:"},
		{http.MethodPatch, `{"failsafe_mode": "sometimes"}`, "failsafe_mode:"},
		{http.MethodPatch, `{"standby_cluster": {"host": "10.0.0.9", "port": 0}}`, "standby_cluster: port: 0 is outside 1 .. 65535"},
		{http.MethodPatch, `{"slots": {"s1": {"type": "phisical"}}}`, "slots: s1: type:"},
		{http.MethodPatch, `{"ignore_slots": [{}]}`, "ignore_slots: [0]: an entry sets at least one"},
		{http.MethodPatch, `{"postgresql": {"use_pg_rewind": false}}`, "postgresql.use_pg_rewind: not supported yet"},
		{http.MethodPatch, `{"postgresql": {"use_slots": false}}`, "postgresql.use_slots: not supported yet"},
		{http.MethodPatch, `{"postgresql": {"pg_hba": ["host all all 0.0.0.0/0 trust"]}}`, "postgresql.pg_hba: not supported yet"},
		{http.MethodPatch, `{"postgresql": {"recovery_conf": {}}}`, "postgresql.recovery_conf: not supported yet"},
		{http.MethodPatch, `{"loop_wiat": 2}`, "loop_wiat: unknown key"},
		{http.MethodPut, `{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "foreign": 1}`, "foreign: unknown key"},
		{http.MethodPut, `{"ttl": 10, "loop_wait": 1, "retry_timeout": 3, "postgresql": {"parameters": {"port": 5433}}}`,
			"postgresql.parameters.port:"},
	}
	for _, bad := range edits {
		code, body, err := api.do(t.Context(), via, bad.method, "/config", []byte(bad.body), creds{})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Error string }
		jsonErr := json.Unmarshal(body, &doc)
		if code < 400 || code > 499 || jsonErr != nil || !strings.Contains(doc.Error, bad.key) {
			t.Errorf("%s /config %s = %d %s, want a 4xx JSON error naming %q", bad.method, bad.body, code, compactBody(body), bad.key)
		}
	}
	after, afterRev := rawConfig(t, c)
	if !bytes.Equal(before, after) || afterRev != rev {
		t.Errorf("the refused edits changed the config key: %q (revision %d) → %q (revision %d)", before, rev, after, afterRev)
	}
	t.Logf("%d bad edits refused; config key byte-identical at revision %d", len(edits), rev)
}

func checkMemberShowsConfigError(t *testing.T, c *testcluster.Cluster, via, member *testcluster.Node) {
	api := plainAPI()
	logs := member.CaptureLog(t)
	warned := func(line string) bool {
		return strings.Contains(line, "level=WARN") && strings.Contains(line, "cannot apply the cluster config fully")
	}
	edit := `{"ttl": 7, "retry_timeout": 2, "pause": true, "postgresql": {"parameters": {"work_mem": "7MB"}}}`
	code, body, err := api.do(t.Context(), via, http.MethodPatch, "/config", []byte(edit), creds{})
	if err != nil || code != http.StatusOK {
		t.Fatalf("PATCH /config %s via %s = %d %s (err %v)", edit, via.Name, code, compactBody(body), err)
	}
	edited := time.Now()
	const reason = "watchdog.safety_margin"

	// GET /patroni, /metrics and regentctl list, each within one loop.
	var ticksAtError uint64
	testcluster.Poll(t, configErrorBound, member.Name+"'s config_error in GET /patroni", func(ctx context.Context) error {
		st, err := api.status(ctx, member)
		if err != nil {
			return err
		}
		regent, _ := st["regent"].(map[string]any)
		if got := str(regent["config_error"]); !strings.Contains(got, reason) {
			return fmt.Errorf("regent.config_error = %q", got)
		}
		if st["pause"] != true {
			return fmt.Errorf("pause = %v: the rest of the edit must apply", st["pause"])
		}
		return nil
	})
	t.Logf("GET /patroni on %s shows the config error %.2fs after the edit", member.Name, time.Since(edited).Seconds())
	testcluster.Poll(t, time.Until(edited.Add(configErrorBound)), "regent_config_error 1 on "+member.Name, func(ctx context.Context) error {
		mfs, err := scrapeMetrics(ctx, member)
		if err != nil {
			return err
		}
		v, err := mfs.value("regent_config_error", nil)
		if err == nil && v != 1 {
			err = fmt.Errorf("regent_config_error = %v", v)
		}
		if err == nil {
			ticksAtError, err = mfs.count("regent_ha_tick_duration_seconds", nil)
		}
		return err
	})
	// The member key is written in the same publish as GET /patroni's snapshot.
	r := regentctl(t, c, ctlBound, "list")
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "Config error") || !strings.Contains(r.stdout, reason) {
		t.Errorf("regentctl list does not show %s's config error:\n%s", member.Name, r.stdout)
	}

	code, body, err = api.do(t.Context(), via, http.MethodGet, "/cluster", nil, creds{})
	var cluster struct {
		Members []struct {
			Name        string
			ConfigError string `json:"config_error"`
		}
	}
	if err == nil {
		err = json.Unmarshal(body, &cluster)
	}
	for _, m := range cluster.Members {
		if (m.Name == member.Name) != strings.Contains(m.ConfigError, reason) {
			t.Errorf("GET /cluster via %s: %s has config_error %q", via.Name, m.Name, m.ConfigError)
		}
	}
	if err != nil || code != http.StatusOK || len(cluster.Members) != len(c.Nodes()) {
		t.Errorf("GET /cluster via %s = %d %s (err %v)", via.Name, code, compactBody(body), err)
	}

	// It applied the rest of the edit and kept its own timings.
	if kb, err := member.QueryInt(t.Context(), "SELECT setting::int FROM pg_settings WHERE name = 'work_mem'"); err != nil || kb != 7<<10 {
		t.Errorf("work_mem on %s = %d kB (err %v), want 7MB applied beside the refused timings", member.Name, kb, err)
	}
	if leases, err := keyLeases(t.Context(), c); err != nil || leases["members/"+member.Name][1] != 10 {
		t.Errorf("%s's member key lease: %v (err %v), want still granted with ttl 10", member.Name, leases, err)
	}

	// Logged once: several ticks later, still one WARN line.
	testcluster.Poll(t, 10*time.Second, "three more ticks on "+member.Name, func(ctx context.Context) error {
		mfs, err := scrapeMetrics(ctx, member)
		if err != nil {
			return err
		}
		n, err := mfs.count("regent_ha_tick_duration_seconds", nil)
		if err == nil && n < ticksAtError+3 {
			err = fmt.Errorf("%d ticks, waiting for %d", n, ticksAtError+3)
		}
		return err
	})
	if lines := logs.Matching(warned); len(lines) != 1 {
		t.Errorf("%d WARN lines about the config error, want exactly 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}

	// A config every member can apply clears it.
	fix := `{"ttl": 10, "retry_timeout": 3, "pause": null}`
	if code, body, err := api.do(t.Context(), via, http.MethodPatch, "/config", []byte(fix), creds{}); err != nil || code != http.StatusOK {
		t.Fatalf("PATCH /config %s = %d %s (err %v)", fix, code, compactBody(body), err)
	}
	testcluster.Poll(t, configErrorBound, member.Name+"'s config error cleared", func(ctx context.Context) error {
		st, err := api.status(ctx, member)
		if err != nil {
			return err
		}
		if regent, _ := st["regent"].(map[string]any); regent["config_error"] != nil {
			return fmt.Errorf("regent.config_error = %v", regent["config_error"])
		}
		mfs, err := scrapeMetrics(ctx, member)
		if err != nil {
			return err
		}
		if v, err := mfs.value("regent_config_error", nil); err != nil || v != 0 {
			return errors.Join(err, fmt.Errorf("regent_config_error = %v", v))
		}
		return nil
	})
	logs.Wait(t, configErrorBound, "the clearing logged", func(line string) bool {
		return strings.Contains(line, "cluster config applies fully again")
	})
	if lines := logs.Matching(warned); len(lines) != 1 {
		t.Errorf("%d WARN lines about the config error after the clearing, want still 1", len(lines))
	}
}
